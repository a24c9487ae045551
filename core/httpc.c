/* httpc.c - outgoing HTTP(S) requests on the event loop. */
#include "httpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_HEADERS 64

typedef struct call {
    httpc_done done;
    void *arg;
    struct evhttp_connection *conn;
} call;

static SSL_CTX *g_tls;

static SSL_CTX *client_tls(void)
{
    if (g_tls) return g_tls;
    SSL_CTX *t = SSL_CTX_new(TLS_client_method());
    if (!t) return NULL;
    SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION);
    SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(t) != 1) {
        SSL_CTX_free(t);
        return NULL;
    }
    return g_tls = t;
}

void httpc_release(void)
{
    SSL_CTX_free(g_tls);
    g_tls = NULL;
}

static void on_done(struct evhttp_request *r, void *arg)
{
    call *c = arg;
    if (!r || evhttp_request_get_response_code(r) == 0) {
        char why[160];
        httpc_no_answer(why, sizeof why);
        c->done(c->arg, 0, NULL, 0, NULL, 0, why);
        free(c);
        return;
    }
    paychan_kv hdr[MAX_HEADERS];
    size_t nh = 0;
    struct evkeyvalq *h = evhttp_request_get_input_headers(r);
    for (struct evkeyval *kv = h->tqh_first; kv && nh < MAX_HEADERS; kv = kv->next.tqe_next)
        hdr[nh++] = (paychan_kv){kv->key, kv->value};
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    c->done(c->arg, evhttp_request_get_response_code(r), hdr, nh, body ? body : "", body ? len : 0, NULL);
    free(c);
}

void httpc_no_answer(char *why, size_t n)
{
    /* a TLS failure says more than "no answer": OpenSSL keeps why */
    unsigned long code = ERR_get_error();
    if (code) {
        char detail[120];
        ERR_error_string_n(code, detail, sizeof detail);
        snprintf(why, n, "no answer: %s", detail);
    } else {
        snprintf(why, n, "no answer (connection refused, reset, TLS failure or timeout)");
    }
    ERR_clear_error();
}

void httpc_add_headers(struct evkeyvalq *out, const char *headers)
{
    char line[4096];
    for (const char *p = headers ? headers : ""; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n && n < sizeof line) {
            memcpy(line, p, n);
            line[n] = 0;
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = 0;
                char *v = colon + 1;
                while (*v == ' ') v++;
                evhttp_add_header(out, line, v);
            }
        }
        p += n + (nl != NULL);
    }
}

int httpc_request(struct event_base *base, const char *method, const char *url, const char *headers, const char *body,
                  size_t len, int timeout_s, httpc_done done, void *arg, err *e)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u) return err_set(e, ERR_INVALID, "not a URL: %s", url);
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int tls = scheme && !strcasecmp(scheme, "https");
    if (!scheme || (!tls && strcasecmp(scheme, "http")) || !host || !host[0]) {
        evhttp_uri_free(u);
        return err_set(e, ERR_INVALID, "only http and https URLs with a host: %s", url);
    }
    int port = evhttp_uri_get_port(u);
    if (port < 0) port = tls ? 443 : 80;
    char target[2048];
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    snprintf(target, sizeof target, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "", query ? query : "");
    enum evhttp_cmd_type cmd = !strcmp(method, "POST") ? EVHTTP_REQ_POST : !strcmp(method, "GET") ? EVHTTP_REQ_GET
                             : !strcmp(method, "PUT") ? EVHTTP_REQ_PUT : EVHTTP_REQ_DELETE;
    call *c = calloc(1, sizeof *c);
    struct bufferevent *bev = NULL;
    int rc = 0;
    if (!c) rc = err_set(e, ERR_NOMEM, "out of memory");
    else {
        c->done = done;
        c->arg = arg;
    }
    if (!rc && tls) {
        SSL_CTX *ctx = client_tls();
        SSL *ssl = ctx ? SSL_new(ctx) : NULL;
        /* the certificate must be for this host, not only from a known CA */
        if (!ssl || SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
            SSL_free(ssl);
            rc = err_set(e, ERR_INTERNAL, "cannot set up TLS for %s", host);
        } else if (!(bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS))) {
            SSL_free(ssl);
            rc = err_set(e, ERR_NOMEM, "out of memory");
        }
    } else if (!rc && !(bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS))) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    if (!rc && !(c->conn = evhttp_connection_base_bufferevent_new(base, NULL, bev, host, (unsigned short)port))) {
        bufferevent_free(bev);
        rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    struct evhttp_request *r = NULL;
    if (!rc && !(r = evhttp_request_new(on_done, c))) rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) {
        evhttp_connection_set_timeout(c->conn, timeout_s);
        struct evkeyvalq *out = evhttp_request_get_output_headers(r);
        char hostport[300];
        snprintf(hostport, sizeof hostport, (port == (tls ? 443 : 80)) ? "%s" : "%s:%d", host, port);
        evhttp_add_header(out, "Host", hostport);
        evhttp_add_header(out, "Connection", "close");
        httpc_add_headers(out, headers);
        if (body && len) evbuffer_add(evhttp_request_get_output_buffer(r), body, len);
        /* the connection goes once the request is done: one request each */
        evhttp_connection_free_on_completion(c->conn);
        if (evhttp_make_request(c->conn, r, cmd, target)) {
            /* evhttp_make_request frees the request on failure */
            r = NULL;
            evhttp_connection_free(c->conn);
            c->conn = NULL;
            rc = err_set(e, ERR_IO, "cannot send the request to %s", host);
        }
    }
    if (rc) {
        if (r) evhttp_request_free(r);
        if (c && c->conn) evhttp_connection_free(c->conn);
        free(c);
    }
    evhttp_uri_free(u);
    return rc;
}

static void on_answer(void *arg, int status, const paychan_kv *headers, size_t nh, const char *body, size_t len,
                      const char *error)
{
    httpc_answer *a = arg;
    a->status = status;
    if (error) snprintf(a->error, sizeof a->error, "%s", error);
    size_t need = 0;
    for (size_t i = 0; i < nh && i < 32; i++) need += strlen(headers[i].key) + strlen(headers[i].value) + 2;
    a->names = malloc(need + 1);
    a->body = malloc(len + 1);
    if (!a->names || !a->body) {
        a->status = 0;
        snprintf(a->error, sizeof a->error, "out of memory");
        return;
    }
    char *p = a->names;
    for (size_t i = 0; i < nh && i < 32; i++) {
        size_t kl = strlen(headers[i].key) + 1, vl = strlen(headers[i].value) + 1;
        memcpy(p, headers[i].key, kl);
        memcpy(p + kl, headers[i].value, vl);
        a->headers[a->nheaders++] = (paychan_kv){p, p + kl};
        p += kl + vl;
    }
    if (len) memcpy(a->body, body, len);
    a->body[len] = 0;
    a->len = len;
}

typedef struct waiter {
    httpc_answer *a;
    int done;
} waiter;

static void on_wait(void *arg, int status, const paychan_kv *headers, size_t nh, const char *body, size_t len,
                    const char *error)
{
    waiter *w = arg;
    on_answer(w->a, status, headers, nh, body, len, error);
    w->done = 1;
}

int httpc_fetch(const char *method, const char *url, const char *headers, const char *body, size_t len, int timeout_s,
                httpc_answer *a, err *e)
{
    memset(a, 0, sizeof *a);
    struct event_base *base = event_base_new();
    if (!base) return err_set(e, ERR_NOMEM, "cannot create an event loop");
    waiter w = {a, 0};
    int rc = httpc_request(base, method, url, headers, body, len, timeout_s, on_wait, &w, e);
    while (!rc && !w.done) event_base_loop(base, EVLOOP_ONCE);
    event_base_free(base);
    return rc;
}

void httpc_answer_free(httpc_answer *a)
{
    free(a->names);
    free(a->body);
    a->names = a->body = NULL;
}

