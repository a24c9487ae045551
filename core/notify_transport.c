/* notify_transport.c - how the dispatcher reaches gateways: driver plugins
 * and the host services they get, pooled keep-alive HTTP on libevent, and
 * SMTP through libcurl's multi interface on the same loop. */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#include "channels.h"
#include "crypto.h"
#include "httpc.h"
#include "json.h"
#include "notify_int.h"

/* ============================================================ host table */

static void *h_alloc(size_t n) { return malloc(n ? n : 1); }
static void h_free(void *p) { free(p); }

static int h_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len, unsigned char out[32])
{
    unsigned int n = 0;
    if (key_len > INT_MAX) return -1;
    return HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &n) && n == 32 ? 0 : -1;
}

static void h_hex(const unsigned char *in, size_t n, char *out) { crypto_hex(in, n, out); }

static int h_b64(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (len > INT_MAX / 2 || cap < (len + 2) / 3 * 4 + 1) return -1;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return 0;
}

static int h_json_quote(const char *s, char *out, size_t cap)
{
    buf b = {0};
    size_t have = strlen(out);
    int rc = buf_json_str(&b, s, strlen(s)) ? -1 : 0;
    if (!rc && have + b.len + 1 > cap) rc = -1;
    if (!rc) {
        memcpy(out + have, b.data, b.len);
        out[have + b.len] = 0;
    }
    buf_free(&b);
    return rc;
}

static int h_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p);
        if (o + (plain ? 1 : 3) + 1 > cap) return -1;
        if (plain) out[o++] = (char)*p;
        else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o + 1 > cap) return -1;
    out[o] = 0;
    return 0;
}

/* JSON documents through the payment channels' host (same parser, same
 * limits). */
static void *h_json_parse(const char *text, size_t len, char *why, size_t whylen)
{
    return channels_host()->json_parse(text, len, why, whylen);
}
static const char *h_json_str(const void *doc, const char *path) { return channels_host()->json_str(doc, path); }
static int h_json_int(const void *doc, const char *path, int64_t *out) { return channels_host()->json_int(doc, path, out); }
static void h_json_free(void *doc) { channels_host()->json_free(doc); }
static int h_random(void *out, size_t n) { return crypto_random(out, n) ? -1 : 0; }

static const notichan_host the_host = {
    .abi = NOTICHAN_ABI,
    .alloc = h_alloc,
    .free = h_free,
    .hmac_sha256 = h_hmac,
    .hex = h_hex,
    .b64_encode = h_b64,
    .json_quote = h_json_quote,
    .url_encode = h_url_encode,
    .json_parse = h_json_parse,
    .json_str = h_json_str,
    .json_int = h_json_int,
    .json_free = h_json_free,
    .random = h_random,
};

const notichan_host *nplug_host(void) { return &the_host; }

/* ============================================================== plugins */

#define MAX_DRIVERS 16

static pthread_mutex_t plug_mu = PTHREAD_MUTEX_INITIALIZER;
static int plug_refs;
static struct {
    void *dl;
    const notichan_plugin *p;
} drivers[MAX_DRIVERS];
static int ndrivers;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void unload_locked(void)
{
    for (int i = 0; i < ndrivers; i++) dlclose(drivers[i].dl);
    ndrivers = 0;
}

static int load_locked(const char *dir, err *e)
{
    DIR *dh = opendir(dir);
    /* no plugins folder: only the built-in drivers (log, smtp) */
    if (!dh) return 0;
    char *names[64];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(dh)) && nn < 64) {
        size_t l = strlen(de->d_name);
        if (l > 3 && !strcmp(de->d_name + l - 3, ".so") && (names[nn] = strdup(de->d_name))) nn++;
    }
    closedir(dh);
    qsort(names, (size_t)nn, sizeof *names, by_name);
    int rc = 0;
    for (int i = 0; i < nn && !rc; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
            rc = err_set(e, ERR_INVALID, "plugin %s does not load: %s", path, dlerror());
            break;
        }
        notichan_entry_fn entry;
        *(void **)&entry = dlsym(dl, NOTICHAN_ENTRY);
        if (!entry) { /* another kind of plugin (a payment channel) */
            dlclose(dl);
            continue;
        }
        const notichan_plugin *p = entry(&the_host);
        if (!p || p->abi != NOTICHAN_ABI || !p->name || !p->open || !p->request || !p->response) {
            dlclose(dl);
            rc = err_set(e, ERR_INVALID, "plugin %s: not a notification driver of interface version %d", path, NOTICHAN_ABI);
        } else if (nplug_find(p->name) || !strcmp(p->name, "log") || !strcmp(p->name, "smtp")) {
            dlclose(dl);
            rc = err_set(e, ERR_CONFLICT, "plugin %s: a driver named '%s' exists already", path, p->name);
        } else if (ndrivers == MAX_DRIVERS) {
            dlclose(dl);
            rc = err_set(e, ERR_LIMIT, "plugin %s: more than %d notification drivers", path, MAX_DRIVERS);
        } else {
            drivers[ndrivers].dl = dl;
            drivers[ndrivers].p = p;
            ndrivers++;
        }
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    if (rc) unload_locked();
    return rc;
}

int nplug_acquire(const cfg *c, err *e)
{
    char dir[CFG_PATH];
    channels_dir(c, dir, sizeof dir);
    pthread_mutex_lock(&plug_mu);
    int rc = plug_refs ? 0 : load_locked(dir, e);
    if (!rc) plug_refs++;
    pthread_mutex_unlock(&plug_mu);
    return rc;
}

void nplug_release(void)
{
    pthread_mutex_lock(&plug_mu);
    if (plug_refs > 0 && --plug_refs == 0) unload_locked();
    pthread_mutex_unlock(&plug_mu);
}

const notichan_plugin *nplug_find(const char *name)
{
    /* read while a reference is held: the table does not change then */
    for (int i = 0; i < ndrivers; i++)
        if (!strcmp(drivers[i].p->name, name)) return drivers[i].p;
    return NULL;
}

/* ================================================================= HTTP */

typedef struct nh_conn {
    struct evhttp_connection *c;
    int busy;
} nh_conn;

typedef struct nh_host {
    struct nh_host *next;
    char name[256];
    int port;
    nh_conn *conns;
    int n;
} nh_host;

typedef struct nh_call {
    struct nh_call *prev, *next;     /* in flight, for the pool's end */
    nh_pool *pool;
    nh_done done;
    void *arg;
    nh_conn *conn;                   /* a pooled connection, or NULL */
    struct evhttp_connection *own;   /* a connection of its own (HTTPS) */
} nh_call;

struct nh_pool {
    struct event_base *base;
    int max_per_host;
    nh_host *hosts;
    nh_call *calls;
    int pending;
    SSL_CTX *tls;
};

nh_pool *nh_pool_new(struct event_base *base, int max_per_host)
{
    nh_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base = base;
    p->max_per_host = max_per_host > 0 ? max_per_host : 1;
    return p;
}

int nh_pending(const nh_pool *p) { return p ? p->pending : 0; }

static void call_unlink(nh_call *c)
{
    if (c->prev) c->prev->next = c->next;
    else c->pool->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->pool->pending--;
}

void nh_pool_free(nh_pool *p)
{
    if (!p) return;
    /* a connection frees its requests without calling them back */
    for (nh_host *h = p->hosts, *hn; h; h = hn) {
        hn = h->next;
        for (int i = 0; i < h->n; i++)
            if (h->conns[i].c) evhttp_connection_free(h->conns[i].c);
        free(h->conns);
        free(h);
    }
    for (nh_call *c = p->calls, *cn; c; c = cn) {
        cn = c->next;
        if (c->own) evhttp_connection_free(c->own);
        free(c);
    }
    if (p->tls) SSL_CTX_free(p->tls);
    free(p);
}

static void on_http_done(struct evhttp_request *r, void *arg)
{
    nh_call *c = arg;
    call_unlink(c);
    if (c->conn) c->conn->busy = 0;
    if (!r || evhttp_request_get_response_code(r) == 0) {
        char why[200];
        httpc_no_answer(why, sizeof why);
        c->done(c->arg, 0, NULL, 0, NULL, 0, why);
        free(c);
        return;
    }
    notichan_kv hdr[64];
    size_t nh = 0;
    struct evkeyvalq *h = evhttp_request_get_input_headers(r);
    for (struct evkeyval *kv = h->tqh_first; kv && nh < 64; kv = kv->next.tqe_next) hdr[nh++] = (notichan_kv){kv->key, kv->value};
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    /* a NUL after the body, so that drivers may read it as text */
    evbuffer_add(in, "", 1);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    c->done(c->arg, evhttp_request_get_response_code(r), hdr, nh, body ? body : "", body && len ? len - 1 : 0, NULL);
    free(c);
}

static SSL_CTX *pool_tls(nh_pool *p)
{
    if (p->tls) return p->tls;
    SSL_CTX *t = SSL_CTX_new(TLS_client_method());
    if (!t) return NULL;
    SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION);
    SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(t) != 1) {
        SSL_CTX_free(t);
        return NULL;
    }
    return p->tls = t;
}

/* A connection for host:port: an idle pooled one, a new pooled one, or
 * (the pool full) NULL. */
static nh_conn *pool_conn(nh_pool *p, const char *host, int port, err *e)
{
    nh_host *h;
    for (h = p->hosts; h; h = h->next)
        if (h->port == port && !strcmp(h->name, host)) break;
    if (!h) {
        if (strlen(host) >= sizeof h->name) return NULL;
        h = calloc(1, sizeof *h);
        if (!h || !(h->conns = calloc((size_t)p->max_per_host, sizeof *h->conns))) {
            free(h);
            err_set(e, ERR_NOMEM, "out of memory");
            return NULL;
        }
        snprintf(h->name, sizeof h->name, "%s", host);
        h->port = port;
        h->next = p->hosts;
        p->hosts = h;
    }
    for (int i = 0; i < h->n; i++)
        if (!h->conns[i].busy) return &h->conns[i];
    if (h->n == p->max_per_host) return NULL;
    nh_conn *c = &h->conns[h->n];
    c->c = evhttp_connection_base_new(p->base, NULL, host, (unsigned short)port);
    if (!c->c) return NULL;
    h->n++;
    return c;
}

int nh_request(nh_pool *p, const char *method, const char *url, const char *headers, const char *body, size_t len,
               int timeout_s, nh_done done, void *arg, err *e)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    /* the URL is not repeated: it may carry a token (WeChat's access_token) */
    if (!u) return err_field(e, ERR_INVALID, "invalid_setting", "url", "the gateway's URL is not a URL");
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int tls = scheme && !strcasecmp(scheme, "https");
    if (!scheme || (!tls && strcasecmp(scheme, "http")) || !host || !host[0]) {
        evhttp_uri_free(u);
        return err_field(e, ERR_INVALID, "invalid_setting", "url", "the gateway's URL must be http or https with a host");
    }
    int port = evhttp_uri_get_port(u);
    if (port < 0) port = tls ? 443 : 80;
    char target[2048];
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    snprintf(target, sizeof target, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "", query ? query : "");
    enum evhttp_cmd_type cmd = !strcmp(method, "GET") ? EVHTTP_REQ_GET : !strcmp(method, "PUT") ? EVHTTP_REQ_PUT : EVHTTP_REQ_POST;
    nh_call *c = calloc(1, sizeof *c);
    int rc = 0;
    struct evhttp_connection *conn = NULL;
    if (!c) rc = err_set(e, ERR_NOMEM, "out of memory");
    else {
        c->pool = p;
        c->done = done;
        c->arg = arg;
    }
    if (!rc && tls) {
        SSL_CTX *ctx = pool_tls(p);
        SSL *ssl = ctx ? SSL_new(ctx) : NULL;
        struct bufferevent *bev = NULL;
        /* the certificate must be for this host, not only from a known CA */
        if (!ssl || SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
            SSL_free(ssl);
            rc = err_set(e, ERR_INTERNAL, "cannot set up TLS for %s", host);
        } else if (!(bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS))) {
            SSL_free(ssl);
            rc = err_set(e, ERR_NOMEM, "out of memory");
        } else if (!(c->own = evhttp_connection_base_bufferevent_new(p->base, NULL, bev, host, (unsigned short)port))) {
            bufferevent_free(bev);
            rc = err_set(e, ERR_NOMEM, "out of memory");
        }
        conn = c->own;
    } else if (!rc) {
        c->conn = pool_conn(p, host, port, e);
        if (c->conn) conn = c->conn->c;
        /* more requests than pooled connections: one of its own */
        else if (!(conn = c->own = evhttp_connection_base_new(p->base, NULL, host, (unsigned short)port)))
            rc = err_set(e, ERR_NOMEM, "out of memory");
    }
    struct evhttp_request *r = NULL;
    if (!rc && !(r = evhttp_request_new(on_http_done, c))) rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) {
        evhttp_connection_set_timeout(conn, timeout_s);
        struct evkeyvalq *out = evhttp_request_get_output_headers(r);
        char hostport[300];
        snprintf(hostport, sizeof hostport, (port == (tls ? 443 : 80)) ? "%s" : "%s:%d", host, port);
        evhttp_add_header(out, "Host", hostport);
        if (c->own) evhttp_add_header(out, "Connection", "close");
        httpc_add_headers(out, headers);
        if (body && len) evbuffer_add(evhttp_request_get_output_buffer(r), body, len);
        if (c->own) evhttp_connection_free_on_completion(c->own);
        /* in the pool's list before the request goes: libevent may call
         * on_http_done inside evhttp_make_request (a name that does not
         * resolve fails there), which unlinks and frees the call - so
         * after a request that went, c is not touched again. A
         * connection of its own frees itself once done (after our
         * callback); until then the pool's end frees it. */
        if (c->conn) c->conn->busy = 1;
        c->next = p->calls;
        if (p->calls) p->calls->prev = c;
        p->calls = c;
        p->pending++;
        if (evhttp_make_request(conn, r, cmd, target)) {
            r = NULL; /* freed by evhttp_make_request */
            rc = err_set(e, ERR_IO, "cannot send the request to %s", host);
            call_unlink(c);
            if (c->conn) c->conn->busy = 0;
            if (c->own) {
                evhttp_connection_free(c->own);
                c->own = NULL;
            }
            free(c);
        }
        evhttp_uri_free(u);
        return rc;
    }
    if (r) evhttp_request_free(r);
    if (c && c->own) evhttp_connection_free(c->own);
    free(c);
    evhttp_uri_free(u);
    return rc;
}

/* ================================================================= SMTP */

typedef struct smtp_job {
    struct smtp_job *prev, *next;
    nsmtp *s;
    CURL *h;
    struct curl_slist *rcpt;
    buf mime;
    size_t off;
    nsmtp_done done;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
} smtp_job;

typedef struct smtp_sock {
    struct event *ev;
    curl_socket_t fd;
} smtp_sock;

struct nsmtp {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    smtp_job *jobs;
    int pending;
};

int nsmtp_pending(const nsmtp *s) { return s ? s->pending : 0; }

static void job_free(smtp_job *j)
{
    if (j->prev) j->prev->next = j->next;
    else j->s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->s->pending--;
    curl_multi_remove_handle(j->s->multi, j->h);
    curl_easy_cleanup(j->h);
    curl_slist_free_all(j->rcpt);
    if (j->mime.data) memset(j->mime.data, 0, j->mime.len);
    buf_free(&j->mime);
    free(j);
}

static void check_done(nsmtp *s)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        smtp_job *j = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        if (!j) continue;
        CURLcode res = m->data.result;
        long code = 0;
        curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &code);
        char why[CURL_ERROR_SIZE + 64] = "";
        if (res != CURLE_OK)
            snprintf(why, sizeof why, "%s%s%s", curl_easy_strerror(res), j->errbuf[0] ? ": " : "", j->errbuf);
        nsmtp_done done = j->done;
        void *arg = j->arg;
        job_free(j);
        done(arg, res == CURLE_OK, code, res == CURLE_OK ? NULL : why);
    }
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    nsmtp *s = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(s->multi, fd, action, &running);
    check_done(s);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    nsmtp *s = arg;
    int running = 0;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    nsmtp *s = userp;
    smtp_sock *ss = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ss) {
            event_free(ss->ev);
            free(ss);
        }
        curl_multi_assign(s->multi, fd, NULL);
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!ss) {
        ss = calloc(1, sizeof *ss);
        if (!ss) return -1;
        ss->fd = fd;
        curl_multi_assign(s->multi, fd, ss);
    } else {
        event_free(ss->ev);
    }
    ss->ev = event_new(s->base, fd, kind, on_sock_event, s);
    return ss->ev && event_add(ss->ev, NULL) == 0 ? 0 : -1;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    nsmtp *s = userp;
    if (timeout_ms < 0) {
        evtimer_del(s->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(s->timer, &tv);
}

static size_t read_cb(char *out, size_t size, size_t n, void *arg)
{
    smtp_job *j = arg;
    size_t room = size * n, left = j->mime.len - j->off;
    size_t k = left < room ? left : room;
    if (k) memcpy(out, j->mime.data + j->off, k);
    j->off += k;
    return k;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int nsmtp_new(struct event_base *base, nsmtp **out, err *e)
{
    pthread_once(&curl_once, curl_init_once);
    nsmtp *s = calloc(1, sizeof *s);
    if (!s) return ERR_NOMEM_RET(e);
    s->base = base;
    s->multi = curl_multi_init();
    s->timer = evtimer_new(base, on_timer, s);
    if (!s->multi || !s->timer) {
        nsmtp_free(s);
        return err_set(e, ERR_NOMEM, "cannot set up SMTP (libcurl)");
    }
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    *out = s;
    return 0;
}

void nsmtp_free(nsmtp *s)
{
    if (!s) return;
    while (s->jobs) job_free(s->jobs);
    if (s->multi) curl_multi_cleanup(s->multi);
    if (s->timer) event_free(s->timer);
    free(s);
}

int nsmtp_send(nsmtp *s, const nsmtp_conf *c, const char *from, const char *to, buf *mime, int timeout_s, nsmtp_done done,
               void *arg, err *e)
{
    smtp_job *j = calloc(1, sizeof *j);
    if (!j) return ERR_NOMEM_RET(e);
    j->s = s;
    j->done = done;
    j->arg = arg;
    j->mime = *mime;
    memset(mime, 0, sizeof *mime);
    char addr[300];
    snprintf(addr, sizeof addr, "<%s>", to);
    j->rcpt = curl_slist_append(NULL, addr);
    j->h = curl_easy_init();
    if (!j->rcpt || !j->h) {
        curl_slist_free_all(j->rcpt);
        if (j->h) curl_easy_cleanup(j->h);
        buf_free(&j->mime);
        free(j);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    snprintf(addr, sizeof addr, "<%s>", from);
    CURL *h = j->h;
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, j->rcpt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, j);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->mime.len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)j);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(h, CURLOPT_USE_SSL, c->tls == 2 ? (long)CURLUSESSL_ALL : c->tls == 1 ? (long)CURLUSESSL_TRY : (long)CURLUSESSL_NONE);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (c->username[0]) curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
    if (c->password[0]) curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    s->pending++;
    if (curl_multi_add_handle(s->multi, h) != CURLM_OK) {
        job_free(j);
        return err_set(e, ERR_INTERNAL, "libcurl refused the mail");
    }
    return 0;
}
