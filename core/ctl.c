/* ctl.c - a minimal blocking HTTP/1.1 client over a unix socket. The
 * daemon closes the connection after the reply (Connection: close), so the
 * reply is everything until end of file. */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_TIMEOUT_MS 60000

int ctl_request(const char *path, const char *method, const char *target, const char *body, int *status, buf *resp,
                err *e)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) return err_set(e, ERR_INVALID, "socket path %s is too long", path);
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return err_set(e, ERR_IO, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        int en = errno;
        close(fd);
        return err_set(e, ERR_IO, "cannot reach the daemon on %s: %s (is `bandbill serve` running?)", path, strerror(en));
    }
    buf req = {0};
    size_t bl = body ? strlen(body) : 0;
    buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: %zu\r\n%s\r\n", method,
               target, bl, bl ? "Content-Type: application/json\r\n" : "");
    if (bl) buf_append(&req, body, bl);
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = write(fd, req.data + off, req.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            buf_free(&req);
            close(fd);
            return err_set(e, ERR_IO, "cannot send to the daemon: %s", strerror(errno));
        }
        off += (size_t)w;
    }
    buf_free(&req);
    buf raw = {0};
    char chunk[4096];
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, CTL_TIMEOUT_MS);
        if (pr == 0) {
            close(fd);
            buf_free(&raw);
            return err_set(e, ERR_IO, "the daemon did not answer within %d s", CTL_TIMEOUT_MS / 1000);
        }
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (buf_append(&raw, chunk, (size_t)r)) break;
    }
    close(fd);
    const char *text = buf_cstr(&raw);
    const char *hdr_end = strstr(text, "\r\n\r\n");
    if (strncmp(text, "HTTP/1.", 7) != 0 || !hdr_end || sscanf(text + 8, " %d", status) != 1) {
        buf_free(&raw);
        return err_set(e, ERR_IO, "the daemon sent a reply that is not HTTP");
    }
    buf_append(resp, hdr_end + 4, raw.len - (size_t)(hdr_end + 4 - text));
    buf_free(&raw);
    return 0;
}
