/* notify_int.h - the dispatcher's internals shared by notify_*.c: driver
 * plugins, the HTTP connection pool and SMTP over libcurl, all on the
 * dispatcher's event loop. Not for other subsystems. */
#ifndef BB_NOTIFY_INT_H
#define BB_NOTIFY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cfg.h"
#include "err.h"
#include "notichan.h"

struct event_base;

/* ---------------------------------------------------------------- plugins */

/* Loads the notification drivers of the configured plugins folder (once for
 * the process; counted, so that the daemon's thread and a job share it). */
int nplug_acquire(const cfg *c, err *e);
void nplug_release(void);
const notichan_plugin *nplug_find(const char *name);
const notichan_host *nplug_host(void);

/* ------------------------------------------------------------------- HTTP */

/* Called once on the loop: status 0 and error set when no answer came. */
typedef void (*nh_done)(void *arg, int status, const notichan_kv *headers, size_t nheaders, const char *body, size_t len,
                        const char *error);

typedef struct nh_pool nh_pool;
/* Plain HTTP keeps up to max_per_host connections per host open and reuses
 * them (keep-alive); HTTPS makes one connection per request (the peer's
 * certificate and host name checked). */
nh_pool *nh_pool_new(struct event_base *base, int max_per_host);
/* Frees the pool; requests still in flight are dropped without their
 * callbacks. */
void nh_pool_free(nh_pool *p);
int nh_pending(const nh_pool *p);
int nh_request(nh_pool *p, const char *method, const char *url, const char *headers, const char *body, size_t len,
               int timeout_s, nh_done done, void *arg, err *e);

/* ------------------------------------------------------------------- SMTP */

typedef struct nsmtp_conf {
    char url[512];            /* smtp://host:port or smtps://host:port */
    char username[128], password[256];
    int tls;                  /* 0 none, 1 STARTTLS when offered, 2 TLS required */
} nsmtp_conf;

/* ok: the server took the mail; else code is the server's last reply
 * (550...) or 0, and error says why. */
typedef void (*nsmtp_done)(void *arg, int ok, long code, const char *error);

typedef struct nsmtp nsmtp;
int nsmtp_new(struct event_base *base, nsmtp **out, err *e);
void nsmtp_free(nsmtp *s);
int nsmtp_pending(const nsmtp *s);
/* Sends one mail (mime: the whole message, taken over by the call). */
int nsmtp_send(nsmtp *s, const nsmtp_conf *c, const char *from, const char *to, buf *mime, int timeout_s, nsmtp_done done,
               void *arg, err *e);

#endif
