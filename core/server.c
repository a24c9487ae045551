/* server.c - the daemon's lifecycle. */
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "api.h"
#include "audit.h"
#include "bg.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "netsync.h"
#include "notify.h"
#include "rules.h"
#include "scheduler.h"
#include "vault.h"

typedef struct waiter {
    http_req *req;
    struct waiter *next;
} waiter;

typedef struct reload_job {
    server *s;
    pthread_t tid;
    struct event *done;
    ruleset *rs;
    rule_error detail;
    err e;
    int rc;
    int64_t t0_ms;
    char source[16];
    char by[96];
    waiter *waiters;
} reload_job;

struct server {
    const cfg *cfg;
    db *db;
    vault *vault;
    ino_t keys_ino;              /* the key file as last read */
    struct timespec keys_mtime;
    bg *bg;
    SSL_CTX *tls;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp *local_http;   /* the control socket: plain HTTP even when TCP is TLS */
    struct evhttp_bound_socket *tcp, *local;
    struct evconnlistener *local_listener;
    char bound[300];
    struct event *ev_term, *ev_int, *ev_hup, *ev_drain, *ev_audit;
    int64_t anchored;            /* the audit record id last anchored */
    int anchor_ticks;            /* audit ticks since the anchor last moved */
    int draining;
    int inflight;
    int64_t started_ms;
    /* reload: one at a time; requests arriving meanwhile wait for the next */
    reload_job *reload;
    waiter *next_waiters;
    int reload_again;
    char next_source[16], next_by[96];
    /* file watcher: inotify descriptor and the folder of each watch */
    int ino_fd;
    char *wd_path[1024];
    struct event *ev_ino, *ev_debounce;
    /* scheduler thread */
    server_channel chans[8];
    int nchans;
    pthread_t sched_tid;
    int sched_started;
    netsync *netsync;            /* network enforcement, when radius is configured */
    notify_dispatcher *notify;   /* outbox delivery (notify.dispatch) */
    volatile int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

db *server_db(server *s) { return s->db; }
/* The key file may have changed under us (`bandbill keys rotate|prune` in
 * another process): one stat per use keeps this process encrypting with
 * the current key and able to read values under a new one. */
static void reload_vault(server *s, const char *why)
{
    err e;
    vault *nv;
    if (vault_open(s->cfg->keys_file, &nv, &e) == 0) {
        vault_close(s->vault);
        s->vault = nv;
        log_msg(LOG_INFO, "keys_reloaded", "%s: current key %s", why, vault_current_key(nv));
    } else {
        log_msg(LOG_ERROR, "keys_reload_failed", "%s", e.msg);
    }
}

vault *server_vault(server *s)
{
    struct stat st;
    if (s->vault && stat(s->cfg->keys_file, &st) == 0 &&
        (st.st_ino != s->keys_ino || st.st_mtim.tv_sec != s->keys_mtime.tv_sec ||
         st.st_mtim.tv_nsec != s->keys_mtime.tv_nsec)) {
        if (s->keys_ino) reload_vault(s, "the key file changed");
        s->keys_ino = st.st_ino;
        s->keys_mtime = st.st_mtim;
    }
    return s->vault;
}
bg *server_bg(server *s) { return s->bg; }
struct event_base *server_base(server *s) { return s->base; }
int server_tls(server *s) { return s->tls != NULL; }
const cfg *server_cfg(server *s) { return s->cfg; }
int64_t server_started_ms(server *s) { return s->started_ms; }
int server_draining(server *s) { return s->draining; }

void server_request_started(server *s) { s->inflight++; }

void server_request_finished(server *s)
{
    s->inflight--;
    if (s->draining && s->inflight == 0 && !s->reload) event_base_loopexit(s->base, NULL);
}

static void on_complete(struct evhttp_request *r, void *arg)
{
    (void)r;
    server_request_finished(arg);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    server *s = arg;
    server_request_started(s);
    evhttp_request_set_on_complete_cb(r, on_complete, s);
    http_handle(s, r);
}

/* ---------------------------------------------------------------- reload */

static void *reload_thread(void *arg)
{
    reload_job *j = arg;
    rules_snapshot *snap;
    j->rc = rules_snapshot_read(j->s->cfg->rules, &snap, &j->e);
    if (!j->rc) {
        j->rc = ruleset_load(snap, rules_limits(), 1, &j->rs, &j->detail, &j->e);
        rules_snapshot_unref(snap);
    }
    event_active(j->done, 0, 0);
    log_release();
    return NULL;
}

/* A reload nobody asked for over HTTP (a signal, the watcher) is recorded
 * in the audit trail as the system's. */
static void audit_system_reload(server *s, reload_job *j, const char *previous, int changed)
{
    if (!s->vault) return;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *d = jv_obj(&a);
    jv_obj_set_str(&a, d, "source", j->source);
    jv_obj_set_str(&a, d, "previous", previous);
    jv_obj_set_str(&a, d, "version", j->rc ? previous : j->rs->snap->version);
    jv_obj_set_bool(&a, d, "changed", changed);
    if (j->rc) jv_obj_set_str(&a, d, "error", j->e.msg);
    audit_who who = {.actor = "system", .role = "system", .source = j->source, .request_id = NULL};
    audit_event ev = {.action = j->rc ? "rules.reload_failed" : "rules.reload", .object_type = "rules", .detail = d};
    err e;
    int rc = db_begin(s->db, &e);
    if (!rc) rc = audit_append(s->db, vault_audit_key(s->vault), &who, &ev, &e);
    if (!rc) rc = db_commit(s->db, &e);
    if (rc) {
        if (db_in_tx(s->db)) db_rollback(s->db);
        log_msg(LOG_ERROR, "audit_failed", "rules reload: %s", e.msg);
    }
    jv_arena_free(&a);
}

static void reply_reload(reload_job *j, const char *previous, int changed)
{
    if (!j->waiters) audit_system_reload(j->s, j, previous, changed);
    for (waiter *w = j->waiters, *n; w; w = n) {
        n = w->next;
        jv_arena *a = http_arena(w->req);
        jv *d = jv_obj(a);
        jv_obj_set_str(a, d, "previous", previous);
        jv_obj_set_str(a, d, "version", j->rc ? previous : j->rs->snap->version);
        jv_obj_set_bool(a, d, "changed", changed);
        if (j->rc) jv_obj_set_str(a, d, "error", j->e.msg);
        audit_event ev = {.action = j->rc ? "rules.reload_failed" : "rules.reload", .object_type = "rules", .detail = d};
        http_audit_now(w->req, &ev);
        if (j->rc) {
            http_reply_rule_error(w->req, 422, &j->e, &j->detail);
        } else {
            jw out;
            if (jw_init(&out, 0) == 0) {
                jw_obj_open(&out);
                jw_kv_str(&out, "version", j->rs->snap->version);
                jw_kv_str(&out, "previous", previous);
                jw_kv_bool(&out, "changed", changed);
                jw_kv_int(&out, "modules", (int64_t)lhost_module_count(j->rs->host));
                jw_kv_int(&out, "examples", j->rs->examples);
                jw_kv_int(&out, "ms", db_now_ms() - j->t0_ms);
                jw_obj_close(&out);
                http_reply_json(w->req, 200, &out);
            }
        }
        free(w);
    }
    j->waiters = NULL;
}

static void start_reload(server *s, const char *source, const char *by, waiter *waiters);

static void reload_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reload_job *j = arg;
    server *s = j->s;
    pthread_join(j->tid, NULL);
    char previous[RULES_VERSION_LEN] = "";
    ruleset *live = rules_live();
    if (live) snprintf(previous, sizeof previous, "%s", live->snap->version);
    ruleset_unref(live);
    int changed = 0;
    if (j->rc == 0) {
        changed = strcmp(previous, j->rs->snap->version) != 0;
        if (changed) {
            err se;
            if (rules_store(s->db, j->rs->snap, j->by, j->source, &se))
                log_msg(LOG_ERROR, "rules_store_failed", "version %.12s: %s", j->rs->snap->version, se.msg);
            rules_live_set(ruleset_ref(j->rs));
        }
    }
    rules_count_reload(j->rc == 0);
    log_line *l = log_begin(j->rc ? LOG_ERROR : LOG_INFO, j->rc ? "rules_reload_failed" : "rules_reloaded");
    log_str(l, "source", j->source);
    log_str(l, "by", j->by);
    if (j->rc) {
        log_str(l, "error", j->e.msg);
        log_strn(l, "kept_version", previous, 12);
    } else {
        log_strn(l, "version", j->rs->snap->version, 12);
        log_strn(l, "previous", previous, 12);
        log_int(l, "changed", changed);
    }
    log_int(l, "ms", db_now_ms() - j->t0_ms);
    log_end(l);
    reply_reload(j, previous, changed);
    ruleset_unref(j->rs);
    event_free(j->done);
    free(j);
    s->reload = NULL;
    if (s->reload_again && !s->draining) {
        waiter *w = s->next_waiters;
        s->next_waiters = NULL;
        s->reload_again = 0;
        start_reload(s, s->next_source, s->next_by, w);
    } else if (s->draining && s->inflight == 0) {
        event_base_loopexit(s->base, NULL);
    }
}

static void fail_waiters(waiter *w, const char *msg)
{
    for (waiter *n; w; w = n) {
        n = w->next;
        http_reply_errf(w->req, 503, "unavailable", "", "%s", msg);
        free(w);
    }
}

static void start_reload(server *s, const char *source, const char *by, waiter *waiters)
{
    reload_job *j = calloc(1, sizeof *j);
    if (!j) {
        fail_waiters(waiters, "out of memory");
        return;
    }
    j->s = s;
    j->waiters = waiters;
    j->t0_ms = db_now_ms();
    snprintf(j->source, sizeof j->source, "%s", source);
    snprintf(j->by, sizeof j->by, "%s", by);
    j->done = event_new(s->base, -1, 0, reload_done, j);
    if (!j->done || pthread_create(&j->tid, NULL, reload_thread, j) != 0) {
        if (j->done) event_free(j->done);
        fail_waiters(j->waiters, "cannot start a reload");
        free(j);
        return;
    }
    s->reload = j;
}

void server_reload(server *s, const char *source, const char *by, http_req *req)
{
    waiter *w = NULL;
    if (req) {
        w = calloc(1, sizeof *w);
        if (!w) {
            http_reply_errf(req, 503, "unavailable", "", "out of memory");
            return;
        }
        w->req = req;
    }
    if (s->draining) {
        fail_waiters(w, "the server is shutting down");
        return;
    }
    if (!s->reload) {
        start_reload(s, source, by, w);
        return;
    }
    /* a reload is running on files read before this request: queue one more */
    if (w) {
        w->next = s->next_waiters;
        s->next_waiters = w;
    }
    s->reload_again = 1;
    snprintf(s->next_source, sizeof s->next_source, "%s", source);
    snprintf(s->next_by, sizeof s->next_by, "%s", by);
}

/* ------------------------------------------------------------ file watch */

static int watch_tree(server *s, const char *dir, int depth)
{
    if (depth > 8) return 0;
    int wd = inotify_add_watch(s->ino_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE);
    if (wd < 0) return -1;
    if (wd < (int)(sizeof s->wd_path / sizeof *s->wd_path)) {
        free(s->wd_path[wd]);
        s->wd_path[wd] = strdup(dir);
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char sub[4096];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) watch_tree(s, sub, depth + 1);
    }
    closedir(d);
    return 0;
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_reload(arg, "watch", "file watcher", NULL);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    server *s = arg;
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;
    while ((n = read(fd, events, sizeof events)) > 0) {
        for (char *p = events; p < events + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            /* a folder made after start needs a watch of its own */
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->len && ev->name[0] != '.' &&
                ev->wd >= 0 && ev->wd < (int)(sizeof s->wd_path / sizeof *s->wd_path) && s->wd_path[ev->wd]) {
                char sub[4096];
                snprintf(sub, sizeof sub, "%s/%s", s->wd_path[ev->wd], ev->name);
                watch_tree(s, sub, 1);
            }
            p += sizeof *ev + ev->len;
        }
    }
    /* editors write in bursts: reload once things are quiet */
    struct timeval tv = {0, 300000};
    event_add(s->ev_debounce, &tv);
}

static int start_watch(server *s, err *e)
{
    s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->ino_fd < 0 || watch_tree(s, s->cfg->rules, 0))
        return err_set(e, ERR_IO, "cannot watch %s: %s", s->cfg->rules, strerror(errno));
    s->ev_ino = event_new(s->base, s->ino_fd, EV_READ | EV_PERSIST, on_inotify, s);
    s->ev_debounce = evtimer_new(s->base, on_debounce, s);
    if (!s->ev_ino || !s->ev_debounce || event_add(s->ev_ino, NULL))
        return err_set(e, ERR_NOMEM, "cannot start the file watcher");
    return 0;
}

/* ------------------------------------------------------------- scheduler */

static void *sched_thread(void *arg)
{
    server *s = arg;
    db *d = NULL;
    err e;
    if (db_open(s->cfg->db, 0, &d, &e)) {
        log_msg(LOG_ERROR, "scheduler", "cannot open the database: %s", e.msg);
        log_release();
        return NULL;
    }
    while (!s->stop) {
        if (sched_tick(d, s->cfg, time(NULL), &s->stop, &e)) log_msg(LOG_ERROR, "scheduler", "%s", e.msg);
        /* wake a second after the next minute starts, or at once when stopping */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec = until.tv_sec - until.tv_sec % 60 + 61;
        until.tv_nsec = 0;
        pthread_mutex_lock(&s->mu);
        while (!s->stop) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
        }
        pthread_mutex_unlock(&s->mu);
    }
    db_close(d);
    log_release();
    return NULL;
}

/* --------------------------------------------------------------- signals */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server *s = arg;
    log_msg(LOG_WARN, "shutdown_forced", "%d requests still in flight after %llds", s->inflight,
            (long long)s->cfg->http_shutdown_s);
    event_base_loopexit(s->base, NULL);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *s = arg;
    if (s->draining) return;
    s->draining = 1;
    log_line *l = log_begin(LOG_INFO, "shutdown");
    log_str(l, "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    log_int(l, "in_flight", s->inflight);
    log_end(l);
    /* stop accepting: new connections are refused from now on */
    if (s->tcp) evhttp_del_accept_socket(s->http, s->tcp);
    if (s->local) evhttp_del_accept_socket(s->local_http, s->local);
    s->tcp = s->local = NULL;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    fail_waiters(s->next_waiters, "the server is shutting down");
    s->next_waiters = NULL;
    if (s->inflight == 0 && !s->reload) {
        event_base_loopexit(s->base, NULL);
        return;
    }
    struct timeval tv = {(time_t)s->cfg->http_shutdown_s, 0};
    s->ev_drain = evtimer_new(s->base, on_drain_timeout, s);
    if (s->ev_drain) event_add(s->ev_drain, &tv);
}

static int open_log(const cfg *c, err *e)
{
    if (!c->log_file[0]) return 0;
    int fd = open(c->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return err_set(e, ERR_IO, "cannot open log file %s: %s", c->log_file, strerror(errno));
    int old = log_set_fd(fd);
    if (old > 2) close(old);
    return 0;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    server *s = arg;
    err e;
    /* reopen the log so that logrotate can move the old file away */
    if (open_log(s->cfg, &e)) log_msg(LOG_ERROR, "log_reopen_failed", "%s", e.msg);
    /* and the key file (a key file that no longer opens leaves the old
     * keys in use) */
    reload_vault(s, "SIGHUP");
    log_msg(LOG_INFO, "sighup", "reloading rules");
    server_reload(s, "sighup", "SIGHUP", NULL);
}

/* Queued audit records are written, and the chain's head is anchored
 * outside the database whenever it moved: cutting the newest records off
 * then shows within a tick. */
static void on_audit_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server *s = arg;
    http_audit_flush(s);
    /* the anchor (a file written durably) moves at most once a second */
    if (s->anchor_ticks < 1000 / AUDIT_FLUSH_MS && ++s->anchor_ticks < 1000 / AUDIT_FLUSH_MS) return;
    err e;
    int64_t head = 0;
    if (!s->vault || db_get_int(s->db, &e, &head, "SELECT coalesce(max(id), 0) FROM audit_log", NULL) || head == s->anchored)
        return;
    s->anchor_ticks = 0;
    /* once per head position, so a broken trail is logged, not flooded */
    if (audit_anchor_write(s->db, vault_audit_key(s->vault), s->cfg->audit_anchor, &e))
        log_msg(LOG_ERROR, "audit_anchor_failed", "%s", e.msg);
    s->anchored = head;
}

/* ------------------------------------------------------------- listeners */

static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    server *s = arg;
    SSL *ssl = SSL_new(s->tls);
    return ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) : NULL;
}

static int start_tls(server *s, err *e)
{
    const cfg *c = s->cfg;
    if (!c->tls_cert[0]) return 0;
    s->tls = SSL_CTX_new(TLS_server_method());
    if (!s->tls) return err_set(e, ERR_NOMEM, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION);
    SSL_CTX_set_options(s->tls, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(s->tls, c->tls_cert) != 1)
        return err_field(e, ERR_INVALID, "invalid_config", "tls.cert", "cannot use certificate %s: %s", c->tls_cert,
                         ERR_reason_error_string(ERR_get_error()));
    if (SSL_CTX_use_PrivateKey_file(s->tls, c->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(s->tls) != 1)
        return err_field(e, ERR_INVALID, "invalid_config", "tls.key", "cannot use private key %s: %s", c->tls_key,
                         ERR_reason_error_string(ERR_get_error()));
    evhttp_set_bevcb(s->http, tls_bev, s);
    return 0;
}

static int bind_local(server *s, err *e)
{
    const char *path = s->cfg->socket;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) return err_set(e, ERR_INVALID, "socket path %s is too long", path);
    memcpy(sa.sun_path, path, strlen(path));
    /* a socket file left by a killed daemon is stale if nobody answers on it */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) {
        if (connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            return err_set(e, ERR_CONFLICT, "another bandbill is already serving on %s", path);
        }
        close(probe);
    }
    unlink(path);
    mode_t old = umask(0177);
    s->local_listener = evconnlistener_new_bind(s->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                                (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (!s->local_listener) return err_set(e, ERR_IO, "cannot listen on %s: %s", path, strerror(errno));
    chmod(path, 0600);
    s->local = evhttp_bind_listener(s->local_http, s->local_listener);
    if (!s->local) return err_set(e, ERR_IO, "cannot serve on %s", path);
    return 0;
}

static int bind_tcp(server *s, err *e)
{
    char host[256];
    int port;
    if (cfg_split_listen(s->cfg->listen, host, sizeof host, &port, e)) return e->code;
    s->tcp = evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!s->tcp) return err_set(e, ERR_IO, "cannot listen on %s: %s", s->cfg->listen, strerror(errno));
    /* report the real port (the config may say 0 for "any free port") */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s->tcp);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char addr[128];
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            evutil_inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
            snprintf(s->bound, sizeof s->bound, "%s:%d", addr, ntohs(in->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
            evutil_inet_ntop(AF_INET6, &in->sin6_addr, addr, sizeof addr);
            snprintf(s->bound, sizeof s->bound, "[%s]:%d", addr, ntohs(in->sin6_port));
        }
    }
    if (!s->bound[0]) snprintf(s->bound, sizeof s->bound, "%s", s->cfg->listen);
    return 0;
}

/* -------------------------------------------------------------- channels */

/* Opens every channel the config names, through its plugin: a channel
 * that cannot open (no plugin, a missing key file, an unknown setting)
 * stops the start, since its notifications would be refused. */
static int open_channels(server *s, err *e)
{
    const cfg *c = s->cfg;
    const char *names[8];
    int n = cfg_channels(c, names, 8);
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        server_channel *sc = &s->chans[s->nchans];
        memset(sc, 0, sizeof *sc);
        snprintf(sc->name, sizeof sc->name, "%s", names[i]);
        const char *app = channels_setting(c, names[i], "app_id"), *mch = channels_setting(c, names[i], "merchant_id");
        const char *ttl = channels_setting(c, names[i], "order_ttl_min");
        snprintf(sc->app_id, sizeof sc->app_id, "%s", app ? app : "");
        snprintf(sc->merchant_id, sizeof sc->merchant_id, "%s", mch ? mch : "");
        sc->order_ttl_min = 120;
        if (ttl) {
            char *end;
            long long v = strtoll(ttl, &end, 10);
            if (!ttl[0] || *end || v < 1 || v > 7 * 24 * 60)
                return err_field(e, ERR_INVALID, "invalid_config", "order_ttl_min",
                                 "channel.%s.order_ttl_min is 1 to 10080 minutes, got '%s'", names[i], ttl);
            sc->order_ttl_min = v;
        }
        rc = channel_open_configured(c, names[i], &sc->ch, e);
        if (!rc) {
            s->nchans++;
            log_msg(LOG_INFO, "channel_open", "payment channel %s (%s) open", names[i], sc->ch.p->title);
        }
    }
    return rc;
}

const server_channel *server_channel_find(server *s, const char *name)
{
    for (int i = 0; i < s->nchans; i++)
        if (!strcmp(s->chans[i].name, name)) return &s->chans[i];
    return NULL;
}

/* ------------------------------------------------------------------- run */

static void cleanup(server *s)
{
    notify_stop(s->notify);
    s->notify = NULL;
    netsync_stop(s->netsync);
    s->netsync = NULL;
    if (s->sched_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->sched_tid, NULL);
    }
    if (s->reload) {
        pthread_join(s->reload->tid, NULL);
        fail_waiters(s->reload->waiters, "the server is shutting down");
        ruleset_unref(s->reload->rs);
        event_free(s->reload->done);
        free(s->reload);
    }
    fail_waiters(s->next_waiters, "the server is shutting down");
    bg_stop(s->bg);
    if (s->http) evhttp_free(s->http);
    if (s->local_http) evhttp_free(s->local_http);
    if (s->tls) SSL_CTX_free(s->tls);
    if (s->local_listener) unlink(s->cfg->socket);
    if (s->db) http_audit_flush(s);
    http_audit_release();
    /* the last word of this run, outside the database */
    err ae;
    if (s->db && s->vault && audit_anchor_write(s->db, vault_audit_key(s->vault), s->cfg->audit_anchor, &ae))
        log_msg(LOG_ERROR, "audit_anchor_failed", "%s", ae.msg);
    struct event *evs[] = {s->ev_term, s->ev_int, s->ev_hup, s->ev_drain, s->ev_ino, s->ev_debounce, s->ev_audit};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        if (evs[i]) event_free(evs[i]);
    if (s->ino_fd > 0) close(s->ino_fd);
    for (size_t i = 0; i < sizeof s->wd_path / sizeof *s->wd_path; i++) free(s->wd_path[i]);
    rules_live_clear();
    api_pay_release();
    httpc_release();
    for (int i = 0; i < s->nchans; i++) channel_close(&s->chans[i].ch);
    channels_unload();
    if (s->base) event_base_free(s->base);
    db_close(s->db);
    vault_close(s->vault);
    http_release();
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

int server_run(const cfg *c, err *e)
{
    server sv, *s = &sv;
    memset(s, 0, sizeof sv);
    s->cfg = c;
    s->ino_fd = -1;
    s->started_ms = db_now_ms();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = open_log(c, e);
    if (!rc && evthread_use_pthreads()) rc = err_set(e, ERR_INTERNAL, "libevent has no thread support");
    if (!rc) rc = db_open(c->db, 0, &s->db, e);
    if (!rc) rc = migrate_require_current(s->db, e);
    /* no key file, no daemon: the audit trail and encrypted data need it */
    if (!rc && ((rc = vault_open(c->keys_file, &s->vault, e)) == ERR_IO || rc == ERR_NOTFOUND))
        err_prefix(e, "run `bandbill init` to create the key file, or set keys.file");
    if (!rc) server_vault(s); /* remember the key file as read */
    if (!rc) rc = open_channels(s, e);
    if (!rc) {
        lhost_limits lim = {(uint64_t)c->rules_max_instructions, (size_t)c->rules_max_memory_mb << 20};
        rules_set_limits(&lim);
        rule_error re;
        rc = rules_reload(c->rules, &re, e);
        if (rc) err_prefix(e, "the rules in %s cannot be loaded", c->rules);
    }
    if (!rc && !(s->base = event_base_new())) rc = err_set(e, ERR_NOMEM, "cannot create the event loop");
    if (!rc && (!(s->http = evhttp_new(s->base)) || !(s->local_http = evhttp_new(s->base))))
        rc = err_set(e, ERR_NOMEM, "cannot create the HTTP server");
    if (!rc) rc = bg_start(s->base, 2, &s->bg, e);
    for (int i = 0; !rc && i < 2; i++) {
        struct evhttp *h = i ? s->local_http : s->http;
        evhttp_set_timeout(h, (int)c->http_timeout_s);
        /* evhttp refuses beyond twice our limit on its own; below that we
         * refuse with a JSON body naming the limit */
        evhttp_set_max_body_size(h, (ev_ssize_t)c->http_max_body_kb * 2048);
        evhttp_set_max_headers_size(h, 32 * 1024);
        evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                          EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
        evhttp_set_gencb(h, on_request, s);
    }
    if (!rc) rc = start_tls(s, e);
    if (!rc) rc = bind_tcp(s, e);
    if (!rc) rc = bind_local(s, e);
    if (!rc) {
        /* recorded only once this process owns the listeners: a second
         * daemon refused above leaves no trace */
        ruleset *rs = rules_live();
        char by[64];
        snprintf(by, sizeof by, "bandbill serve (pid %d)", (int)getpid());
        rc = rules_store(s->db, rs->snap, by, "start", e);
        ruleset_unref(rs);
    }
    if (!rc) {
        signal(SIGPIPE, SIG_IGN);
        s->ev_term = evsignal_new(s->base, SIGTERM, on_stop, s);
        s->ev_int = evsignal_new(s->base, SIGINT, on_stop, s);
        s->ev_hup = evsignal_new(s->base, SIGHUP, on_hup, s);
        if (!s->ev_term || !s->ev_int || !s->ev_hup || event_add(s->ev_term, NULL) || event_add(s->ev_int, NULL) ||
            event_add(s->ev_hup, NULL))
            rc = err_set(e, ERR_INTERNAL, "cannot install signal handlers");
    }
    if (!rc) {
        struct timeval tv = {0, AUDIT_FLUSH_MS * 1000};
        s->ev_audit = event_new(s->base, -1, EV_PERSIST, on_audit_tick, s);
        if (!s->ev_audit || event_add(s->ev_audit, &tv)) rc = err_set(e, ERR_NOMEM, "cannot start the audit timer");
    }
    if (!rc && c->rules_watch) rc = start_watch(s, e);
    if (!rc) {
        if (pthread_create(&s->sched_tid, NULL, sched_thread, s) != 0)
            rc = err_set(e, ERR_INTERNAL, "cannot start the scheduler");
        else
            s->sched_started = 1;
    }
    if (!rc) rc = netsync_start(c, &s->netsync, e);
    if (!rc && c->notify_dispatch) rc = notify_start(c, &s->notify, e);
    if (rc) {
        cleanup(s);
        return rc;
    }
    ruleset *rs = rules_live();
    log_line *l = log_begin(LOG_INFO, "ready");
    log_str(l, "listen", s->bound);
    log_str(l, "scheme", s->tls ? "https" : "http");
    log_str(l, "socket", c->socket);
    log_str(l, "db", c->db);
    log_strn(l, "rules_version", rs->snap->version, 12);
    log_str(l, "version", BB_VERSION);
    log_int(l, "startup_ms", db_now_ms() - s->started_ms);
    log_end(l);
    ruleset_unref(rs);

    event_base_dispatch(s->base);

    log_msg(LOG_INFO, "stopped", "bye");
    cleanup(s);
    return 0;
}
