/* api_audit.c - reading and checking the audit trail (audit.read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "server.h"
#include "vault.h"

/* Newest first; filters: from, to (UTC instants), actor, action,
 * object_type, object_id. */
int api_audit_list(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = INT64_MAX;
    if (cursor) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || before <= 0) {
            http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
            return HTTP_DONE;
        }
    }
    const char *from = http_query(q, "from"), *to = http_query(q, "to");
    int64_t ms;
    if ((from && db_parse_time(from, &ms)) || (to && db_parse_time(to, &ms))) {
        http_reply_errf(q, 400, "invalid_parameter", from && db_parse_time(from, &ms) ? "from" : "to",
                        "times are UTC like 2026-11-27T00:00:00.000Z");
        return HTTP_DONE;
    }
    const char *actor = http_query(q, "actor"), *action = http_query(q, "action");
    const char *otype = http_query(q, "object_type"), *oid = http_query(q, "object_id");
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT id, at, actor, role, source, request_id, action, object_type, object_id, diff, hash "
                            "FROM audit_log WHERE id < ? AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) "
                            "AND (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?) "
                            "AND (? IS NULL OR object_type = ?) AND (? IS NULL OR object_id = ?) "
                            "ORDER BY id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, before);
    const char *pairs[] = {from, to, actor, action, otype, oid};
    for (int i = 0; i < 6; i++) {
        db_bind_text(s, 2 + 2 * i, pairs[i]);
        db_bind_text(s, 3 + 2 * i, pairs[i]);
    }
    db_bind_int(s, 14, limit + 1);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_arr_open(&w);
    int n = 0, rc;
    int64_t last = 0, more = 0;
    jv_arena *a = http_arena(q);
    while ((rc = db_step(d, s, &e)) == DB_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        last = db_col_int(s, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "id", last);
        static const char *const cols[] = {NULL, "at", "actor", "role", "source", "request_id", "action", "object_type", "object_id"};
        for (int c = 1; c <= 8; c++) jw_kv_str(&w, cols[c], db_col_is_null(s, c) ? NULL : db_col_text(s, c));
        jw_key(&w, "diff");
        jv *diff = NULL;
        if (!db_col_is_null(s, 9) && json_parse(db_col_text(s, 9), db_col_bytes(s, 9), NULL, a, &diff, &e) == 0) jw_jv(&w, diff);
        else jw_null(&w);
        jw_kv_str(&w, "hash", db_col_text(s, 10));
        jw_obj_close(&w);
        n++;
    }
    db_done(s);
    jw_arr_close(&w);
    char next[32];
    snprintf(next, sizeof next, "%lld", (long long)last);
    jw_kv_str(&w, "next_cursor", more ? next : NULL);
    jw_obj_close(&w);
    if (rc < 0) {
        jw_free(&w);
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_audit_verify(http_req *q)
{
    server *s = http_server(q);
    if (!server_vault(s)) {
        http_reply_errf(q, 503, "unavailable", "", "the key file is needed to check the chain");
        return HTTP_DONE;
    }
    audit_check c;
    err e;
    if (audit_verify(server_db(s), vault_audit_key(server_vault(s)), &c, &e) ||
        (!c.first_bad_id && audit_anchor_check(server_db(s), vault_audit_key(server_vault(s)), server_cfg(s)->audit_anchor, &c, &e))) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_int(&w, "records", c.records);
    jw_kv_bool(&w, "intact", c.first_bad_id == 0);
    if (c.first_bad_id) {
        jw_kv_int(&w, "first_bad_id", c.first_bad_id);
        jw_kv_str(&w, "why", c.why);
    }
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}
