/* netstate.c - a PPPoE account's desired state on the network (see
 * netstate.h). */
#include "netstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

#define AAD_PASSWORD "service_accounts.password"

/* ------------------------------------------------------------------ rates */

/* One side of a rate: "2M", "1.5m", "512K". */
static int parse_side(const char *s, size_t n, const char *which, int64_t *kbps, err *e)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    int64_t whole = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (++int_digits > 9) return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate is too large", which);
        whole = whole * 10 + (s[i++] - '0');
    }
    if (!int_digits)
        return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate must start with a number (\"2M\", \"512K\")",
                         which);
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (++frac_digits > 3)
                return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate has more than three decimals", which);
            frac = frac * 10 + (s[i++] - '0');
        }
        if (!frac_digits)
            return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate has a point without decimals", which);
        for (size_t k = frac_digits; k < 3; k++) frac *= 10;
    }
    if (i + 1 != n)
        return err_field(e, ERR_INVALID, "invalid_rate", "rate",
                         "the %s rate is a number and one unit: K, M or G (\"2M\", \"512K\")", which);
    int64_t unit;
    switch (s[i]) {
    case 'k': case 'K': unit = 1; break;
    case 'm': case 'M': unit = 1000; break;
    case 'g': case 'G': unit = 1000000; break;
    default:
        return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate's unit is K, M or G, not '%c'", which, s[i]);
    }
    /* thousandths of the unit, times the unit in kbit/s: whole kbit/s only */
    int64_t milli = whole * 1000 + frac;
    if (milli * unit % 1000)
        return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate is not a whole number of kbit/s", which);
    int64_t v = milli / 1000 * unit + milli % 1000 * unit / 1000;
    if (v < 1 || v > NETSTATE_KBPS_MAX)
        return err_field(e, ERR_INVALID, "invalid_rate", "rate", "the %s rate must be from 1K to 100G", which);
    *kbps = v;
    return 0;
}

int netstate_rate_parse(const char *text, netstate_rate *out, err *e)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    if (!slash || strchr(slash + 1, '/'))
        return err_field(e, ERR_INVALID, "invalid_rate", "rate",
                         "a rate is DOWNLOAD/UPLOAD such as \"2M/2M\" or \"512K/128K\", not \"%.40s\"", text ? text : "");
    netstate_rate r;
    int rc = parse_side(text, (size_t)(slash - text), "download", &r.down_kbps, e);
    if (!rc) rc = parse_side(slash + 1, strlen(slash + 1), "upload", &r.up_kbps, e);
    if (!rc) *out = r;
    return rc;
}

static void side_text(int64_t k, char *out, size_t n)
{
    if (k % 1000000 == 0) snprintf(out, n, "%lldG", (long long)(k / 1000000));
    else if (k % 1000 == 0) snprintf(out, n, "%lldM", (long long)(k / 1000));
    else snprintf(out, n, "%lldK", (long long)k);
}

void netstate_rate_format(const netstate_rate *r, char out[NETSTATE_RATE_TEXT])
{
    char d[24], u[24];
    side_text(r->down_kbps, d, sizeof d);
    side_text(r->up_kbps, u, sizeof u);
    snprintf(out, NETSTATE_RATE_TEXT, "%s/%s", d, u);
}

/* ------------------------------------------------------------------ state */

int netstate_set_customer(db *d, int64_t customer_id, const char *state, const netstate_rate *rate, int64_t *changed,
                          err *e)
{
    if (changed) *changed = 0;
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "netstate_set_customer outside a transaction");
    int rc;
    if (!strcmp(state, "throttled")) {
        if (!rate || rate->down_kbps < 1 || rate->up_kbps < 1 || rate->down_kbps > NETSTATE_KBPS_MAX ||
            rate->up_kbps > NETSTATE_KBPS_MAX)
            return err_field(e, ERR_INVALID, "invalid_rate", "rate", "a throttled line needs its rate");
        rc = db_run(d, e,
                    "UPDATE service_accounts SET status = 'throttled', throttle_down_kbps = ?, throttle_up_kbps = ? "
                    "WHERE customer_id = ? AND status IN ('active', 'throttled')",
                    "iii", rate->down_kbps, rate->up_kbps, customer_id);
    } else if (!strcmp(state, "suspended")) {
        rc = db_run(d, e,
                    "UPDATE service_accounts SET status = 'suspended', throttle_down_kbps = NULL, throttle_up_kbps = NULL "
                    "WHERE customer_id = ? AND status IN ('active', 'throttled')",
                    "i", customer_id);
    } else if (!strcmp(state, "active")) {
        rc = db_run(d, e,
                    "UPDATE service_accounts SET status = 'active', throttle_down_kbps = NULL, throttle_up_kbps = NULL "
                    "WHERE customer_id = ? AND status IN ('throttled', 'suspended') AND EXISTS "
                    "(SELECT 1 FROM subscriptions s WHERE s.service_account_id = service_accounts.id AND s.status = 'active')",
                    "i", customer_id);
    } else if (!strcmp(state, "closed")) {
        rc = db_run(d, e,
                    "UPDATE service_accounts SET status = 'closed', throttle_down_kbps = NULL, throttle_up_kbps = NULL "
                    "WHERE customer_id = ? AND status <> 'closed'",
                    "i", customer_id);
    } else {
        return err_field(e, ERR_INVALID, "invalid_status", "state",
                         "'%s' is not a line state (active, throttled, suspended, closed)", state);
    }
    if (!rc && changed) *changed = db_changes(d);
    return rc;
}

/* The line state the collection ladder holds for a customer: the network
 * action of the latest stage done on a bill still unpaid, else active. */
static int ladder_state(db *d, int64_t customer_id, char state[16], netstate_rate *rate, err *e)
{
    snprintf(state, 16, "active");
    db_stmt *s = db_prepare(d,
                            "SELECT a.actions FROM dunning_actions a JOIN invoices i ON i.id = a.invoice_id "
                            "WHERE a.customer_id = ? AND a.status = 'done' AND i.status IN ('open', 'partially_paid') "
                            "AND a.actions LIKE '%\"network\"%' ORDER BY a.id DESC LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *acts = NULL;
        err pe;
        /* written by dunning.c after checking each action, rate included */
        if (!json_parse(db_col_text(s, 0), db_col_bytes(s, 0), NULL, &a, &acts, &pe) && acts->kind == JV_ARR)
            for (size_t i = 0; i < jv_len(acts); i++) {
                const jv *k = jv_get(jv_at(acts, i), "kind"), *st = jv_get(jv_at(acts, i), "state");
                if (!k || k->kind != JV_STR || strcmp(k->u.str.s, "network") || !st || st->kind != JV_STR) continue;
                if (!strcmp(st->u.str.s, "suspended")) snprintf(state, 16, "suspended");
                else if (!strcmp(st->u.str.s, "throttled")) {
                    const jv *r = jv_get(jv_at(acts, i), "rate");
                    if (r && r->kind == JV_STR && !netstate_rate_parse(r->u.str.s, rate, &pe)) snprintf(state, 16, "throttled");
                }
            }
        jv_arena_free(&a);
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = 0;
    }
    db_done(s);
    return rc;
}

int netstate_resume_account(db *d, int64_t account_id, int64_t customer_id, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "netstate_resume_account outside a transaction");
    char state[16];
    netstate_rate rate = {0, 0};
    int rc = ladder_state(d, customer_id, state, &rate, e);
    if (rc) return rc;
    if (!strcmp(state, "throttled"))
        return db_run(d, e,
                      "UPDATE service_accounts SET status = 'throttled', throttle_down_kbps = ?, throttle_up_kbps = ? "
                      "WHERE id = ? AND status <> 'closed'",
                      "iii", rate.down_kbps, rate.up_kbps, account_id);
    return db_run(d, e,
                  "UPDATE service_accounts SET status = ?, throttle_down_kbps = NULL, throttle_up_kbps = NULL "
                  "WHERE id = ? AND status <> 'closed'",
                  "si", state, account_id);
}

/* -------------------------------------------------------------- records */

/* The rate of the plan of the account's subscription on `today`. */
static int plan_rate(db *d, netstate_record *r, const char *today, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT p.code, v.attrs FROM subscriptions s JOIN products p ON p.id = s.product_id "
                            "JOIN product_versions v ON v.product_id = s.product_id "
                            "WHERE s.service_account_id = ? AND s.status <> 'terminated' AND v.effective_from <= ? "
                            "ORDER BY s.id DESC, v.effective_from DESC LIMIT 1",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, r->account_id);
    db_bind_text(s, 2, today);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        snprintf(r->plan, sizeof r->plan, "%s", db_col_text(s, 0));
        const char *attrs = db_col_text(s, 1);
        jv_arena a;
        jv_arena_init(&a, 0);
        jv *root = NULL;
        err pe;
        /* the catalog checked the attributes when the version was made; a
         * plan without them (not a plan of bandwidth) has no rate */
        if (json_parse(attrs, strlen(attrs), &json_default_limits, &a, &root, &pe) == 0) {
            const jv *down = jv_get(root, "download_mbps"), *up = jv_get(root, "upload_mbps");
            if (down && up && down->kind == JV_INT && up->kind == JV_INT && down->u.i > 0 && up->u.i > 0 &&
                down->u.i <= NETSTATE_KBPS_MAX / 1000 && up->u.i <= NETSTATE_KBPS_MAX / 1000) {
                r->rate.down_kbps = down->u.i * 1000;
                r->rate.up_kbps = up->u.i * 1000;
                snprintf(r->rate_from, sizeof r->rate_from, "plan");
            }
        }
        jv_arena_free(&a);
        rc = 0;
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* Reads an account row (id, customer_id, username, password_enc, status,
 * throttle_down_kbps, throttle_up_kbps) into r; the stored password goes to
 * enc and the throttle rate to thr, for finish(). */
static int one(db_stmt *s, netstate_record *r, buf *enc, netstate_rate *thr, err *e)
{
    memset(r, 0, sizeof *r);
    r->account_id = db_col_int(s, 0);
    r->customer_id = db_col_int(s, 1);
    snprintf(r->username, sizeof r->username, "%s", db_col_text(s, 2));
    buf_reset(enc);
    if (buf_puts(enc, db_col_text(s, 3))) return ERR_NOMEM_RET(e);
    snprintf(r->state, sizeof r->state, "%s", db_col_text(s, 4));
    snprintf(r->rate_from, sizeof r->rate_from, "none");
    thr->down_kbps = db_col_is_null(s, 5) ? 0 : db_col_int(s, 5);
    thr->up_kbps = db_col_is_null(s, 6) ? 0 : db_col_int(s, 6);
    return 0;
}

static int finish(db *d, const vault *v, const char *today, netstate_record *r, const char *enc,
                  const netstate_rate *thr, err *e)
{
    if (!strcmp(r->state, "closed")) return 0; /* nothing of it stays on the network */
    int rc = plan_rate(d, r, today, e);
    if (rc) return rc;
    if (!strcmp(r->state, "throttled") && thr->down_kbps > 0 && thr->up_kbps > 0) {
        r->rate = *thr;
        snprintf(r->rate_from, sizeof r->rate_from, "throttle");
    }
    if (!v) {
        snprintf(r->error, sizeof r->error, "no key file open: the password cannot be read");
        return 0;
    }
    buf pw = {0};
    err de;
    if (vault_decrypt(v, AAD_PASSWORD, enc, &pw, &de)) {
        snprintf(r->error, sizeof r->error, "the password does not decrypt: %s", de.msg);
    } else if (pw.len >= sizeof r->password || memchr(pw.data, 0, pw.len)) {
        snprintf(r->error, sizeof r->error, "the stored password is not a PPPoE password");
    } else {
        memcpy(r->password, pw.data, pw.len);
        r->password[pw.len] = 0;
    }
    if (pw.data) explicit_bzero(pw.data, pw.len);
    buf_free(&pw);
    return 0;
}

int netstate_desired(db *d, const vault *v, int64_t account_id, const char *today, netstate_record *out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, username, password_enc, status, throttle_down_kbps, throttle_up_kbps "
                            "FROM service_accounts WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, account_id);
    int rc = db_step(d, s, e);
    buf enc = {0};
    netstate_rate thr = {0, 0};
    if (rc == DB_ROW) rc = one(s, out, &enc, &thr, e);
    else if (rc == DB_DONE) rc = err_field(e, ERR_NOTFOUND, "not_found", "account", "no PPPoE account with id %lld",
                                           (long long)account_id);
    db_done(s);
    if (!rc) rc = finish(d, v, today, out, buf_cstr(&enc), &thr, e);
    buf_free(&enc);
    return rc;
}

int netstate_desired_batch(db *d, const vault *v, int64_t after, const char *today, netstate_record *out, int max, int *n,
                           err *e)
{
    *n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, username, password_enc, status, throttle_down_kbps, throttle_up_kbps "
                            "FROM service_accounts WHERE id > ? ORDER BY id LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, after);
    db_bind_int(s, 2, max);
    /* the rows first (the statement done), then each plan and password */
    buf *enc = calloc((size_t)(max > 0 ? max : 1), sizeof *enc);
    netstate_rate *thr = calloc((size_t)(max > 0 ? max : 1), sizeof *thr);
    int rc = enc && thr ? 0 : ERR_NOMEM_RET(e), st = DB_DONE;
    while (!rc && *n < max && (st = db_step(d, s, e)) == DB_ROW) {
        rc = one(s, &out[*n], &enc[*n], &thr[*n], e);
        if (!rc) (*n)++;
    }
    db_done(s);
    if (!rc && st < 0) rc = st;
    for (int i = 0; !rc && i < *n; i++) rc = finish(d, v, today, &out[i], buf_cstr(&enc[i]), &thr[i], e);
    for (int i = 0; enc && i < max; i++) buf_free(&enc[i]);
    free(enc);
    free(thr);
    if (rc) {
        netstate_wipe(out, *n);
        *n = 0;
    }
    return rc;
}

void netstate_wipe(netstate_record *r, int n)
{
    for (int i = 0; i < n; i++) explicit_bzero(r[i].password, sizeof r[i].password);
}
