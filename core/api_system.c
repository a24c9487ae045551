/* api_system.c - health and metrics. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "buf.h"
#include "db.h"
#include "lua_host.h"
#include "metrics.h"
#include "rules.h"
#include "server.h"

int api_healthz(http_req *q)
{
    server *s = http_server(q);
    err e;
    int64_t one = 0;
    int db_ok = db_get_int(server_db(s), &e, &one, "SELECT 1", NULL) == 0 && one == 1;
    ruleset *rs = rules_live();
    int ok = db_ok && rs && !server_draining(s);
    jw w;
    if (jw_init(&w, 0)) {
        ruleset_unref(rs);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    jw_obj_open(&w);
    jw_kv_str(&w, "status", ok ? "ok" : server_draining(s) ? "stopping" : "degraded");
    jw_kv_str(&w, "database", db_ok ? "ok" : "error");
    jw_kv_str(&w, "rules_version", rs ? rs->snap->version : NULL);
    jw_kv_int(&w, "uptime_s", (db_now_ms() - server_started_ms(s)) / 1000);
    jw_kv_str(&w, "version", BB_VERSION);
    jw_obj_close(&w);
    ruleset_unref(rs);
    http_reply_json(q, ok ? 200 : 503, &w);
    return HTTP_DONE;
}

int api_metrics(http_req *q)
{
    server *s = http_server(q);
    metric_set(metrics_gauge("bandbill_up", "1 while the daemon serves", ""), 1);
    metric_set(metrics_gauge("bandbill_uptime_seconds", "Seconds since the daemon started", ""),
               (db_now_ms() - server_started_ms(s)) / 1000);
    metric_set(metrics_gauge("bandbill_rules_memory_bytes", "Bytes held by all rule states", ""),
               (int64_t)lhost_memory_all());
    /* the collectors' queue, read at scrape time (a partial index holds
     * only open tasks); a database error leaves the last values */
    static const char *const prios[] = {"low", "high"};
    for (int i = 0; i < 2; i++) {
        int64_t n = 0;
        err e = {0};
        char label[32];
        snprintf(label, sizeof label, "priority=\"%s\"", prios[i]);
        if (!db_get_int(server_db(s), &e, &n, "SELECT count(*) FROM collection_tasks WHERE status = 'open' AND priority = ?", "s",
                        prios[i]))
            metric_set(metrics_gauge("bandbill_collection_tasks_open", "Open collection tasks, by priority", label), n);
    }
    buf b = {0};
    if (metrics_render(&b)) {
        buf_free(&b);
        http_reply_errf(q, 500, "internal", "", "out of memory");
        return HTTP_DONE;
    }
    http_reply_raw(q, 200, "text/plain; version=0.0.4; charset=utf-8", buf_cstr(&b), b.len);
    buf_free(&b);
    return HTTP_DONE;
}
