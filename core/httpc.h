/* httpc.h - outgoing HTTP(S) requests on the event loop (libevent's
 * client): what the core sends to payment channels on their plugins'
 * behalf. One request, one connection; HTTPS verifies the peer against
 * the system's CA store and the host name. */
#ifndef BB_HTTPC_H
#define BB_HTTPC_H

#include <stddef.h>

#include "err.h"
#include "paychan.h"

struct event_base;

/* Called once, on the loop thread: status 0 and `error` set when no
 * answer came (connection, TLS, timeout); headers and body are valid only
 * during the call. */
typedef void (*httpc_done)(void *arg, int status, const paychan_kv *headers, size_t nheaders, const char *body,
                           size_t len, const char *error);

/* Sends the request; `done` runs later (never from inside this call).
 * headers: "Name: value" lines. Returns 0, or an error (bad URL, out of
 * memory) without calling done. */
int httpc_request(struct event_base *base, const char *method, const char *url, const char *headers, const char *body,
                  size_t len, int timeout_s, httpc_done done, void *arg, err *e);

/* A whole answer, for callers off the daemon's loop (jobs, the CLI). */
typedef struct httpc_answer {
    int status;              /* 0: no answer (error says why) */
    char error[200];
    paychan_kv headers[32];
    size_t nheaders;
    char *names;             /* storage of the headers */
    char *body;              /* NUL-terminated */
    size_t len;
} httpc_answer;

/* Sends one request on a loop of its own and waits for the answer (or the
 * timeout). 0 with *a filled (free it with httpc_answer_free), or an error
 * when the request could not be made. */
int httpc_fetch(const char *method, const char *url, const char *headers, const char *body, size_t len, int timeout_s,
                httpc_answer *a, err *e);
void httpc_answer_free(httpc_answer *a);

struct evkeyvalq;
/* Adds "Name: value" lines (separated by \n; NULL for none) to a
 * request's headers. */
void httpc_add_headers(struct evkeyvalq *out, const char *headers);
/* Why a request got no answer, for a failure callback: OpenSSL's reason
 * when it has one (it is cleared), else a general one. */
void httpc_no_answer(char *why, size_t n);

/* Frees the shared TLS context (shutdown). */
void httpc_release(void);

#endif
