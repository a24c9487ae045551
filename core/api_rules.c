/* api_rules.c - the live rule set, reload, calls and stored versions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "rules.h"
#include "server.h"

int api_rules_get(http_req *q)
{
    ruleset *rs = rules_live();
    if (!rs) {
        http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_kv_str(&w, "version", rs->snap->version);
    char at[25];
    db_format_time(rs->loaded_ms, at);
    jw_kv_str(&w, "loaded_at", at);
    jw_kv_int(&w, "examples", rs->examples);
    jw_key(&w, "modules");
    jw_arr_open(&w);
    for (size_t i = 0; i < lhost_module_count(rs->host); i++) {
        const char *name = lhost_module_name(rs->host, i);
        jw_obj_open(&w);
        jw_kv_str(&w, "name", name);
        jw_key(&w, "functions");
        jw_arr_open(&w);
        buf fns = {0};
        lhost_module_functions(rs->host, name, &fns);
        for (char *p = fns.data, *nl; p && *p; p = nl + 1) {
            nl = strchr(p, '\n');
            if (!nl) break;
            jw_strn(&w, p, (size_t)(nl - p));
        }
        buf_free(&fns);
        jw_arr_close(&w);
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_obj_close(&w);
    ruleset_unref(rs);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_rules_reload(http_req *q)
{
    char by[96];
    auth_label(http_who(q), by, sizeof by);
    server_reload(http_server(q), "api", by, q);
    return HTTP_DEFERRED;
}

int api_rules_call(http_req *q)
{
    static const http_field spec[] = {{"function", 's', 0}, {"input", '*', 0}, {"args", 'a', 0}, {NULL, 0, 0}};
    const jv *body = http_body(q);
    if (http_check_body(q, body, spec, 0)) return HTTP_DONE;
    const jv *fn = jv_get(body, "function");
    if (!fn || fn->kind != JV_STR) {
        http_reply_errf(q, 400, "missing_field", "function", "'function' must be a string like \"tariffs.monthly\"");
        return HTTP_DONE;
    }
    const jv *input = jv_get(body, "input"), *args = jv_get(body, "args");
    const jv *argv[8];
    int argc = 0;
    if (args) {
        if (args->kind != JV_ARR || args->u.arr.n > 8) {
            http_reply_errf(q, 400, "invalid_field", "args", "'args' must be a list of at most 8 values");
            return HTTP_DONE;
        }
        for (size_t i = 0; i < args->u.arr.n; i++) argv[argc++] = args->u.arr.items[i];
    } else if (input) {
        argv[argc++] = input;
    }
    ruleset *rs = rules_live();
    if (!rs) {
        http_reply_errf(q, 503, "unavailable", "", "no rule set is loaded");
        return HTTP_DONE;
    }
    jv *result;
    err e;
    int rc = rules_call(rs, fn->u.str.s, argv, argc, http_arena(q), &result, &e);
    if (rc) {
        http_reply_rule_error(q, rc == ERR_NOTFOUND ? 404 : rc == ERR_INVALID ? 400 : 422, &e,
                              rc == ERR_INVALID ? NULL : lhost_last_error(rs->host));
    } else {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_str(&w, "function", fn->u.str.s);
        jw_kv_str(&w, "rules_version", rs->snap->version);
        jw_key(&w, "result");
        jw_jv(&w, result);
        jw_obj_close(&w);
        http_reply_json(q, 200, &w);
    }
    ruleset_unref(rs);
    return HTTP_DONE;
}

int api_rules_versions(http_req *q)
{
    int64_t limit;
    const char *cursor;
    if (http_page(q, &limit, &cursor)) return HTTP_DONE;
    int64_t before = INT64_MAX;
    if (cursor) {
        char *end;
        before = strtoll(cursor, &end, 10);
        if (*end || end == cursor || before <= 0) {
            http_reply_errf(q, 400, "invalid_parameter", "cursor", "cursor is not one this server gave out");
            return HTTP_DONE;
        }
    }
    db *d = server_db(http_server(q));
    err e;
    db_stmt *s = db_prepare(d,
                            "SELECT l.id, l.version, l.loaded_at, l.loaded_by, l.source, v.file_count "
                            "FROM rule_loads l JOIN rule_versions v ON v.version = l.version "
                            "WHERE l.id < ? ORDER BY l.id DESC LIMIT ?",
                            &e);
    if (!s) {
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    db_bind_int(s, 1, before);
    db_bind_int(s, 2, limit + 1);
    jw w;
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "data");
    jw_arr_open(&w);
    int n = 0, rc;
    int64_t last = 0, more = 0;
    while ((rc = db_step(d, s, &e)) == DB_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        last = db_col_int(s, 0);
        jw_obj_open(&w);
        jw_kv_int(&w, "id", last);
        jw_kv_str(&w, "version", db_col_text(s, 1));
        jw_kv_str(&w, "loaded_at", db_col_text(s, 2));
        jw_kv_str(&w, "loaded_by", db_col_text(s, 3));
        jw_kv_str(&w, "source", db_col_text(s, 4));
        jw_kv_int(&w, "files", db_col_int(s, 5));
        jw_obj_close(&w);
        n++;
    }
    jw_arr_close(&w);
    if (rc < 0) {
        jw_free(&w);
        http_reply_error(q, 500, &e);
        return HTTP_DONE;
    }
    char next[32];
    snprintf(next, sizeof next, "%lld", (long long)last);
    jw_kv_str(&w, "next_cursor", more ? next : NULL);
    jw_obj_close(&w);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}

int api_rules_version(http_req *q)
{
    rules_snapshot *snap;
    err e;
    if (rules_stored(server_db(http_server(q)), http_param(q, "version"), &snap, &e)) {
        if (e.code == ERR_INVALID) snprintf(e.field, sizeof e.field, "version");
        http_reply_error(q, 0, &e);
        return HTTP_DONE;
    }
    const char *file = http_query(q, "file");
    if (file) {
        for (size_t i = 0; i < snap->nfiles; i++)
            if (strcmp(snap->files[i].path, file) == 0) {
                http_reply_raw(q, 200, "text/plain; charset=utf-8", snap->files[i].text, snap->files[i].len);
                rules_snapshot_unref(snap);
                return HTTP_DONE;
            }
        rules_snapshot_unref(snap);
        http_reply_errf(q, 404, "not_found", "file", "this version has no file %s", file);
        return HTTP_DONE;
    }
    jw w;
    jw_init(&w, 0);
    rules_write_files(&w, snap);
    rules_snapshot_unref(snap);
    http_reply_json(q, 200, &w);
    return HTTP_DONE;
}
