/* cmd_rules.c - `bandbill rules check|test|reload|show|diff|call`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"
#include "rules.h"
#include "textdiff.h"

static const char *folder(cli *c) { return c->argc > 0 ? c->argv[0] : c->cfg.rules; }

static int load(cli *c, const char *dir, rules_snapshot **snap, ruleset **rs, err *e)
{
    lhost_limits lim = {(uint64_t)c->cfg.rules_max_instructions, (size_t)c->cfg.rules_max_memory_mb << 20};
    int rc = rules_snapshot_read(dir, snap, e);
    if (rc) return rc;
    rc = ruleset_load(*snap, &lim, 0, rs, NULL, e);
    if (rc) {
        rules_snapshot_unref(*snap);
        *snap = NULL;
    }
    return rc;
}

int cmd_rules_check(cli *c, err *e)
{
    rules_snapshot *snap;
    ruleset *rs;
    const char *dir = folder(c);
    int rc = load(c, dir, &snap, &rs, e);
    if (rc) return rc;
    size_t nfn = 0;
    for (size_t i = 0; i < lhost_module_count(rs->host); i++) {
        buf fns = {0};
        lhost_module_functions(rs->host, lhost_module_name(rs->host, i), &fns);
        for (size_t k = 0; k < fns.len; k++) nfn += fns.data[k] == '\n';
        buf_free(&fns);
    }
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_kv_bool(&w, "ok", 1);
        jw_kv_str(&w, "folder", dir);
        jw_kv_str(&w, "version", snap->version);
        jw_kv_int(&w, "files", (int64_t)snap->nfiles);
        jw_key(&w, "modules");
        jw_arr_open(&w);
        for (size_t i = 0; i < lhost_module_count(rs->host); i++) jw_str(&w, lhost_module_name(rs->host, i));
        jw_arr_close(&w);
        jw_kv_int(&w, "functions", (int64_t)nfn);
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
    } else {
        printf("%s: ok, version %.12s, %zu files, %zu modules, %zu functions\n", dir, snap->version, snap->nfiles,
               lhost_module_count(rs->host), nfn);
    }
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    return rc;
}

typedef struct test_out {
    cli *c;
    jw *w;
} test_out;

static void on_example(void *ud, const example_result *r)
{
    test_out *t = ud;
    if (t->w) {
        jw_obj_open(t->w);
        jw_kv_str(t->w, "module", r->module);
        jw_kv_int(t->w, "example", r->index);
        jw_kv_str(t->w, "name", r->name);
        jw_kv_str(t->w, "function", r->fn);
        jw_kv_bool(t->w, "passed", r->passed);
        if (!r->passed) {
            jw_kv_str(t->w, "detail", r->detail);
            jw_kv_str(t->w, "file", r->file);
            jw_kv_int(t->w, "line", r->line);
        }
        jw_obj_close(t->w);
        return;
    }
    printf("%s %s.%s example %d%s%s%s", r->passed ? "PASS" : "FAIL", r->module, r->fn[0] ? r->fn : "?", r->index,
           r->name[0] ? " (" : "", r->name, r->name[0] ? ")" : "");
    if (!r->passed) printf(" at %s:%d: %s", r->file, r->line, r->detail);
    putchar('\n');
}

int cmd_rules_test(cli *c, err *e)
{
    rules_snapshot *snap;
    ruleset *rs;
    int rc = load(c, folder(c), &snap, &rs, e);
    if (rc) return rc;
    const char *module = cli_opt_value(c, "module");
    jw w;
    test_out t = {c, NULL};
    if (c->json) {
        jw_init(&w, 0);
        jw_obj_open(&w);
        jw_key(&w, "results");
        jw_arr_open(&w);
        t.w = &w;
    }
    int total = 0, failed = 0;
    if (module && !lhost_module_name(rs->host, 0)) module = NULL;
    int known = !module;
    for (size_t i = 0; module && i < lhost_module_count(rs->host); i++)
        if (strcmp(lhost_module_name(rs->host, i), module) == 0) known = 1;
    if (!known) rc = err_field(e, ERR_NOTFOUND, "not_found", "module", "no module %s in %s", module, folder(c));
    if (!rc) rc = lhost_run_examples(rs->host, module, on_example, &t, &total, &failed, e);
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    if (c->json) {
        if (rc) {
            jw_free(&w);
            return rc;
        }
        jw_arr_close(&w);
        jw_kv_int(&w, "total", total);
        jw_kv_int(&w, "failed", failed);
        jw_obj_close(&w);
        if (cli_print_json(&w, e)) return e->code;
        return failed ? 1 : 0;
    }
    if (rc) return rc;
    printf("%d example%s: %d passed, %d failed\n", total, total == 1 ? "" : "s", total - failed, failed);
    return failed ? 1 : 0;
}

/* Pulls "message" (and the rule location) out of an error reply body. */
static void reply_message(const buf *body, char *out, size_t n)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *v;
    err e;
    snprintf(out, n, "%s", buf_cstr(body));
    if (json_parse(buf_cstr(body), body->len, NULL, &a, &v, &e) == 0) {
        const jv *m = jv_get(jv_get(v, "error"), "message");
        if (m && m->kind == JV_STR) snprintf(out, n, "%.*s", (int)m->u.str.len, m->u.str.s);
    }
    jv_arena_free(&a);
}

int cmd_rules_reload(cli *c, err *e)
{
    buf body = {0};
    int status = 0;
    int rc = ctl_request(c->cfg.socket, "POST", "/api/v1/rules/reload", NULL, &status, &body, e);
    if (rc) {
        buf_free(&body);
        return rc;
    }
    if (status != 200) {
        char msg[1024];
        reply_message(&body, msg, sizeof msg);
        buf_free(&body);
        return err_set(e, status == 422 ? ERR_RULE : ERR_INTERNAL, "reload refused, the old rules stay in force: %s", msg);
    }
    if (c->json) {
        printf("%s\n", buf_cstr(&body));
    } else {
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *v;
        if (json_parse(buf_cstr(&body), body.len, NULL, &a, &v, e) == 0) {
            const jv *ver = jv_get(v, "version"), *prev = jv_get(v, "previous"), *ch = jv_get(v, "changed");
            if (ch && ch->kind == JV_BOOL && ch->u.b)
                printf("reloaded: version %.12s (was %.12s)\n", ver ? ver->u.str.s : "?", prev ? prev->u.str.s : "?");
            else
                printf("unchanged: version %.12s\n", ver ? ver->u.str.s : "?");
        }
        jv_arena_free(&a);
    }
    buf_free(&body);
    return 0;
}

static int show_versions(cli *c, db *d, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT l.id, l.version, l.loaded_at, l.loaded_by, l.source FROM rule_loads l "
                            "ORDER BY l.id DESC LIMIT 50",
                            e);
    if (!s) return e->code;
    jw w;
    if (c->json) {
        jw_init(&w, 0);
        jw_arr_open(&w);
    } else {
        printf("%-12s  %-24s  %-8s  %s\n", "VERSION", "LOADED (UTC)", "SOURCE", "BY");
    }
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (c->json) {
            jw_obj_open(&w);
            jw_kv_str(&w, "version", db_col_text(s, 1));
            jw_kv_str(&w, "loaded_at", db_col_text(s, 2));
            jw_kv_str(&w, "loaded_by", db_col_text(s, 3));
            jw_kv_str(&w, "source", db_col_text(s, 4));
            jw_obj_close(&w);
        } else {
            printf("%.12s  %-24s  %-8s  %s\n", db_col_text(s, 1), db_col_text(s, 2), db_col_text(s, 4), db_col_text(s, 3));
        }
    }
    if (c->json) {
        if (rc < 0) {
            jw_free(&w);
            return rc;
        }
        jw_arr_close(&w);
        return cli_print_json(&w, e);
    }
    return rc < 0 ? rc : 0;
}

int cmd_rules_show(cli *c, err *e)
{
    db *d;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    if (c->argc == 0) {
        rc = show_versions(c, d, e);
        db_close(d);
        return rc;
    }
    rules_snapshot *snap;
    rc = rules_stored(d, c->argv[0], &snap, e);
    db_close(d);
    if (rc) return rc;
    const char *file = cli_opt_value(c, "file");
    if (file) {
        for (size_t i = 0; i < snap->nfiles; i++)
            if (strcmp(snap->files[i].path, file) == 0) {
                fwrite(snap->files[i].text, 1, snap->files[i].len, stdout);
                rules_snapshot_unref(snap);
                return 0;
            }
        rc = err_field(e, ERR_NOTFOUND, "not_found", "file", "version %.12s has no file %s", snap->version, file);
        rules_snapshot_unref(snap);
        return rc;
    }
    if (c->json) {
        jw w;
        jw_init(&w, 0);
        rules_write_files(&w, snap);
        rc = cli_print_json(&w, e);
    } else {
        printf("version %s\n", snap->version);
        for (size_t i = 0; i < snap->nfiles; i++) printf("  %-40s %8zu bytes\n", snap->files[i].path, snap->files[i].len);
    }
    rules_snapshot_unref(snap);
    return rc;
}

/* A version prefix from the store, or a folder on disk. */
static int resolve(cli *c, db **d, const char *what, rules_snapshot **out, err *e)
{
    struct stat st;
    if (stat(what, &st) == 0 && S_ISDIR(st.st_mode)) return rules_snapshot_read(what, out, e);
    if (!*d) {
        int rc = cli_open_db(c, d, e);
        if (rc) return rc;
    }
    return rules_stored(*d, what, out, e);
}

int cmd_rules_diff(cli *c, err *e)
{
    db *d = NULL;
    rules_snapshot *a = NULL, *b = NULL;
    int rc = resolve(c, &d, c->argv[0], &a, e);
    if (!rc) rc = resolve(c, &d, c->argv[1], &b, e);
    db_close(d);
    if (rc) {
        rules_snapshot_unref(a);
        return rc;
    }
    buf out = {0};
    int changed = 0;
    /* walk the union of both sorted path lists */
    size_t i = 0, j = 0;
    while (!rc && (i < a->nfiles || j < b->nfiles)) {
        int cmp = i >= a->nfiles ? 1 : j >= b->nfiles ? -1 : strcmp(a->files[i].path, b->files[j].path);
        const rule_file *fa = cmp <= 0 ? &a->files[i] : NULL, *fb = cmp >= 0 ? &b->files[j] : NULL;
        const char *path = fa ? fa->path : fb->path;
        char na[1100], nb[1100];
        snprintf(na, sizeof na, fa ? "a/%s" : "/dev/null", path);
        snprintf(nb, sizeof nb, fb ? "b/%s" : "/dev/null", path);
        size_t before = out.len;
        rc = textdiff_unified(na, fa ? fa->text : "", fa ? fa->len : 0, nb, fb ? fb->text : "", fb ? fb->len : 0, &out);
        if (out.len != before) changed++;
        if (cmp <= 0) i++;
        if (cmp >= 0) j++;
    }
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 0);
            jw_obj_open(&w);
            jw_kv_str(&w, "a", a->version);
            jw_kv_str(&w, "b", b->version);
            jw_kv_int(&w, "files_changed", changed);
            jw_key(&w, "diff");
            jw_strn(&w, buf_cstr(&out), out.len);
            jw_obj_close(&w);
            rc = cli_print_json(&w, e);
        } else {
            fwrite(buf_cstr(&out), 1, out.len, stdout);
            if (!changed) printf("no differences: both are version %.12s\n", a->version);
        }
    } else {
        err_set(e, ERR_NOMEM, "out of memory");
    }
    buf_free(&out);
    rules_snapshot_unref(a);
    rules_snapshot_unref(b);
    return rc;
}

static int read_all(FILE *f, buf *out)
{
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(out, chunk, n)) return ERR_NOMEM;
    return ferror(f) ? ERR_IO : 0;
}

/* --input text: inline JSON, @FILE, or - for standard input. */
static int input_text(const char *spec, buf *out, err *e)
{
    if (strcmp(spec, "-") == 0) return read_all(stdin, out) ? err_set(e, ERR_IO, "cannot read standard input") : 0;
    if (spec[0] == '@') {
        FILE *f = fopen(spec + 1, "rb");
        if (!f) return err_set(e, ERR_IO, "cannot read %s: %s", spec + 1, strerror(errno));
        int rc = read_all(f, out);
        fclose(f);
        return rc ? err_set(e, ERR_IO, "cannot read %s", spec + 1) : 0;
    }
    return buf_puts(out, spec) ? ERR_NOMEM_RET(e) : 0;
}

int cmd_rules_call(cli *c, err *e)
{
    const char *in = cli_opt_value(c, "input"), *args = cli_opt_value(c, "args");
    if (in && args) return err_set(e, ERR_USAGE, "give --input or --args, not both");
    buf text = {0};
    jv_arena a;
    jv_arena_init(&a, 256u << 20);
    jv *v = NULL;
    const jv *argv[8];
    int argc = 0, rc = 0;
    if (in || args) {
        rc = input_text(in ? in : args, &text, e);
        if (!rc && json_parse(buf_cstr(&text), text.len, NULL, &a, &v, e)) {
            err_prefix(e, "%s is not valid JSON", in ? "--input" : "--args");
            rc = ERR_USAGE;
        }
        if (!rc && args) {
            if (v->kind != JV_ARR || v->u.arr.n > 8) rc = err_set(e, ERR_USAGE, "--args must be a JSON list of at most 8 values");
            for (size_t i = 0; !rc && i < v->u.arr.n; i++) argv[argc++] = v->u.arr.items[i];
        } else if (!rc) {
            argv[argc++] = v;
        }
    }
    rules_snapshot *snap = NULL;
    ruleset *rs = NULL;
    if (!rc) rc = load(c, c->cfg.rules, &snap, &rs, e);
    jv *result = NULL;
    if (!rc) rc = rules_call(rs, c->argv[0], argv, argc, &a, &result, e);
    if (!rc) {
        jw w;
        jw_init(&w, !c->json);
        jw_jv(&w, result);
        rc = cli_print_json(&w, e);
    }
    ruleset_unref(rs);
    rules_snapshot_unref(snap);
    jv_arena_free(&a);
    buf_free(&text);
    return rc;
}
