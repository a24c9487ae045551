/* rules.c - rule set snapshots, loading, the live set, stored versions. */
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"
#include "metrics.h"

/* -------------------------------------------------------------- snapshot */

typedef struct walk {
    rule_file *files;
    size_t n, cap, total;
    const char *root;
    err *e;
} walk;

static int read_file(const char *path, size_t max, char **out, size_t *len, err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, ERR_IO, "cannot read %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || (size_t)st.st_size > max) {
        close(fd);
        return err_set(e, ERR_LIMIT, "%s is larger than %zu bytes", path, max);
    }
    char *p = malloc((size_t)st.st_size + 1);
    if (!p) {
        close(fd);
        return ERR_NOMEM_RET(e);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    p[got] = '\0';
    *out = p;
    *len = got;
    return 0;
}

static int walk_dir(walk *w, const char *rel, int depth)
{
    char full[4096];
    snprintf(full, sizeof full, "%s%s%s", w->root, rel[0] ? "/" : "", rel);
    if (depth > 8) return err_set(w->e, ERR_LIMIT, "%s: folders nested too deep", full);
    DIR *dir = opendir(full);
    if (!dir) return err_set(w->e, ERR_IO, "cannot read the rules folder %s: %s", full, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(dir))) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        /* hidden files and editor leftovers are not part of a rule set */
        if (name[0] == '.' || name[nl - 1] == '~' || nl > 100) continue;
        char child_rel[1024], child[5200];
        snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, rel[0] ? "/" : "", name);
        snprintf(child, sizeof child, "%s/%s", w->root, child_rel);
        struct stat st;
        if (stat(child, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            rc = walk_dir(w, child_rel, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue;
        if (w->n >= RULES_MAX_FILES) {
            rc = err_set(w->e, ERR_LIMIT, "the rules folder holds more than %d files", RULES_MAX_FILES);
            break;
        }
        if (w->n == w->cap) {
            size_t ncap = w->cap ? w->cap * 2 : 32;
            rule_file *nf = realloc(w->files, ncap * sizeof *nf);
            if (!nf) {
                rc = ERR_NOMEM_RET(w->e);
                break;
            }
            w->files = nf;
            w->cap = ncap;
        }
        rule_file *f = &w->files[w->n];
        if ((rc = read_file(child, RULES_MAX_FILE_BYTES, &f->text, &f->len, w->e))) break;
        f->path = strdup(child_rel);
        if (!f->path) {
            free(f->text);
            rc = ERR_NOMEM_RET(w->e);
            break;
        }
        w->n++;
        w->total += f->len;
        if (w->total > RULES_MAX_TOTAL_BYTES)
            rc = err_set(w->e, ERR_LIMIT, "the rules folder holds more than %u bytes", RULES_MAX_TOTAL_BYTES);
    }
    closedir(dir);
    return rc;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const rule_file *)a)->path, ((const rule_file *)b)->path);
}

static int cmp_file_ptr(const void *a, const void *b)
{
    return strcmp((*(const rule_file *const *)a)->path, (*(const rule_file *const *)b)->path);
}

void rules_version_of(const rule_file *files, size_t n, char out[RULES_VERSION_LEN])
{
    out[0] = '\0';
    /* in path order whatever order the files come in */
    const rule_file **ord = malloc((n ? n : 1) * sizeof *ord);
    crypto_sha256 *c = ord ? crypto_sha256_new() : NULL;
    if (!c) {
        free(ord);
        return;
    }
    for (size_t i = 0; i < n; i++) ord[i] = &files[i];
    qsort(ord, n, sizeof *ord, cmp_file_ptr);
    for (size_t i = 0; i < n; i++) {
        char len[32];
        int ln = snprintf(len, sizeof len, "%zu", ord[i]->len);
        crypto_sha256_update(c, ord[i]->path, strlen(ord[i]->path) + 1);
        crypto_sha256_update(c, len, (size_t)ln + 1);
        crypto_sha256_update(c, ord[i]->text, ord[i]->len);
    }
    free(ord);
    uint8_t d[SHA256_LEN];
    crypto_sha256_final(c, d);
    crypto_hex(d, SHA256_LEN, out);
}

static void free_files(rule_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].path);
        free(f[i].text);
    }
    free(f);
}

static int finish_snapshot(const char *label, rule_file *files, size_t n, rules_snapshot **out, err *e)
{
    rules_snapshot *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(label))) {
        free(s);
        free_files(files, n);
        return ERR_NOMEM_RET(e);
    }
    qsort(files, n, sizeof *files, cmp_file);
    s->files = files;
    s->nfiles = n;
    s->refs = 1;
    rules_version_of(files, n, s->version);
    *out = s;
    return 0;
}

int rules_snapshot_read(const char *dir, rules_snapshot **out, err *e)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return err_set(e, ERR_NOTFOUND, "rules folder %s does not exist", dir);
    walk w = {.root = dir, .e = e};
    int rc = walk_dir(&w, "", 0);
    if (rc) {
        free_files(w.files, w.n);
        return rc;
    }
    return finish_snapshot(dir, w.files, w.n, out, e);
}

int rules_snapshot_from(const char *label, const rule_file *files, size_t n, rules_snapshot **out, err *e)
{
    *out = NULL;
    rule_file *copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy) return ERR_NOMEM_RET(e);
    for (size_t i = 0; i < n; i++) {
        copy[i].path = strdup(files[i].path);
        copy[i].text = malloc(files[i].len + 1);
        copy[i].len = files[i].len;
        if (!copy[i].path || !copy[i].text) {
            free_files(copy, i + 1);
            return ERR_NOMEM_RET(e);
        }
        memcpy(copy[i].text, files[i].text, files[i].len);
        copy[i].text[files[i].len] = '\0';
    }
    return finish_snapshot(label, copy, n, out, e);
}

rules_snapshot *rules_snapshot_ref(rules_snapshot *s)
{
    if (s) __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    return s;
}

void rules_snapshot_unref(rules_snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    free_files(s->files, s->nfiles);
    free(s->dir);
    free(s);
}

/* --------------------------------------------------------------- ruleset */

static void rule_log(void *ud, const char *level, const char *where, const char *msg)
{
    const rules_snapshot *s = ud;
    log_line *l = log_begin(strcmp(level, "warn") == 0 ? LOG_WARN : LOG_INFO, "rule_log");
    log_str(l, "where", where);
    log_strn(l, "rules_version", s->version, 12);
    log_str(l, "msg", msg);
    log_end(l);
}

typedef struct first_fail {
    example_result r;
    int have;
} first_fail;

static void note_failure(void *ud, const example_result *r)
{
    first_fail *f = ud;
    if (!r->passed && !f->have) {
        f->r = *r;
        f->have = 1;
    }
}

int ruleset_load(rules_snapshot *snap, const lhost_limits *lim, int check, ruleset **out, rule_error *detail,
                 err *e)
{
    *out = NULL;
    lhost *h;
    int rc = lhost_open(snap->files, snap->nfiles, lim, &h, detail, e);
    if (rc) return rc;
    lhost_set_logger(h, rule_log, snap);
    ruleset *rs = calloc(1, sizeof *rs);
    if (!rs) {
        lhost_close(h);
        return ERR_NOMEM_RET(e);
    }
    rs->refs = 1;
    rs->loaded_ms = db_now_ms();
    rs->snap = rules_snapshot_ref(snap);
    rs->host = h;
    if (check) {
        first_fail f = {.have = 0};
        rc = lhost_run_examples(h, NULL, note_failure, &f, &rs->examples, &rs->examples_failed, e);
        if (!rc && rs->examples_failed) {
            err_utf8_trim(f.r.detail);
            err_field(e, ERR_RULE, "rule_example_failed", "",
                      "%d of %d examples failed; first: %s:%d: %s example %d%s%s%s: %s", rs->examples_failed,
                      rs->examples, f.r.file, f.r.line, f.r.module, f.r.index, f.r.name[0] ? " (" : "", f.r.name,
                      f.r.name[0] ? ")" : "", f.r.detail);
            if (detail) {
                memset(detail, 0, sizeof *detail);
                snprintf(detail->kind, sizeof detail->kind, "example");
                snprintf(detail->rule, sizeof detail->rule, "%s.%s", f.r.module, f.r.fn);
                snprintf(detail->file, sizeof detail->file, "%s", f.r.file);
                detail->line = f.r.line;
                snprintf(detail->function, sizeof detail->function, "%s", f.r.fn);
                snprintf(detail->message, sizeof detail->message, "%s", f.r.detail);
                err_utf8_trim(detail->message);
            }
            rc = ERR_RULE;
        }
        if (rc) {
            ruleset_unref(rs);
            return rc;
        }
    }
    *out = rs;
    return 0;
}

ruleset *ruleset_ref(ruleset *rs)
{
    if (rs) __atomic_add_fetch(&rs->refs, 1, __ATOMIC_ACQ_REL);
    return rs;
}

void ruleset_unref(ruleset *rs)
{
    if (!rs || __atomic_sub_fetch(&rs->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    lhost_close(rs->host);
    rules_snapshot_unref(rs->snap);
    free(rs);
}

/* ------------------------------------------------------------------ calls */

static metric *m_reloads, *m_reload_failures;

/* Counters by rule name, cached per thread by the name's text (callers
 * pass names from request bodies as often as literals). */
typedef struct call_cache { char name[64]; metric *m; } call_cache;
static _Thread_local call_cache t_cache[64];

static metric *calls_metric(const char *name)
{
    unsigned h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    call_cache *c = &t_cache[h & 63];
    if (c->m && strcmp(c->name, name) == 0) return c->m;
    char label[200], esc[160];
    metrics_escape(name, esc, sizeof esc);
    snprintf(label, sizeof label, "rule=\"%s\"", esc);
    metric *m = metrics_counter("bandbill_rule_calls_total", "Rule calls by rule", label);
    if (strlen(name) < sizeof c->name) {
        strcpy(c->name, name);
        c->m = m;
    }
    return m;
}

int rules_call(ruleset *rs, const char *name, const jv *const *args, int nargs, jv_arena *arena, jv **result,
               err *e)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || !dot[1])
        return err_field(e, ERR_INVALID, "invalid_rule_name", "function",
                         "'%s' is not a rule name (expected module.function)", name);
    char module[128];
    size_t ml = (size_t)(dot - name);
    if (ml >= sizeof module) return err_set(e, ERR_INVALID, "rule name too long");
    memcpy(module, name, ml);
    module[ml] = '\0';
    int rc = lhost_call(rs->host, module, dot + 1, args, nargs, arena, result, e);
    /* names that are not rules do not get series of their own: metrics
     * must stay bounded whatever clients send */
    const char *label_name = rc == ERR_NOTFOUND ? "(unknown)" : name;
    metric_inc(calls_metric(label_name));
    if (rc) {
        const rule_error *re = lhost_last_error(rs->host);
        char label[256], esc[160];
        metrics_escape(label_name, esc, sizeof esc);
        snprintf(label, sizeof label, "rule=\"%s\",kind=\"%s\"", esc, re->kind);
        metric_inc(metrics_counter("bandbill_rule_errors_total", "Rule calls that failed, by rule and kind", label));
    }
    return rc;
}

/* --------------------------------------------------------------- live set */

static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static ruleset *g_live;
static lhost_limits g_limits = {0, 0};

void rules_set_limits(const lhost_limits *lim) { g_limits = *lim; }

const lhost_limits *rules_limits(void)
{
    return g_limits.max_instructions ? &g_limits : &lhost_default_limits;
}

static metric *version_gauge(const char *version)
{
    char label[96];
    snprintf(label, sizeof label, "version=\"%.12s\"", version);
    return metrics_gauge("bandbill_rules_info", "The live rule set version (value 1)", label);
}

void rules_live_set(ruleset *rs)
{
    pthread_mutex_lock(&g_live_lock);
    ruleset *old = g_live;
    g_live = rs;
    pthread_mutex_unlock(&g_live_lock);
    if (old) metric_set(version_gauge(old->snap->version), 0);
    if (rs) metric_set(version_gauge(rs->snap->version), 1);
    ruleset_unref(old);
}

ruleset *rules_live(void)
{
    pthread_mutex_lock(&g_live_lock);
    ruleset *rs = ruleset_ref(g_live);
    pthread_mutex_unlock(&g_live_lock);
    return rs;
}

void rules_live_clear(void) { rules_live_set(NULL); }

void rules_count_reload(int ok)
{
    if (!m_reloads) {
        m_reloads = metrics_counter("bandbill_rules_reloads_total", "Successful rule reloads", "");
        m_reload_failures = metrics_counter("bandbill_rules_reload_failures_total", "Failed rule reloads", "");
    }
    metric_inc(ok ? m_reloads : m_reload_failures);
}

int rules_reload(const char *dir, rule_error *detail, err *e)
{
    rules_snapshot *snap;
    ruleset *rs = NULL;
    int rc = rules_snapshot_read(dir, &snap, e);
    if (!rc) {
        rc = ruleset_load(snap, rules_limits(), 1, &rs, detail, e);
        rules_snapshot_unref(snap);
    }
    rules_count_reload(rc == 0);
    if (rc) return rc;
    rules_live_set(rs);
    return 0;
}

/* ---------------------------------------------------------- stored versions */

int rules_store(db *d, const rules_snapshot *s, const char *by, const char *source, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e,
                "INSERT INTO rule_versions (version, file_count, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (version) DO NOTHING",
                "sis", s->version, (int64_t)s->nfiles, now);
    if (!rc && db_changes(d) > 0) {
        for (size_t i = 0; i < s->nfiles && !rc; i++) {
            char sum[SHA256_HEX_LEN];
            crypto_sha256_hex(s->files[i].text, s->files[i].len, sum);
            rc = db_run(d, e, "INSERT INTO rule_blobs (sha256, content) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING",
                        "st", sum, s->files[i].text, s->files[i].len);
            if (!rc)
                rc = db_run(d, e, "INSERT INTO rule_files (version, path, sha256) VALUES (?, ?, ?)", "sss",
                            s->version, s->files[i].path, sum);
        }
    }
    if (!rc)
        rc = db_run(d, e, "INSERT INTO rule_loads (version, loaded_at, loaded_by, source) VALUES (?, ?, ?, ?)",
                    "ssss", s->version, now, by, source);
    if (!rc) rc = db_commit(d, e);
    if (rc) db_rollback(d);
    return rc;
}

int rules_stored(db *d, const char *version, rules_snapshot **out, err *e)
{
    *out = NULL;
    size_t n = strlen(version);
    if (n < 8 || n > 64 || strspn(version, "0123456789abcdef") != n)
        return err_field(e, ERR_INVALID, "invalid_version", "version",
                         "'%s' is not a rule set version (8 to 64 lower-case hex digits)", version);
    char lo[65], hi[66];
    snprintf(lo, sizeof lo, "%s", version);
    snprintf(hi, sizeof hi, "%s~", version); /* '~' sorts after every hex digit */
    db_stmt *q = db_prepare(d, "SELECT version FROM rule_versions WHERE version >= ? AND version < ? LIMIT 2", e);
    if (!q) return e->code;
    db_bind_text(q, 1, lo);
    db_bind_text(q, 2, hi);
    char full[RULES_VERSION_LEN] = "";
    int found = 0, rc;
    while ((rc = db_step(d, q, e)) == DB_ROW) {
        if (found++ == 0) snprintf(full, sizeof full, "%s", db_col_text(q, 0));
    }
    db_done(q);
    if (rc < 0) return rc;
    if (found == 0) return err_set(e, ERR_NOTFOUND, "no stored rule set version %s", version);
    if (found > 1) return err_set(e, ERR_INVALID, "version prefix %s is ambiguous; give more digits", version);
    db_stmt *f = db_prepare(d,
                            "SELECT f.path, b.content FROM rule_files f JOIN rule_blobs b ON b.sha256 = f.sha256 "
                            "WHERE f.version = ? ORDER BY f.path",
                            e);
    if (!f) return e->code;
    db_bind_text(f, 1, full);
    rule_file *files = NULL;
    size_t nf = 0, cap = 0;
    while ((rc = db_step(d, f, e)) == DB_ROW) {
        if (nf == cap) {
            cap = cap ? cap * 2 : 16;
            rule_file *nfp = realloc(files, cap * sizeof *nfp);
            if (!nfp) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
            files = nfp;
        }
        size_t len = db_col_bytes(f, 1);
        files[nf].path = strdup(db_col_text(f, 0));
        files[nf].text = malloc(len + 1);
        files[nf].len = len;
        if (!files[nf].path || !files[nf].text) {
            free(files[nf].path);
            free(files[nf].text);
            rc = ERR_NOMEM_RET(e);
            break;
        }
        memcpy(files[nf].text, db_col_text(f, 1), len);
        files[nf].text[len] = '\0';
        nf++;
    }
    db_done(f);
    if (rc < 0) {
        free_files(files, nf);
        return rc;
    }
    char label[80];
    snprintf(label, sizeof label, "stored:%.12s", full);
    rc = finish_snapshot(label, files, nf, out, e);
    if (!rc && strcmp((*out)->version, full) != 0) {
        rules_snapshot_unref(*out);
        *out = NULL;
        return err_set(e, ERR_CONFLICT, "stored rule set %s does not hash to its version: the store is damaged", full);
    }
    return rc;
}

void rules_write_files(jw *w, const rules_snapshot *s)
{
    jw_obj_open(w);
    jw_kv_str(w, "version", s->version);
    jw_key(w, "files");
    jw_arr_open(w);
    for (size_t i = 0; i < s->nfiles; i++) {
        jw_obj_open(w);
        jw_kv_str(w, "path", s->files[i].path);
        jw_kv_int(w, "bytes", (int64_t)s->files[i].len);
        jw_obj_close(w);
    }
    jw_arr_close(w);
    jw_obj_close(w);
}

int ruleset_twin(ruleset *rs, ruleset **out, err *e)
{
    return ruleset_load(rs->snap, rules_limits(), 0, out, NULL, e);
}

int rules_load_folder(const char *dir, ruleset **out, err *e)
{
    rules_snapshot *snap;
    int rc = rules_snapshot_read(dir, &snap, e);
    if (rc) return err_prefix(e, "rules folder %s", dir);
    rc = ruleset_load(snap, rules_limits(), 0, out, NULL, e);
    rules_snapshot_unref(snap);
    return rc;
}

