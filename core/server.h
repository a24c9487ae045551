/* server.h - the daemon: event loop, listeners, signals, graceful shutdown,
 * hot reload of the rules, the file watcher and the scheduler thread.
 *
 * Threads: the loop thread owns the HTTP server, the live rule set and its
 * own database connection; a rule reload is built on a worker thread and
 * swapped in on the loop thread; the scheduler thread runs jobs on its own
 * connection and its own rules. */
#ifndef BB_SERVER_H
#define BB_SERVER_H

#include <stdint.h>

#include "cfg.h"
#include "channels.h"
#include "db.h"
#include "err.h"
#include "http.h"

typedef struct server server;

/* Runs the daemon until SIGTERM/SIGINT; returns 0 after a clean drain. */
int server_run(const cfg *c, err *e);

/* A payment channel configured ([channel.NAME] in the config) and opened
 * at start; its plugin is called on the loop thread only. */
typedef struct server_channel {
    char name[32];
    channel_handle ch;
    char app_id[80];         /* what notifications must be paid to (core settings app_id, merchant_id) */
    char merchant_id[80];
    int64_t order_ttl_min;   /* how long a payment order stays open (default 120) */
} server_channel;
/* The configured channel of that name, or NULL. */
const server_channel *server_channel_find(server *s, const char *name);

/* For handlers. */
struct vault;
struct bg;
db *server_db(server *s);
struct vault *server_vault(server *s);
struct bg *server_bg(server *s);
struct event_base *server_base(server *s);
int server_tls(server *s);
const cfg *server_cfg(server *s);
int64_t server_started_ms(server *s);
int server_draining(server *s);
/* Starts a reload of the rules folder; `waiter` (may be NULL) gets the
 * reply when it is done. source: "api", "sighup", "watch". */
void server_reload(server *s, const char *source, const char *by, http_req *waiter);

/* Counts requests in flight, for the drain (http.c calls these). */
void server_request_started(server *s);
void server_request_finished(server *s);

#endif
