/* audit.c - the chained, append-only audit trail (see audit.h).
 *
 * One record is the tuple (at, actor, role, source, request_id, action,
 * object_type, object_id, diff). Its canonical form is that tuple as a
 * compact JSON object with keys in byte order, written by yajl (standard
 * escaping, no spaces), with SQL NULL as JSON null and diff as a string
 * holding the stored diff text (not a nested object: the hash must cover
 * the exact bytes in the column, not a re-serialisation of them). Then
 *
 *     hash = lower-case hex HMAC-SHA256(key, prev_hash "\n" canonical)
 *
 * audit_append computes it from the values it inserts, audit_verify from
 * the values it reads back, so any stored byte that changes changes the
 * hash. */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto.h"
#include "privacy.h"

#define AUDIT_KEY_LEN 32
#define HASH_HEX_LEN 64   /* hex digits of an HMAC-SHA256 */

/* ------------------------------------------------------------------ HMAC */

/* An HMAC-SHA256 context keyed once and restarted per record: fetching the
 * algorithm and expanding the key per record would dominate verification
 * of a long chain. */
typedef struct mac {
    EVP_MAC_CTX *ctx;
} mac;

static void mac_close(mac *m)
{
    EVP_MAC_CTX_free(m->ctx);
    m->ctx = NULL;
}

/* Fetched once for the process: a fetch is a provider lookup, and every
 * audited request would pay for it. */
static EVP_MAC *g_hmac;
static pthread_once_t g_hmac_once = PTHREAD_ONCE_INIT;
static void fetch_hmac(void) { g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL); }

static int mac_open(mac *m, const uint8_t key[AUDIT_KEY_LEN], err *e)
{
    pthread_once(&g_hmac_once, fetch_hmac);
    m->ctx = g_hmac ? EVP_MAC_CTX_new(g_hmac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!m->ctx || EVP_MAC_init(m->ctx, key, AUDIT_KEY_LEN, params) != 1) {
        mac_close(m);
        return err_set(e, ERR_INTERNAL, "audit: cannot set up HMAC-SHA256");
    }
    return 0;
}

/* hex HMAC(key, prev "\n" canon) into out (65 bytes). */
static int mac_hex(mac *m, const char *prev, size_t prev_len, const char *canon, size_t canon_len,
                   char out[HASH_HEX_LEN + 1], err *e)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    size_t n = 0;
    /* a NULL key restarts the computation with the key given at open */
    if (EVP_MAC_init(m->ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(m->ctx, (const uint8_t *)prev, prev_len) != 1 ||
        EVP_MAC_update(m->ctx, (const uint8_t *)"\n", 1) != 1 ||
        EVP_MAC_update(m->ctx, (const uint8_t *)canon, canon_len) != 1 ||
        EVP_MAC_final(m->ctx, d, &n, sizeof d) != 1 || n != SHA256_LEN)
        return err_set(e, ERR_INTERNAL, "audit: HMAC-SHA256 failed");
    crypto_hex(d, SHA256_LEN, out);
    return 0;
}

/* ------------------------------------------------------- canonical record */

/* A text value with its length (stored text may hold NULs, which must be
 * hashed too); s NULL is SQL NULL / JSON null. */
typedef struct text {
    const char *s;
    size_t n;
} text;

/* The hashed fields, in the column order of the SELECTs below (column
 * i + 1 is field i; column 0 is the id). */
enum { F_AT, F_ACTOR, F_ROLE, F_SOURCE, F_REQUEST_ID, F_ACTION, F_OBJECT_TYPE, F_OBJECT_ID, F_DIFF, F_COUNT };

static const char *const field_names[F_COUNT] = {
    "at", "actor", "role", "source", "request_id", "action", "object_type", "object_id", "diff",
};

/* The same fields with their keys in byte order: the canonical order. */
static const int canon_order[F_COUNT] = {
    F_ACTION, F_ACTOR, F_AT, F_DIFF, F_OBJECT_ID, F_OBJECT_TYPE, F_REQUEST_ID, F_ROLE, F_SOURCE,
};

static text txt(const char *s) { return (text){s, s ? strlen(s) : 0}; }

/* Readies a writer for a new document; the writer is reused across
 * records so that a million-record walk does not allocate per record. */
static void jw_restart(jw *w)
{
    yajl_gen_reset(w->g, NULL);
    yajl_gen_clear(w->g);
    w->rc = 0;
}

/* Writes the canonical form of f into w; returns it, or NULL when a value
 * is not valid UTF-8 (yajl validates what it writes). */
static const char *canonical(jw *w, const text f[F_COUNT], size_t *len)
{
    jw_restart(w);
    jw_obj_open(w);
    for (int i = 0; i < F_COUNT; i++) {
        const text *t = &f[canon_order[i]];
        jw_key(w, field_names[canon_order[i]]);
        if (t->s) jw_strn(w, t->s, t->n);
        else jw_null(w);
    }
    jw_obj_close(w);
    return jw_finish(w, len);
}

/* ------------------------------------------------------------------ diff */

static int absent(const jv *v) { return !v || v->kind == JV_NULL; }

/* A shallow object with the members of `from` that `other` lacks or holds
 * differently (every member when other is NULL). Of duplicate keys only the
 * first is kept, as jv_get reads it, so the stored diff parses back. */
static jv *changed_members(jv_arena *a, const jv *from, const jv *other)
{
    jv *o = jv_obj_sized(a, from->u.obj.n);
    if (!o) return NULL;
    for (size_t i = 0; i < from->u.obj.n; i++) {
        const jv_member *m = &from->u.obj.m[i];
        if (jv_getn(from, m->key, m->klen) != m->val) continue; /* a later duplicate */
        if (other) {
            const jv *ov = jv_getn(other, m->key, m->klen);
            if (ov && jv_equal(m->val, ov)) continue;
        }
        if (jv_obj_setn(a, o, m->key, m->klen, m->val)) return NULL;
    }
    return o;
}

/* The masked part of the diff for v (before or after) given the other
 * side: only the changed fields when both are objects, all of v otherwise
 * (a creation, a deletion, or a value that is not an object). */
static int diff_side(jv_arena *a, const char *resource, const jv *v, const jv *other, jv **out)
{
    *out = NULL;
    if (absent(v)) return 0;
    const jv *keep = v;
    if (v->kind == JV_OBJ) {
        /* compare with the other side only when it is an object too */
        const jv *cmp = !absent(other) && other->kind == JV_OBJ ? other : NULL;
        if (!(keep = changed_members(a, v, cmp))) return ERR_NOMEM;
    }
    /* mask after restricting: the comparison above uses the real values,
     * so a change that masks to the same text is still recorded */
    return (*out = privacy_masked_copy(a, resource, keep)) ? 0 : ERR_NOMEM;
}

/* The diff text of ev into out; out stays empty (SQL NULL) when the event
 * has no before, after or detail. */
static int build_diff(const audit_event *ev, buf *out, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *before = NULL, *after = NULL, *detail = NULL, *d = NULL;
    int rc = diff_side(&a, ev->object_type, ev->before, ev->after, &before);
    if (!rc) rc = diff_side(&a, ev->object_type, ev->after, ev->before, &after);
    if (!rc && !absent(ev->detail) && !(detail = privacy_masked_copy(&a, ev->object_type, ev->detail))) rc = ERR_NOMEM;
    if (!rc && (before || after || detail)) {
        /* a side that was given stays in the diff even when nothing in it
         * changed ({}), so the shape still tells an update from a creation
         * or a deletion */
        if (!(d = jv_obj_sized(&a, 3)) || (before && jv_obj_set(&a, d, "before", before)) ||
            (after && jv_obj_set(&a, d, "after", after)) || (detail && jv_obj_set(&a, d, "detail", detail)))
            rc = ERR_NOMEM;
        /* json_write sorts keys and writes compact JSON */
        else if ((rc = json_write(out, d)) == ERR_INVALID)
            err_set(e, ERR_INVALID, "audit: before/after/detail hold text that is not valid UTF-8");
    }
    jv_arena_free(&a);
    if (rc == ERR_NOMEM) return ERR_NOMEM_RET(e);
    return rc;
}

/* ---------------------------------------------------------------- append */

static const char SQL_LAST_HASH[] = "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1";
static const char SQL_INSERT[] =
    "INSERT INTO audit_log (at, actor, role, source, request_id, action, object_type, object_id, diff, "
    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/* The hash of the newest record ("" when there is none) into prev. */
static int last_hash(db *d, buf *prev, err *e)
{
    db_stmt *s = db_prepare(d, SQL_LAST_HASH, e);
    if (!s) return e ? e->code : ERR_DB;
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) rc = buf_append(prev, db_col_text(s, 0), db_col_bytes(s, 0)) ? ERR_NOMEM_RET(e) : 0;
    db_done(s);
    return rc < 0 ? rc : 0;
}

int audit_append(db *d, const uint8_t key[32], const audit_who *who, const audit_event *ev, err *e)
{
    /* outside a transaction the record could commit without the change it
     * records (or the reverse), and two appenders could both read the same
     * last hash; inside one (BEGIN IMMEDIATE) the write lock serialises
     * them and the record shares the change's fate */
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "audit: a record must be appended inside a transaction");
    if (!key || !who || !ev || !who->actor || !who->role || !ev->action)
        return err_set(e, ERR_INTERNAL, "audit: a record needs a key, an actor, a role and an action");

    buf diff = {0}, prev = {0};
    jw w = {0};
    mac m = {0};
    int rc = build_diff(ev, &diff, e);
    if (!rc) rc = last_hash(d, &prev, e);
    if (!rc && jw_init(&w, 0)) rc = ERR_NOMEM_RET(e);
    if (!rc) rc = mac_open(&m, key, e);
    if (rc) goto out;

    char at[25];
    if (who->at && strlen(who->at) == 24) snprintf(at, sizeof at, "%s", who->at);
    else db_now(at);
    text f[F_COUNT] = {
        [F_AT] = txt(at),
        [F_ACTOR] = txt(who->actor),
        [F_ROLE] = txt(who->role),
        [F_SOURCE] = txt(who->source),
        [F_REQUEST_ID] = txt(who->request_id),
        [F_ACTION] = txt(ev->action),
        [F_OBJECT_TYPE] = txt(ev->object_type),
        [F_OBJECT_ID] = txt(ev->object_id),
        [F_DIFF] = {diff.data, diff.len}, /* data NULL when there is no diff */
    };
    size_t clen = 0;
    const char *canon = canonical(&w, f, &clen);
    if (!canon) {
        rc = err_set(e, ERR_INVALID, "audit: the record holds text that is not valid UTF-8");
        goto out;
    }
    char hash[HASH_HEX_LEN + 1];
    if ((rc = mac_hex(&m, buf_cstr(&prev), prev.len, canon, clen, hash, e))) goto out;
    rc = db_run(d, e, SQL_INSERT, "sssssssssss", at, who->actor, who->role, who->source, who->request_id, ev->action,
                ev->object_type, ev->object_id, diff.data, buf_cstr(&prev), hash);
    if (rc > 0) rc = 0; /* DB_DONE */
    if (rc) err_prefix(e, "audit");

out:
    mac_close(&m);
    if (w.g) jw_free(&w);
    buf_free(&diff);
    buf_free(&prev);
    return rc;
}

/* ---------------------------------------------------------------- verify */

static const char SQL_ALL[] =
    "SELECT id, at, actor, role, source, request_id, action, object_type, object_id, diff, prev_hash, hash "
    "FROM audit_log ORDER BY id";
enum { C_ID = 0, C_PREV_HASH = F_COUNT + 1, C_HASH = F_COUNT + 2 };

static text col(db_stmt *s, int i)
{
    if (db_col_is_null(s, i)) return (text){NULL, 0};
    const char *p = db_col_text(s, i); /* text before bytes: the length is of the text form */
    return (text){p, db_col_bytes(s, i)};
}

static int text_eq(text a, const char *b, size_t n) { return a.s && a.n == n && memcmp(a.s, b, n) == 0; }

/* Checks one record against the previous one (prev_id 0: none yet); on a
 * fault writes why and returns 1. */
static int check_record(db_stmt *s, int64_t id, int64_t prev_id, const char *prev, mac *m, jw *w, char *why,
                        size_t whylen, err *e, int *rc)
{
    *rc = 0;
    if (prev_id == 0 && id != 1) {
        /* without AUTOINCREMENT ids start at 1 and never skip, so a later
         * first id means the oldest records were removed */
        if (id > 1) snprintf(why, whylen, "record %" PRId64 " is the first record: the records before it are missing", id);
        else snprintf(why, whylen, "record %" PRId64 ": record ids start at 1", id);
        return 1;
    }
    if (prev_id && id != prev_id + 1) {
        if (id - prev_id == 2)
            snprintf(why, whylen, "record %" PRId64 " follows record %" PRId64 ": a record is missing", id, prev_id);
        else
            snprintf(why, whylen, "record %" PRId64 " follows record %" PRId64 ": %" PRId64 " records are missing", id,
                     prev_id, id - prev_id - 1);
        return 1;
    }
    if (!text_eq(col(s, C_PREV_HASH), prev, strlen(prev))) {
        if (prev_id) snprintf(why, whylen, "record %" PRId64 ": prev_hash does not link to record %" PRId64, id, prev_id);
        else snprintf(why, whylen, "record %" PRId64 ": prev_hash is not empty, but it is the first record", id);
        return 1;
    }
    text f[F_COUNT] = {{0}};
    for (int i = 0; i < F_COUNT; i++) f[i] = col(s, i + 1);
    size_t clen = 0;
    const char *canon = canonical(w, f, &clen);
    if (!canon) {
        /* append never writes such text, so it was put there by hand */
        snprintf(why, whylen, "record %" PRId64 ": its contents are not valid UTF-8", id);
        return 1;
    }
    char want[HASH_HEX_LEN + 1];
    if ((*rc = mac_hex(m, prev, strlen(prev), canon, clen, want, e))) return 0;
    text h = col(s, C_HASH);
    if (!h.s || h.n != HASH_HEX_LEN || !crypto_equal(h.s, want, HASH_HEX_LEN)) {
        snprintf(why, whylen, "record %" PRId64 ": hash does not match its contents", id);
        return 1;
    }
    return 0;
}

int audit_verify(db *d, const uint8_t key[32], audit_check *out, err *e)
{
    memset(out, 0, sizeof *out);
    if (!key) return err_set(e, ERR_INTERNAL, "audit: no key");
    mac m = {0};
    jw w = {0};
    int rc = mac_open(&m, key, e);
    if (rc) return rc;
    if (jw_init(&w, 0)) {
        mac_close(&m);
        return ERR_NOMEM_RET(e);
    }
    /* one statement streams the rows (a single read snapshot, so appends
     * committed meanwhile are simply not seen); only the previous hash is
     * kept */
    db_stmt *s = db_prepare(d, SQL_ALL, e);
    if (!s) {
        rc = e ? e->code : ERR_DB;
        goto out;
    }
    char prev[HASH_HEX_LEN + 1] = "";
    int64_t prev_id = 0;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int64_t id = db_col_int(s, C_ID);
        out->records++;
        int bad = check_record(s, id, prev_id, prev, &m, &w, out->why, sizeof out->why, e, &rc);
        if (rc) break;
        if (bad) {
            /* everything after a broken link is unanchored: stop here.
             * 0 means "intact", so a (forged) record 0 is reported as -1;
             * why names it */
            out->first_bad_id = id ? id : -1;
            break;
        }
        /* a good record's hash is exactly HASH_HEX_LEN digits */
        memcpy(prev, db_col_text(s, C_HASH), HASH_HEX_LEN);
        prev[HASH_HEX_LEN] = '\0';
        prev_id = id;
    }
    db_done(s);
    if (rc > 0) rc = 0; /* DB_ROW (stopped at a fault) or DB_DONE */
out:
    jw_free(&w);
    mac_close(&m);
    return rc;
}

/* ---------------------------------------------------------------- export */

static const char SQL_RANGE[] =
    "SELECT id, at, actor, role, source, request_id, action, object_type, object_id, diff, prev_hash, hash "
    "FROM audit_log WHERE (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) ORDER BY id";

/* Diffs are the program's own output: far within these, but a diff is
 * never refused for its size (it is written as text instead). */
static const json_limits export_limits = {
    .max_bytes = (size_t)1 << 30,
    .max_depth = 512,
    .max_string = (size_t)1 << 30,
    .max_keys = 1000000,
    .max_items = 100000000,
    .max_nodes = 100000000,
};

/* Writes the diff column: parsed back into JSON when re-serialising the
 * parsed value gives back exactly the stored text (always, for what
 * audit_append wrote), so a reader recomputes the hash from
 * json(diff); otherwise the stored text itself as a JSON string, since a
 * diff is always an object, a string says "verbatim" unambiguously. */
static void write_diff(jw *w, text t, jv_arena *a, buf *tmp)
{
    if (!t.s) {
        jw_null(w);
        return;
    }
    jv *v = NULL;
    err perr;
    err_clear(&perr);
    jv_arena_reset(a);
    buf_reset(tmp);
    if (json_parse(t.s, t.n, &export_limits, a, &v, &perr) == 0 && v->kind == JV_OBJ && json_write(tmp, v) == 0 &&
        tmp->len == t.n && memcmp(tmp->data, t.s, t.n) == 0)
        jw_jv(w, v);
    else
        jw_strn(w, t.s, t.n);
}

int audit_export(db *d, const char *from, const char *to, FILE *out, int64_t *count, err *e)
{
    if (count) *count = 0;
    jw w = {0};
    jv_arena a;
    jv_arena_init(&a, 0);
    buf tmp = {0};
    int64_t n = 0;
    if (jw_init(&w, 0)) return ERR_NOMEM_RET(e);
    int rc;
    db_stmt *s = db_prepare(d, SQL_RANGE, e);
    if (!s) {
        rc = e ? e->code : ERR_DB;
        goto out;
    }
    if (db_bind_text(s, 1, from) || db_bind_text(s, 2, from) || db_bind_text(s, 3, to) || db_bind_text(s, 4, to)) {
        db_done(s);
        rc = err_set(e, ERR_DB, "audit export: cannot bind the range");
        goto out;
    }
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int64_t id = db_col_int(s, C_ID);
        jw_restart(&w);
        jw_obj_open(&w);
        jw_kv_int(&w, "id", id);
        for (int i = 0; i < F_COUNT; i++) {
            text t = col(s, i + 1);
            jw_key(&w, field_names[i]);
            if (i == F_DIFF) write_diff(&w, t, &a, &tmp);
            else if (t.s) jw_strn(&w, t.s, t.n);
            else jw_null(&w);
        }
        text ph = col(s, C_PREV_HASH), h = col(s, C_HASH);
        jw_key(&w, "prev_hash");
        jw_strn(&w, ph.s ? ph.s : "", ph.n);
        jw_key(&w, "hash");
        jw_strn(&w, h.s ? h.s : "", h.n);
        jw_obj_close(&w);
        size_t len = 0;
        const char *line = jw_finish(&w, &len);
        if (!line) {
            /* only a hand-edited row holds such text; verify names it */
            rc = err_set(e, ERR_INVALID, "audit export: record %" PRId64 " holds text that is not valid UTF-8", id);
            break;
        }
        if (fwrite(line, 1, len, out) != len || putc('\n', out) == EOF) {
            rc = err_set(e, ERR_IO, "audit export: cannot write: %s", strerror(errno));
            break;
        }
        n++;
    }
    db_done(s);
    if (rc > 0) rc = 0; /* DB_DONE */
    if (!rc && fflush(out) != 0) rc = err_set(e, ERR_IO, "audit export: cannot write: %s", strerror(errno));
out:
    if (count) *count = n;
    buf_free(&tmp);
    jv_arena_free(&a);
    jw_free(&w);
    return rc;
}

/* ----------------------------------------------------------------- anchors */

static void anchor_mac(const uint8_t key[32], int64_t id, const char *hash, char out[SHA256_HEX_LEN])
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "anchor\n%lld\n%s", (long long)id, hash);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)n, md, &mdlen);
    crypto_hex(md, mdlen > SHA256_LEN ? SHA256_LEN : mdlen, out);
}

int audit_anchor_write(db *d, const uint8_t key[32], const char *path, err *e)
{
    /* Moving the anchor past records that were cut off would erase the
     * only evidence of the cut: the anchor moves only while the records it
     * names are still there, unchanged. */
    audit_check was = {0};
    int crc = audit_anchor_check(d, key, path, &was, e);
    if (crc) return crc;
    if (was.first_bad_id)
        return err_set(e, ERR_CONFLICT, "the audit anchor is not moved: %s (run `bandbill audit verify`)", was.why);
    db_stmt *s = db_prepare(d, "SELECT id, hash, at FROM audit_log ORDER BY id DESC LIMIT 1", e);
    if (!s) return e->code;
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : 0; /* nothing to anchor yet */
    }
    int64_t id = db_col_int(s, 0);
    char hash[SHA256_HEX_LEN], at[32];
    snprintf(hash, sizeof hash, "%s", db_col_text(s, 1));
    snprintf(at, sizeof at, "%s", db_col_text(s, 2));
    db_done(s);
    char mac_hex[SHA256_HEX_LEN], tmp[4096];
    anchor_mac(key, id, hash, mac_hex);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set(e, ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "%lld %s %s %s\n", (long long)id, hash, at, mac_hex);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(e, ERR_IO, "cannot write the audit anchor %s: %s", path, strerror(errno));
    }
    return 0;
}

int audit_anchor_check(db *d, const uint8_t key[32], const char *path, audit_check *out, err *e)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long long id = 0;
    char hash[80], at[40], mac_hex[80], want[SHA256_HEX_LEN];
    int n = fscanf(f, "%lld %79s %39s %79s", &id, hash, at, mac_hex);
    fclose(f);
    if (n != 4) return err_set(e, ERR_INVALID, "the audit anchor %s is not readable", path);
    anchor_mac(key, id, hash, want);
    if (strcmp(want, mac_hex) != 0) {
        out->first_bad_id = id;
        snprintf(out->why, sizeof out->why, "the audit anchor %s was not written with this key file", path);
        return 0;
    }
    db_stmt *s = db_prepare(d, "SELECT hash FROM audit_log WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        if (strcmp(db_col_text(s, 0), hash) != 0) {
            out->first_bad_id = id;
            snprintf(out->why, sizeof out->why, "record %lld differs from the anchor written at %s", id, at);
        }
    } else if (rc == DB_DONE) {
        out->first_bad_id = id;
        snprintf(out->why, sizeof out->why,
                 "record %lld, anchored at %s, is gone: the newest records were removed", id, at);
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}
