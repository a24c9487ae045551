/* invoices.c - invoices, credit notes, numbering and settlement (see
 * invoices.h).
 *
 * Everything here runs inside the caller's transaction and, for the
 * functions that write several rows, inside a savepoint of its own: a
 * refusal half-way (a charge someone else billed, a period billed already)
 * rolls back what this call wrote, its number included, and leaves the
 * caller's transaction usable. Numbers come from number_series in the same
 * transaction, so a rollback gives the number back and the series stays
 * gapless; BEGIN IMMEDIATE makes concurrent issuers take turns. */
#include "invoices.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "customers.h"
#include "date.h"
#include "dunning.h"
#include "ledger.h"
#include "notify.h"
#include "page.h"
#include "money.h"
#include "outbox.h"

/* ---------------------------------------------------------------- helpers */

static char g_invoice_prefix[8] = "INV";
static char g_credit_prefix[8] = "CN";

void invoices_set_prefixes(const char *invoice_prefix, const char *credit_note_prefix)
{
    if (invoice_prefix && *invoice_prefix) snprintf(g_invoice_prefix, sizeof g_invoice_prefix, "%s", invoice_prefix);
    if (credit_note_prefix && *credit_note_prefix) snprintf(g_credit_prefix, sizeof g_credit_prefix, "%s", credit_note_prefix);
}

#define AMOUNT_MAX 10000000000000LL   /* 100 billion yuan: beyond it a figure is a mistake */
#define DESCRIPTION_MAX 200
#define REASON_MAX 500

static int text_set(const char *s) { return s && s[strspn(s, " \t\r\n")]; }

static int date_ok(const char *s)
{
    int32_t days;
    err e;
    return s && date_parse(s, strlen(s), &days, &e) == 0;
}

static void today(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static jv *text_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_str(a, db_col_text(s, i)); }
static jv *int_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_int(a, db_col_int(s, i)); }

static jv *period_jv(jv_arena *a, db_stmt *s, int from, int to)
{
    if (db_col_is_null(s, from)) return jv_null(a);
    jv *p = jv_obj_sized(a, 2);
    if (!p || jv_obj_set(a, p, "from", jv_str(a, db_col_text(s, from))) || jv_obj_set(a, p, "to", text_or_null(a, s, to)))
        return NULL;
    return p;
}

/* An error about lines[i].leaf: the field is the JSON path, the message
 * starts with it. */
static int line_err(err *e, int code, const char *tag, size_t i, const char *leaf, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int line_err(err *e, int code, const char *tag, size_t i, const char *leaf, const char *fmt, ...)
{
    char field[64], msg[900];
    snprintf(field, sizeof field, "lines[%zu]%s%s", i, leaf[0] ? "." : "", leaf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_field(e, code, tag, field, "%s: %s", field, msg);
}

static const char *status_of(int64_t gross, int64_t paid, int64_t credited, int64_t written_off)
{
    int64_t left = gross - paid - credited - written_off;
    if (left <= 0) return written_off > 0 ? "written_off" : "paid";
    return paid + credited + written_off > 0 ? "partially_paid" : "open";
}

static void fmt_money(int64_t fen, char out[MONEY_FMT_MAX]) { money_format(fen, out); }

/* ---------------------------------------------------------------- numbers */

/* The next number of the series PREFIX-YYYY (year of `date`), taken in the
 * caller's transaction. */
static int take_number(db *d, const char *prefix, const char *date, char out[INVOICE_NUMBER_MAX], err *e)
{
    char series[24];
    snprintf(series, sizeof series, "%s-%.4s", prefix, date);
    for (int attempt = 0; attempt < 2; attempt++) {
        /* an UPDATE and a SELECT cost half what UPDATE ... RETURNING does
         * (SQLite runs RETURNING as a trigger, with a temporary table and a
         * statement journal) */
        int rc = db_run(d, e, "UPDATE number_series SET next = next + 1 WHERE series = ?", "s", series);
        if (rc) return rc;
        if (db_changes(d) == 1) {
            int64_t n = 0;
            rc = db_get_int(d, e, &n, "SELECT next - 1 FROM number_series WHERE series = ?", "s", series);
            if (rc) return rc;
            snprintf(out, INVOICE_NUMBER_MAX, "%s-%06lld", series, (long long)n);
            return 0;
        }
        /* first document of the series */
        rc = db_run(d, e, "INSERT INTO number_series (series, next) VALUES (?, 1) ON CONFLICT DO NOTHING", "s", series);
        if (rc) return rc;
    }
    return err_set(e, ERR_INTERNAL, "number series %s could not be started", series);
}

/* ------------------------------------------------------------ validation */

static const char *const line_kinds[] = {"recurring", "addon", "one_time", "proration", "discount",
                                         "deposit",   "credit", "fee",     "adjustment", NULL};

static int kind_known(const char *k)
{
    for (const char *const *p = line_kinds; k && *p; p++)
        if (!strcmp(*p, k)) return 1;
    return 0;
}

static int may_be_negative(const char *k)
{
    return !strcmp(k, "proration") || !strcmp(k, "discount") || !strcmp(k, "credit") || !strcmp(k, "adjustment");
}

typedef struct totals {
    int64_t net, tax, gross;
    int64_t credit;          /* credit applied: the credit lines' amounts, positive */
    size_t first_credit;     /* index of the first credit line, for errors */
} totals;

static int check_lines(const invoice_line_in *l, size_t n, totals *t, err *e)
{
    memset(t, 0, sizeof *t);
    if (n == 0) return err_field(e, ERR_INVALID, "missing_field", "lines", "an invoice has at least one line");
    for (size_t i = 0; i < n; i++) {
        const invoice_line_in *x = &l[i];
        if (!kind_known(x->kind))
            return line_err(e, ERR_INVALID, "invalid_field", i, "kind", "unknown kind '%s' (recurring, addon, one_time, proration, "
                            "discount, deposit, credit, fee, adjustment)", x->kind ? x->kind : "");
        if (!text_set(x->description)) return line_err(e, ERR_INVALID, "missing_field", i, "description", "a line needs a description");
        size_t dl = strlen(x->description);
        if (dl > DESCRIPTION_MAX || !json_utf8_valid(x->description, dl))
            return line_err(e, ERR_INVALID, "invalid_field", i, "description", "a description is at most %d bytes of UTF-8 text", DESCRIPTION_MAX);
        if (x->quantity < 1) return line_err(e, ERR_INVALID, "invalid_field", i, "quantity", "quantity is 1 or more, not %lld", (long long)x->quantity);
        if (x->amount > AMOUNT_MAX || x->amount < -AMOUNT_MAX || x->unit_price > AMOUNT_MAX || x->unit_price < -AMOUNT_MAX)
            return line_err(e, ERR_INVALID, "invalid_field", i, "amount", "amount out of range");
        if (!text_set(x->tax_category) || strlen(x->tax_category) > 32)
            return line_err(e, ERR_INVALID, "invalid_field", i, "tax_category", "a tax category is 1-32 bytes");
        if (x->tax_rate < 0 || x->tax_rate > 100)
            return line_err(e, ERR_INVALID, "invalid_field", i, "tax_rate", "a tax rate is 0 to 100 percent, not %d", x->tax_rate);
        int credit = !strcmp(x->kind, "credit");
        if (x->amount < 0 && !may_be_negative(x->kind))
            return line_err(e, ERR_INVALID, "invalid_field", i, "amount", "a %s line is not negative (%lld)", x->kind, (long long)x->amount);
        if (credit) {
            if (x->amount >= 0) return line_err(e, ERR_INVALID, "invalid_field", i, "amount", "a credit line is negative: credit applied to the bill");
            if (x->tax != 0 || x->tax_rate != 0) return line_err(e, ERR_INVALID, "invalid_field", i, "tax", "a credit line carries no tax");
            if (strcmp(x->tax_category, "credit"))
                return line_err(e, ERR_INVALID, "invalid_field", i, "tax_category", "a credit line's tax category is \"credit\"");
            if (x->pending_charge_id || x->deposit_id)
                return line_err(e, ERR_INVALID, "invalid_field", i, "kind", "a credit line bills no charge or deposit");
        }
        if (x->tax != 0 && (x->tax > 0) != (x->amount > 0))
            return line_err(e, ERR_INVALID, "invalid_field", i, "tax", "tax %lld has not the sign of the amount %lld", (long long)x->tax,
                            (long long)x->amount);
        /* |tax - amount * rate / (100 + rate)| < 1 fen, in integers */
        __int128 diff = (__int128)x->tax * (100 + x->tax_rate) - (__int128)x->amount * x->tax_rate;
        if (diff < 0) diff = -diff;
        if (diff >= 100 + x->tax_rate) {
            char a1[MONEY_FMT_MAX], t1[MONEY_FMT_MAX];
            fmt_money(x->amount, a1);
            fmt_money(x->tax, t1);
            return line_err(e, ERR_INVALID, "tax_mismatch", i, "tax", "tax %s is not %d%% of %s (tax included) to the fen", t1, x->tax_rate, a1);
        }
        if ((x->period_from || x->period_to) &&
            (!date_ok(x->period_from) || !date_ok(x->period_to) || strcmp(x->period_from, x->period_to) > 0))
            return line_err(e, ERR_INVALID, "invalid_field", i, "period", "a line's period is two dates, from <= to");
        if (x->detail && x->detail->kind != JV_OBJ) return line_err(e, ERR_INVALID, "invalid_field", i, "detail", "detail is an object");
        if (x->pending_charge_id < 0 || x->deposit_id < 0) return line_err(e, ERR_INVALID, "invalid_field", i, "", "bad charge or deposit id");
        if (x->deposit_id && strcmp(x->kind, "deposit"))
            return line_err(e, ERR_INVALID, "invalid_field", i, "kind", "a line billing a deposit is of kind deposit");
        for (size_t j = 0; j < i; j++) {
            if (x->pending_charge_id && l[j].pending_charge_id == x->pending_charge_id)
                return line_err(e, ERR_INVALID, "duplicate", i, "pending_charge_id", "charge %lld is billed by line %zu already",
                                (long long)x->pending_charge_id, j);
            if (x->deposit_id && l[j].deposit_id == x->deposit_id)
                return line_err(e, ERR_INVALID, "duplicate", i, "deposit_id", "deposit %lld is billed by line %zu already", (long long)x->deposit_id, j);
        }
        if (credit) {
            if (!t->credit) t->first_credit = i;
            t->credit -= x->amount;
        } else {
            t->gross += x->amount;
            t->tax += x->tax;
        }
    }
    t->net = t->gross - t->tax;
    if (t->gross < 0) {
        char g[MONEY_FMT_MAX];
        fmt_money(t->gross, g);
        return err_field(e, ERR_INVALID, "negative_invoice", "lines", "the lines add up to %s: an invoice is not negative (that is a credit note)", g);
    }
    if (t->credit > t->gross) {
        char c[MONEY_FMT_MAX], g[MONEY_FMT_MAX];
        fmt_money(t->credit, c);
        fmt_money(t->gross, g);
        return line_err(e, ERR_INVALID, "credit_exceeds_bill", t->first_credit, "amount", "credit applied %s is more than the bill, %s", c, g);
    }
    return 0;
}

static int check_new(db *d, const invoice_new *in, totals *t, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices need the caller's transaction");
    if (in->customer_id <= 0) return err_field(e, ERR_INVALID, "missing_field", "customer", "no customer");
    if (!date_ok(in->issue_date)) return err_field(e, ERR_INVALID, "invalid_date", "issue_date", "issue_date must be a date YYYY-MM-DD");
    if (!date_ok(in->due_date)) return err_field(e, ERR_INVALID, "invalid_date", "due_date", "due_date must be a date YYYY-MM-DD");
    if (strcmp(in->due_date, in->issue_date) < 0)
        return err_field(e, ERR_INVALID, "invalid_date", "due_date", "due date %s is before the issue date %s", in->due_date, in->issue_date);
    if ((in->period_from || in->period_to) &&
        (!date_ok(in->period_from) || !date_ok(in->period_to) || strcmp(in->period_from, in->period_to) > 0))
        return err_field(e, ERR_INVALID, "invalid_field", "period", "a period is two dates, from <= to");
    if (in->subscription_id && !in->period_from)
        return err_field(e, ERR_INVALID, "missing_field", "period", "a subscription's bill names its period");
    if (in->billed_through && (!in->subscription_id || !date_ok(in->billed_through)))
        return err_field(e, ERR_INVALID, "invalid_field", "billed_through", "billed_through is a date, for a subscription's bill");
    if (in->nchanges && !in->subscription_id)
        return err_field(e, ERR_INVALID, "invalid_field", "changes", "changes are a subscription's");
    if (!text_set(in->rules_version)) return err_field(e, ERR_INVALID, "missing_field", "rules_version", "which rule set made the bill");
    if (!text_set(in->by)) return err_set(e, ERR_INTERNAL, "invoices: who makes the invoice is not said");
    return check_lines(in->lines, in->nlines, t, e);
}

/* ------------------------------------------------------------- issuing */

typedef struct issue_in {
    int64_t id, customer_id, subscription_id;
    const char *issue_date, *due_date, *period_from, *period_to, *by;
    const invoice_line_in *lines;
    size_t nlines;
    const int64_t *change_ids;
    size_t nchanges;
    const char *billed_through;
    const char *next_bill_date;
    totals t;
} issue_in;

static void issue_in_of(const invoice_new *in, issue_in *x)
{
    *x = (issue_in){.customer_id = in->customer_id, .subscription_id = in->subscription_id, .issue_date = in->issue_date,
                    .due_date = in->due_date, .period_from = in->period_from, .period_to = in->period_to, .by = in->by,
                    .lines = in->lines, .nlines = in->nlines, .change_ids = in->change_ids, .nchanges = in->nchanges,
                    .billed_through = in->billed_through, .next_bill_date = in->next_bill_date};
}

static void address_json(jw *w, db_stmt *s)
{
    static const char *const keys[] = {"province", "city", "district", "street", "community", "building", "unit", "floor", "room"};
    jw_obj_open(w);
    for (int k = 0; k < 9; k++) jw_kv_str(w, keys[k], db_col_text(s, 1 + k));
    if (db_col_is_null(s, 10)) {
        jw_key(w, "gis_code");
        jw_null(w);
    } else {
        jw_kv_str(w, "gis_code", db_col_text(s, 10));
    }
    jw_obj_close(w);
}

/* The customer as the bill names them on the day: the snapshot kept in
 * invoices.bill_to, and the code. */
static int read_bill_to(db *d, int64_t customer_id, invoice_prep *p, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT code, name, company_name, tax_id, type FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)customer_id);
    }
    jw w;
    if (jw_init(&w, 0)) {
        db_done(s);
        return ERR_NOMEM_RET(e);
    }
    snprintf(p->code, sizeof p->code, "%s", db_col_text(s, 0));
    jw_obj_open(&w);
    jw_kv_str(&w, "customer_name", db_col_text(s, 1));
    jw_key(&w, "company_name");
    if (db_col_is_null(s, 2)) jw_null(&w);
    else jw_str(&w, db_col_text(s, 2));
    jw_key(&w, "tax_id");
    if (db_col_is_null(s, 3)) jw_null(&w);
    else jw_str(&w, db_col_text(s, 3));
    jw_kv_str(&w, "customer_type", db_col_text(s, 4));
    rc = 0;
    db_done(s);
    s = db_prepare(d,
                   "SELECT kind, province, city, district, street, community, building, unit, floor, room, gis_code "
                   "FROM addresses WHERE customer_id = ? ORDER BY kind DESC",
                   e);
    if (!s) {
        jw_free(&w);
        return e->code;
    }
    db_bind_int(s, 1, customer_id);
    int have_service = 0, have_billing = 0;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        /* ordered service, billing */
        if (!strcmp(db_col_text(s, 0), "service")) {
            jw_key(&w, "service_address");
            have_service = 1;
        } else {
            if (!have_service) {
                jw_key(&w, "service_address");
                jw_null(&w);
                have_service = 1;
            }
            jw_key(&w, "billing_address");
            have_billing = 1;
        }
        address_json(&w, s);
    }
    db_done(s);
    if (rc < 0) {
        jw_free(&w);
        return rc;
    }
    if (!have_service) {
        jw_key(&w, "service_address");
        jw_null(&w);
    }
    if (!have_billing) {
        jw_key(&w, "billing_address");
        jw_null(&w);
    }
    jw_obj_close(&w);
    size_t n;
    const char *j = jw_finish(&w, &n);
    buf_reset(&p->bill_to);
    rc = !j || buf_append(&p->bill_to, j, n) ? ERR_NOMEM_RET(e) : 0;
    jw_free(&w);
    return rc;
}

/* The e-bill's payload, written directly as json_write would write the
 * object (keys in byte order) rather than built as a tree first. */
static void ebill_write(jw *w, const issue_in *in, const char *code, const char *number, const char *link)
{
    char period[32] = "";
    if (in->period_from) snprintf(period, sizeof period, "%s..%s", in->period_from, in->period_to);
    jw_obj_open(w);
    jw_kv_int(w, "amount_due", in->t.gross - in->t.credit);
    jw_kv_str(w, "customer", code);
    jw_kv_str(w, "due_date", in->due_date);
    jw_kv_str(w, "number", number);
    /* a bill paid in full by credit still tells the customer, but asks for nothing */
    jw_kv_str(w, "pay_link", link);
    jw_kv_str(w, "period", period[0] ? period : NULL);
    jw_obj_close(w);
}

#define NUMBER_KEY ",\"number\":\"\""
#define LINK_SOME ",\"pay_link\":\"/pay/\""
#define LINK_NONE ",\"pay_link\":null"

/* The payload but for its number, which the writer takes: written with an
 * empty number and cut around it (and around the link's). A number is its
 * series, PREFIX-YYYY, a dash and digits: when the series is ASCII that
 * JSON keeps as it is, the writer pastes the number in; else (a prefix
 * configured so) it writes the whole payload (pay_split 0). */
static int ebill_prepare(const issue_in *in, invoice_prep *p, err *e)
{
    p->pay_split = 0;
    p->pay_link = in->t.gross - in->t.credit > 0;
    buf_reset(&p->pay_head);
    buf_reset(&p->pay_tail);
    char series[24];
    snprintf(series, sizeof series, "%s-%.4s", g_invoice_prefix, in->issue_date);
    for (const char *c = series; *c; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\') return 0;
    jw w;
    if (jw_init(&w, 0)) return ERR_NOMEM_RET(e);
    ebill_write(&w, in, p->code, "", p->pay_link ? "/pay/" : NULL);
    size_t n;
    const char *j = jw_finish(&w, &n);
    /* a quote inside a string is escaped: the key is found once, at its place */
    const char *num = j ? strstr(j, NUMBER_KEY) : NULL, *link = p->pay_link ? LINK_SOME : LINK_NONE;
    const char *after = num ? num + strlen(NUMBER_KEY) : NULL;
    int rc = 0;
    if (after && !strncmp(after, link, strlen(link)) && !strncmp(after + strlen(link), ",\"period\":", 10)) {
        after += strlen(link);
        if (buf_append(&p->pay_head, j, (size_t)(num - j) + strlen(NUMBER_KEY) - 1) ||
            buf_append(&p->pay_tail, after, n - (size_t)(after - j)))
            rc = ERR_NOMEM_RET(e);
        else
            p->pay_split = 1;
    }
    jw_free(&w);
    return rc;
}

/* The payload with its number, in p->pay. */
static const char *ebill_payload(const issue_in *in, invoice_prep *p, const char *number, err *e)
{
    buf *b = &p->pay;
    buf_reset(b);
    if (p->pay_split) {
        int bad = buf_append(b, p->pay_head.data, p->pay_head.len) || buf_puts(b, number) || buf_puts(b, "\"");
        if (p->pay_link) bad = bad || buf_puts(b, ",\"pay_link\":\"/pay/") || buf_puts(b, number) || buf_puts(b, "\"");
        else bad = bad || buf_puts(b, LINK_NONE);
        bad = bad || buf_append(b, p->pay_tail.data, p->pay_tail.len);
        if (bad) ERR_NOMEM_RET(e);
        return bad ? NULL : buf_cstr(b);
    }
    char link[INVOICE_NUMBER_MAX + 8];
    snprintf(link, sizeof link, "/pay/%s", number);
    jw w;
    if (jw_init(&w, 0)) {
        ERR_NOMEM_RET(e);
        return NULL;
    }
    ebill_write(&w, in, p->code, number, p->pay_link ? link : NULL);
    size_t n;
    const char *j = jw_finish(&w, &n);
    int rc = j ? buf_append(b, j, n) : ERR_INVALID;
    jw_free(&w);
    if (rc == ERR_INVALID) err_set(e, ERR_INVALID, "outbox: the payload cannot be written as JSON");
    else if (rc) ERR_NOMEM_RET(e);
    return rc ? NULL : buf_cstr(b);
}

static int credit_available_ok(db *d, int64_t customer_id, const totals *t, err *e)
{
    if (!t->credit) return 0;
    ledger_balance b;
    int rc = ledger_balance_of(d, customer_id, &b, e);
    if (rc) return rc;
    if (t->credit > b.credit) {
        char c[MONEY_FMT_MAX], av[MONEY_FMT_MAX];
        fmt_money(t->credit, c);
        fmt_money(b.credit, av);
        return line_err(e, ERR_CONFLICT, "credit_exceeded", t->first_credit, "amount", "credit applied %s is more than the customer's credit, %s", c,
                        av);
    }
    return 0;
}

/* What issuing reads before it writes: the subscription, the customer,
 * the e-bill's recipients and payload. No number: that is the writer's. */
static int prep_read(db *d, const vault *v, const issue_in *x, invoice_prep *p, err *e)
{
    p->in = NULL;
    p->net = x->t.net;
    p->tax = x->t.tax;
    p->gross = x->t.gross;
    p->credit = x->t.credit;
    p->moves_sub = p->have_prev_billed = 0;
    p->prev_billed_through[0] = p->prev_next_bill_date[0] = '\0';
    if (x->subscription_id) {
        db_stmt *s = db_prepare(d, "SELECT customer_id, billed_through, next_bill_date FROM subscriptions WHERE id = ?", e);
        if (!s) return e->code;
        db_bind_int(s, 1, x->subscription_id);
        int rc = db_step(d, s, e);
        int64_t owner = rc == DB_ROW ? db_col_int(s, 0) : 0;
        if (rc == DB_ROW && x->billed_through) {
            p->moves_sub = 1;
            p->have_prev_billed = !db_col_is_null(s, 1);
            snprintf(p->prev_billed_through, sizeof p->prev_billed_through, "%s", db_col_text(s, 1));
            snprintf(p->prev_next_bill_date, sizeof p->prev_next_bill_date, "%s", db_col_text(s, 2));
        }
        db_done(s);
        if (rc < 0) return rc;
        if (owner != x->customer_id)
            return err_field(e, ERR_INVALID, "invalid_field", "subscription_id", "subscription %lld is not this customer's",
                             (long long)x->subscription_id);
    }
    int rc = read_bill_to(d, x->customer_id, p, e);
    /* the e-bill goes on the channels the customer prefers, each to its contact */
    if (!rc) rc = notify_recipients(d, v, x->customer_id, NULL, &p->to, e);
    if (!rc) rc = ebill_prepare(x, p, e);
    return rc;
}

/* Each line's detail as JSON, for the writer to bind as it is (p->details
 * 0 when one cannot be written: the writer writes them and says so, where
 * it did). */
static int prep_details(const invoice_new *in, invoice_prep *p, err *e)
{
    p->details = 0;
    buf_reset(&p->detail_text);
    if (in->nlines > p->detail_cap) {
        size_t *at = realloc(p->detail_at, in->nlines * sizeof *at);
        if (!at) return ERR_NOMEM_RET(e);
        p->detail_at = at;
        p->detail_cap = in->nlines;
    }
    for (size_t i = 0; i < in->nlines; i++) {
        p->detail_at[i] = SIZE_MAX;
        if (!in->lines[i].detail) continue;
        p->detail_at[i] = p->detail_text.len;
        if (json_write(&p->detail_text, in->lines[i].detail) || buf_append(&p->detail_text, "", 1)) return 0;
    }
    p->details = 1;
    return 0;
}

int invoices_prepare(db *d, const vault *v, const invoice_new *in, invoice_prep *p, err *e)
{
    issue_in x;
    issue_in_of(in, &x);
    p->in = NULL;
    int rc = check_new(d, in, &x.t, e);
    if (!rc) rc = credit_available_ok(d, in->customer_id, &x.t, e);
    if (!rc) rc = prep_read(d, v, &x, p, e);
    if (!rc) rc = prep_details(in, p, e);
    if (!rc) p->in = in;
    return rc;
}

void invoices_prep_free(invoice_prep *p)
{
    buf_free(&p->bill_to);
    buf_free(&p->pay_head);
    buf_free(&p->pay_tail);
    buf_free(&p->pay);
    buf_free(&p->detail_text);
    free(p->detail_at);
    p->detail_at = NULL;
    p->detail_cap = 0;
    notify_to_free(&p->to);
    p->in = NULL;
}

/* Explains a refused invoice row: the period billed already, else as is. */
static int explain_conflict(db *d, int64_t subscription_id, const char *period_from, err *e)
{
    if (!subscription_id || !period_from) return e->code;
    db_stmt *s = db_prepare(d, "SELECT number, status FROM invoices WHERE subscription_id = ? AND period_from = ? AND status <> 'void'", e);
    if (!s) return e->code;
    db_bind_int(s, 1, subscription_id);
    db_bind_text(s, 2, period_from);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        char num[INVOICE_NUMBER_MAX];
        snprintf(num, sizeof num, "%s", db_col_is_null(s, 0) ? "(a draft)" : db_col_text(s, 0));
        db_done(s);
        return err_field(e, ERR_CONFLICT, "already_billed", "period", "subscription %lld is billed for the period from %s already: invoice %s",
                         (long long)subscription_id, period_from, num);
    }
    db_done(s);
    return rc < 0 ? rc : ERR_CONFLICT;
}

/* Lines go in by up to LINES_PER_INSERT rows per statement: each statement
 * run has a fixed cost (and SQLite builds the CHECK constraint's IN list
 * once per run, not per row), and a bill has a handful of lines. */
#define LINE_COLS                                                                                                       \
    "INSERT INTO invoice_lines (invoice_id, seq, kind, description, product_code, product_version, quantity, "        \
    "unit_price, amount, tax_category, tax_rate, tax, net, period_from, period_to, step, rule, detail, "              \
    "pending_charge_id, deposit_id) VALUES "
#define LINE_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define LINE_NCOLS 20
#define LINES_PER_INSERT 4
static const char *const LINE_SQL[LINES_PER_INSERT + 1] = {
    NULL,
    LINE_COLS LINE_ROW,
    LINE_COLS LINE_ROW ", " LINE_ROW,
    LINE_COLS LINE_ROW ", " LINE_ROW ", " LINE_ROW,
    LINE_COLS LINE_ROW ", " LINE_ROW ", " LINE_ROW ", " LINE_ROW,
};

/* Binds line i (0-based in the bill) as row r of statement s: the line's
 * own values without copies (they outlive the step), the detail as a copy
 * when it is in a buffer the next line reuses (detail_copy). */
static void bind_line(db_stmt *s, int r, int64_t invoice_id, size_t i, const invoice_line_in *x, const char *detail,
                      int detail_copy)
{
    int b = r * LINE_NCOLS;
    db_bind_int(s, b + 1, invoice_id);
    db_bind_int(s, b + 2, (int64_t)i + 1);
    db_bind_text_ref(s, b + 3, x->kind);
    db_bind_text_ref(s, b + 4, x->description);
    db_bind_text_ref(s, b + 5, x->product_code);
    if (x->product_version > 0) db_bind_int(s, b + 6, x->product_version);
    else db_bind_null(s, b + 6);
    db_bind_int(s, b + 7, x->quantity);
    db_bind_int(s, b + 8, x->unit_price);
    db_bind_int(s, b + 9, x->amount);
    db_bind_text_ref(s, b + 10, x->tax_category);
    db_bind_int(s, b + 11, x->tax_rate);
    db_bind_int(s, b + 12, x->tax);
    db_bind_int(s, b + 13, x->amount - x->tax);
    db_bind_text_ref(s, b + 14, x->period_from);
    db_bind_text_ref(s, b + 15, x->period_to);
    db_bind_text_ref(s, b + 16, text_set(x->step) ? x->step : "manual");
    db_bind_text_ref(s, b + 17, text_set(x->rule) ? x->rule : "manual");
    if (detail_copy) db_bind_text(s, b + 18, detail);
    else db_bind_text_ref(s, b + 18, detail);
    if (x->pending_charge_id) db_bind_int(s, b + 19, x->pending_charge_id);
    else db_bind_null(s, b + 19);
    if (x->deposit_id) db_bind_int(s, b + 20, x->deposit_id);
    else db_bind_null(s, b + 20);
}

/* Lines first..first+k-1 in one statement; on a constraint failure (the
 * statement wrote nothing) ERR_CONFLICT with e set. The details come
 * written from p (may be NULL) when it has them. */
static int insert_chunk(db *d, int64_t invoice_id, const invoice_line_in *l, size_t first, size_t k, const invoice_prep *p,
                        buf *detail, err *e)
{
    db_stmt *s = db_prepare(d, LINE_SQL[k], e);
    if (!s) return e->code;
    for (size_t r = 0; r < k; r++) {
        const invoice_line_in *x = &l[first + r];
        if (p && p->details) {
            size_t at = p->detail_at[first + r];
            bind_line(s, (int)r, invoice_id, first + r, x, at == SIZE_MAX ? NULL : p->detail_text.data + at, 0);
            continue;
        }
        buf_reset(detail);
        if (x->detail && json_write(detail, x->detail)) {
            db_done(s);
            return line_err(e, ERR_INVALID, "invalid_field", first + r, "detail", "detail cannot be written as JSON");
        }
        /* bound as a copy (SQLITE_TRANSIENT): the buffer is reused */
        bind_line(s, (int)r, invoice_id, first + r, x, x->detail ? buf_cstr(detail) : NULL, 1);
    }
    int rc = db_step(d, s, e);
    db_done(s);
    if (rc == DB_DONE) return 0;
    if (rc >= 0) return err_set(e, ERR_INTERNAL, "invoice line insert returned a row");
    return rc;
}

static int insert_lines(db *d, int64_t invoice_id, const invoice_line_in *l, size_t n, const invoice_prep *p, err *e)
{
    buf detail = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += LINES_PER_INSERT) {
        size_t k = n - i < LINES_PER_INSERT ? n - i : LINES_PER_INSERT;
        rc = insert_chunk(d, invoice_id, l, i, k, p, &detail, e);
        if (rc != ERR_CONFLICT) continue;
        /* which line: again one at a time, to name it */
        rc = 0;
        for (size_t j = i; j < i + k && !rc; j++) {
            rc = insert_chunk(d, invoice_id, l, j, 1, p, &detail, e);
            if (rc == ERR_CONFLICT) rc = line_err(e, ERR_INVALID, "invalid_field", j, "", "%s", e->msg);
        }
    }
    buf_free(&detail);
    return rc;
}

/* What an issued invoice does beyond its own rows: it takes the charges,
 * deposits and changes it bills, moves the subscription on, goes on the
 * ledger, applies the credit its credit lines show, and queues the e-bill. */
static int issue_effects(db *d, const issue_in *in, invoice_prep *p, const char *number, err *e)
{
    int rc = 0;
    for (size_t i = 0; i < in->nlines && !rc; i++) {
        const invoice_line_in *x = &in->lines[i];
        if (x->pending_charge_id) {
            rc = db_run(d, e,
                        "UPDATE pending_charges SET invoice_id = ?, billed_on = ? WHERE id = ? AND customer_id = ? "
                        "AND invoice_id IS NULL AND billed_on IS NULL AND cancelled_at IS NULL",
                        "isii", in->id, in->issue_date, x->pending_charge_id, in->customer_id);
            if (!rc && db_changes(d) != 1)
                rc = line_err(e, ERR_CONFLICT, "charge_not_open", i, "pending_charge_id",
                              "charge %lld is not one of this customer's open charges (billed, cancelled or unknown)",
                              (long long)x->pending_charge_id);
        }
        if (!rc && x->deposit_id) {
            rc = db_run(d, e,
                        "UPDATE deposits SET invoice_id = ? WHERE id = ? AND customer_id = ? AND status = 'held' "
                        "AND invoice_id IS NULL AND amount = ?",
                        "iiii", in->id, x->deposit_id, in->customer_id, x->amount);
            if (!rc && db_changes(d) != 1)
                rc = line_err(e, ERR_CONFLICT, "deposit_not_open", i, "deposit_id",
                              "deposit %lld is not a held, unbilled deposit of this customer of %lld fen", (long long)x->deposit_id,
                              (long long)x->amount);
        }
    }
    for (size_t i = 0; i < in->nchanges && !rc; i++) {
        rc = db_run(d, e, "UPDATE subscription_changes SET invoice_id = ? WHERE id = ? AND subscription_id = ? AND invoice_id IS NULL",
                    "iii", in->id, in->change_ids[i], in->subscription_id);
        if (!rc && db_changes(d) != 1)
            rc = err_field(e, ERR_CONFLICT, "change_billed", "changes", "change %lld is not an unbilled change of subscription %lld",
                           (long long)in->change_ids[i], (long long)in->subscription_id);
    }
    if (!rc && in->billed_through && in->next_bill_date)
        rc = db_run(d, e, "UPDATE subscriptions SET billed_through = ?, next_bill_date = ? WHERE id = ?", "ssi", in->billed_through,
                    in->next_bill_date, in->subscription_id);
    else if (!rc && in->billed_through)
        rc = db_run(d, e, "UPDATE subscriptions SET billed_through = ? WHERE id = ?", "si", in->billed_through, in->subscription_id);
    /* the ledger: each deposit it bills goes to the deposit account, then
     * the invoice to the customer's, posted together */
    if (!rc) {
        ledger_entry few[8], *les = few;
        size_t nles = 1;
        for (size_t i = 0; i < in->nlines; i++)
            if (in->lines[i].deposit_id && in->lines[i].amount) nles++;
        if (nles > sizeof few / sizeof *few && !(les = malloc(nles * sizeof *les))) return ERR_NOMEM_RET(e);
        nles = 0;
        for (size_t i = 0; i < in->nlines; i++) {
            const invoice_line_in *x = &in->lines[i];
            if (!x->deposit_id || !x->amount) continue;
            les[nles++] = (ledger_entry){.customer_id = in->customer_id, .account = "deposit", .kind = "deposit_held",
                                         .amount = x->amount, .entry_date = in->issue_date, .invoice_id = in->id,
                                         .deposit_id = x->deposit_id, .by = in->by};
        }
        if (in->t.gross)
            les[nles++] = (ledger_entry){.customer_id = in->customer_id, .kind = "invoice", .amount = in->t.gross,
                                         .entry_date = in->issue_date, .invoice_id = in->id, .by = in->by};
        if (nles) rc = ledger_post_many(d, les, nles, e);
        if (les != few) free(les);
    }
    if (!rc && in->t.credit) {
        char now[25];
        db_now(now);
        rc = db_run(d, e, "INSERT INTO allocations (invoice_id, payment_id, amount, created_at) VALUES (?, NULL, ?, ?)", "iis", in->id,
                    in->t.credit, now);
    }
    if (rc) return rc;
    char key[INVOICE_NUMBER_MAX + 24];
    snprintf(key, sizeof key, "invoice_issued:%s", number);
    const char *pl = ebill_payload(in, p, number, e);
    return pl ? notify_queue_json(d, &p->to, "invoice_issued", pl, key, NULL, e) : e->code;
}

int invoices_issue_prepared(db *d, const invoice_new *in, invoice_prep *p, int64_t *id, char number[INVOICE_NUMBER_MAX], err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices need the caller's transaction");
    if (!p->in || p->in != in) return err_set(e, ERR_INTERNAL, "invoices: an invoice issued with another's preparation");
    /* used once: what it read is the writes' now */
    p->in = NULL;
    issue_in x;
    issue_in_of(in, &x);
    x.t = (totals){.net = p->net, .tax = p->tax, .gross = p->gross, .credit = p->credit};
    char num[INVOICE_NUMBER_MAX];
    int rc = db_begin(d, e);
    if (rc) return rc;
    rc = take_number(d, g_invoice_prefix, in->issue_date, num, e);
    if (!rc) {
        char now[25];
        db_now(now);
        int64_t paid = x.t.credit;
        db_stmt *s = db_prepare(d,
                                "INSERT INTO invoices (number, customer_id, subscription_id, period_from, period_to, status, issue_date, "
                                "due_date, net, tax, gross, paid, rules_version, bill_run_id, bill_to, created_at, created_by, "
                                "finalized_at, prev_billed_through, prev_next_bill_date) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                e);
        if (!s) rc = e->code;
        else {
            /* every value outlives the step: bound without copies */
            db_bind_text_ref(s, 1, num);
            db_bind_int(s, 2, in->customer_id);
            if (in->subscription_id) db_bind_int(s, 3, in->subscription_id);
            else db_bind_null(s, 3);
            db_bind_text_ref(s, 4, in->period_from);
            db_bind_text_ref(s, 5, in->period_to);
            db_bind_text_ref(s, 6, status_of(x.t.gross, paid, 0, 0));
            db_bind_text_ref(s, 7, in->issue_date);
            db_bind_text_ref(s, 8, in->due_date);
            db_bind_int(s, 9, x.t.net);
            db_bind_int(s, 10, x.t.tax);
            db_bind_int(s, 11, x.t.gross);
            db_bind_int(s, 12, paid);
            db_bind_text_ref(s, 13, in->rules_version);
            if (in->bill_run_id) db_bind_int(s, 14, in->bill_run_id);
            else db_bind_null(s, 14);
            db_bind_text_ref(s, 15, buf_cstr(&p->bill_to));
            db_bind_text_ref(s, 16, now);
            db_bind_text_ref(s, 17, in->by);
            db_bind_text_ref(s, 18, now);
            db_bind_text_ref(s, 19, p->moves_sub && p->have_prev_billed ? p->prev_billed_through : NULL);
            db_bind_text_ref(s, 20, p->moves_sub ? p->prev_next_bill_date : NULL);
            rc = db_step(d, s, e);
            db_done(s);
            if (rc == DB_DONE) rc = 0;
            else if (rc == ERR_CONFLICT) rc = explain_conflict(d, in->subscription_id, in->period_from, e);
            else if (rc >= 0) rc = err_set(e, ERR_INTERNAL, "invoice insert returned a row");
        }
    }
    if (!rc) {
        x.id = db_last_id(d);
        rc = insert_lines(d, x.id, in->lines, in->nlines, p, e);
    }
    if (!rc) rc = issue_effects(d, &x, p, num, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    if (!rc) {
        if (id) *id = x.id;
        if (number) snprintf(number, INVOICE_NUMBER_MAX, "%s", num);
    }
    return rc;
}

int invoices_issue(db *d, const vault *v, const invoice_new *in, int64_t *id, char number[INVOICE_NUMBER_MAX], err *e)
{
    invoice_prep p = {0};
    int rc = invoices_prepare(d, v, in, &p, e);
    if (!rc) rc = invoices_issue_prepared(d, in, &p, id, number, e);
    invoices_prep_free(&p);
    return rc;
}

/* ---------------------------------------------------------------- drafts */

int invoices_create_draft(db *d, const invoice_new *in, int64_t *id, err *e)
{
    totals t;
    int rc = check_new(d, in, &t, e);
    if (rc) return rc;
    if (in->subscription_id) {
        int64_t owner = 0;
        rc = db_get_int(d, e, &owner, "SELECT customer_id FROM subscriptions WHERE id = ?", "i", in->subscription_id);
        if (rc && rc != ERR_NOTFOUND) return rc;
        if (owner != in->customer_id)
            return err_field(e, ERR_INVALID, "invalid_field", "subscription_id", "subscription %lld is not this customer's",
                             (long long)in->subscription_id);
    }
    /* what the draft will take when issued */
    jw w;
    if (jw_init(&w, 0)) return ERR_NOMEM_RET(e);
    jw_obj_open(&w);
    jw_key(&w, "changes");
    jw_arr_open(&w);
    for (size_t i = 0; i < in->nchanges; i++) jw_int(&w, in->change_ids[i]);
    jw_arr_close(&w);
    jw_kv_str(&w, "billed_through", in->billed_through);
    jw_obj_close(&w);
    size_t n;
    const char *refs = jw_finish(&w, &n);
    if (!refs) {
        jw_free(&w);
        return ERR_NOMEM_RET(e);
    }
    rc = db_begin(d, e);
    if (!rc) {
        char now[25];
        db_now(now);
        db_stmt *s = db_prepare(d,
                                "INSERT INTO invoices (number, customer_id, subscription_id, period_from, period_to, status, issue_date, "
                                "due_date, net, tax, gross, rules_version, bill_run_id, created_at, created_by, draft_refs) "
                                "VALUES (NULL, ?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                e);
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, in->customer_id);
            if (in->subscription_id) db_bind_int(s, 2, in->subscription_id);
            else db_bind_null(s, 2);
            db_bind_text(s, 3, in->period_from);
            db_bind_text(s, 4, in->period_to);
            db_bind_text(s, 5, in->issue_date);
            db_bind_text(s, 6, in->due_date);
            db_bind_int(s, 7, t.net);
            db_bind_int(s, 8, t.tax);
            db_bind_int(s, 9, t.gross);
            db_bind_text(s, 10, in->rules_version);
            if (in->bill_run_id) db_bind_int(s, 11, in->bill_run_id);
            else db_bind_null(s, 11);
            db_bind_text(s, 12, now);
            db_bind_text(s, 13, in->by);
            db_bind_text(s, 14, refs);
            rc = db_step(d, s, e);
            db_done(s);
            if (rc == DB_DONE) rc = 0;
            else if (rc == ERR_CONFLICT) rc = explain_conflict(d, in->subscription_id, in->period_from, e);
            else if (rc >= 0) rc = err_set(e, ERR_INTERNAL, "invoice insert returned a row");
        }
    }
    jw_free(&w);
    int64_t new_id = 0;
    if (!rc) {
        new_id = db_last_id(d);
        rc = insert_lines(d, new_id, in->lines, in->nlines, NULL, e);
    }
    if (!rc) rc = db_commit(d, e);
    else if (db_in_tx(d)) db_rollback(d);
    if (!rc && id) *id = new_id;
    return rc;
}

int invoices_finalize(db *d, const vault *v, int64_t id, const char *issue_date, const char *by, char number[INVOICE_NUMBER_MAX],
                      err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices need the caller's transaction");
    if (!text_set(by)) return err_set(e, ERR_INTERNAL, "invoices: who issues is not said");
    db_stmt *s = db_prepare(d,
                            "SELECT customer_id, subscription_id, period_from, period_to, issue_date, due_date, status, draft_refs "
                            "FROM invoices WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_field(e, ERR_NOTFOUND, "not_found", "id", "no invoice %lld", (long long)id);
    }
    jv_arena a;
    jv_arena_init(&a, 0);
    issue_in x = {.id = id, .customer_id = db_col_int(s, 0), .subscription_id = db_col_int(s, 1), .by = by};
    char from[11] = "", to[11] = "", issue[11], due[11], status[16];
    snprintf(from, sizeof from, "%s", db_col_text(s, 2));
    snprintf(to, sizeof to, "%s", db_col_text(s, 3));
    snprintf(issue, sizeof issue, "%s", issue_date ? issue_date : db_col_text(s, 4));
    snprintf(due, sizeof due, "%s", db_col_text(s, 5));
    snprintf(status, sizeof status, "%s", db_col_text(s, 6));
    jv *refs = NULL;
    const char *rt = db_col_text(s, 7);
    if (rt[0] && json_parse(rt, strlen(rt), NULL, &a, &refs, e)) refs = NULL;
    db_done(s);
    err_clear(e);
    x.period_from = from[0] ? from : NULL;
    x.period_to = to[0] ? to : NULL;
    x.issue_date = issue;
    x.due_date = due;
    if (strcmp(status, "draft")) {
        jv_arena_free(&a);
        return err_field(e, ERR_CONFLICT, "not_a_draft", "id", "invoice %lld is %s, not a draft", (long long)id, status);
    }
    if (!date_ok(issue)) {
        jv_arena_free(&a);
        return err_field(e, ERR_INVALID, "invalid_date", "issue_date", "issue_date must be a date YYYY-MM-DD");
    }
    if (strcmp(due, issue) < 0) {
        jv_arena_free(&a);
        return err_field(e, ERR_INVALID, "invalid_date", "issue_date", "the draft is due on %s, before %s", due, issue);
    }
    /* the draft's lines, as invoice_new had them */
    int64_t nl = 0;
    rc = db_get_int(d, e, &nl, "SELECT COUNT(*) FROM invoice_lines WHERE invoice_id = ?", "i", id);
    invoice_line_in *lines = NULL;
    if (!rc && nl > 0 && !(lines = jv_alloc(&a, (size_t)nl * sizeof *lines))) rc = ERR_NOMEM_RET(e);
    size_t n = 0;
    if (!rc) {
        s = db_prepare(d,
                       "SELECT kind, amount, tax, pending_charge_id, deposit_id FROM invoice_lines WHERE invoice_id = ? ORDER BY seq", e);
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, id);
            while (n < (size_t)nl && (rc = db_step(d, s, e)) == DB_ROW) {
                invoice_line_in *l = &lines[n++];
                memset(l, 0, sizeof *l);
                l->kind = jv_strdup(&a, db_col_text(s, 0), strlen(db_col_text(s, 0)));
                l->amount = db_col_int(s, 1);
                l->tax = db_col_int(s, 2);
                l->pending_charge_id = db_col_int(s, 3);
                l->deposit_id = db_col_int(s, 4);
                if (!l->kind) {
                    rc = ERR_NOMEM_RET(e);
                    break;
                }
                if (!strcmp(l->kind, "credit")) {
                    if (!x.t.credit) x.t.first_credit = n - 1;
                    x.t.credit -= l->amount;
                } else {
                    x.t.gross += l->amount;
                    x.t.tax += l->tax;
                }
            }
            db_done(s);
            if (rc > 0) rc = 0;
        }
    }
    x.lines = lines;
    x.nlines = n;
    x.t.net = x.t.gross - x.t.tax;
    /* its changes and billed_through */
    const jv *ch = refs ? jv_get(refs, "changes") : NULL;
    int64_t *cids = NULL;
    if (!rc && ch && jv_len(ch) && !(cids = jv_alloc(&a, jv_len(ch) * sizeof *cids))) rc = ERR_NOMEM_RET(e);
    for (size_t i = 0; !rc && ch && i < jv_len(ch); i++)
        if (jv_at(ch, i)->kind == JV_INT) cids[x.nchanges++] = jv_at(ch, i)->u.i;
    x.change_ids = cids;
    const jv *bt = refs ? jv_get(refs, "billed_through") : NULL;
    x.billed_through = bt && bt->kind == JV_STR ? bt->u.str.s : NULL;
    if (!rc) rc = credit_available_ok(d, x.customer_id, &x.t, e);
    invoice_prep p = {0};
    char num[INVOICE_NUMBER_MAX];
    if (!rc) rc = db_begin(d, e);
    else {
        jv_arena_free(&a);
        return rc;
    }
    if (!rc) rc = prep_read(d, v, &x, &p, e);
    if (!rc) rc = take_number(d, g_invoice_prefix, issue, num, e);
    if (!rc) {
        char now[25];
        db_now(now);
        rc = db_run(d, e,
                    "UPDATE invoices SET number = ?, status = ?, issue_date = ?, paid = ?, bill_to = ?, finalized_at = ?, "
                    "prev_billed_through = ?, prev_next_bill_date = ?, draft_refs = NULL WHERE id = ? AND status = 'draft'",
                    "sssissssi", num, status_of(x.t.gross, x.t.credit, 0, 0), issue, x.t.credit, buf_cstr(&p.bill_to), now,
                    p.moves_sub && p.have_prev_billed ? p.prev_billed_through : NULL, p.moves_sub ? p.prev_next_bill_date : NULL, id);
    }
    if (!rc) rc = issue_effects(d, &x, &p, num, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    if (!rc && number) snprintf(number, INVOICE_NUMBER_MAX, "%s", num);
    invoices_prep_free(&p);
    jv_arena_free(&a);
    return rc;
}

/* ------------------------------------------------------------ settling */

typedef struct inv_row {
    int64_t id, customer_id, subscription_id;
    int64_t gross, paid, credited, written_off;
    char number[INVOICE_NUMBER_MAX];
    char status[16];
    char period_from[11];
    char prev_billed_through[11];
    int have_prev_billed, have_prev_next;
    char prev_next_bill_date[11];
} inv_row;

static int load_row(db *d, int64_t id, inv_row *r, err *e)
{
    memset(r, 0, sizeof *r);
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, subscription_id, gross, paid, credited, written_off, number, status, period_from, "
                            "prev_billed_through, prev_next_bill_date FROM invoices WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        r->id = db_col_int(s, 0);
        r->customer_id = db_col_int(s, 1);
        r->subscription_id = db_col_int(s, 2);
        r->gross = db_col_int(s, 3);
        r->paid = db_col_int(s, 4);
        r->credited = db_col_int(s, 5);
        r->written_off = db_col_int(s, 6);
        snprintf(r->number, sizeof r->number, "%s", db_col_is_null(s, 7) ? "(draft)" : db_col_text(s, 7));
        snprintf(r->status, sizeof r->status, "%s", db_col_text(s, 8));
        snprintf(r->period_from, sizeof r->period_from, "%s", db_col_text(s, 9));
        r->have_prev_billed = !db_col_is_null(s, 10);
        snprintf(r->prev_billed_through, sizeof r->prev_billed_through, "%s", db_col_text(s, 10));
        r->have_prev_next = !db_col_is_null(s, 11);
        snprintf(r->prev_next_bill_date, sizeof r->prev_next_bill_date, "%s", db_col_text(s, 11));
    }
    db_done(s);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_field(e, ERR_NOTFOUND, "not_found", "number", "no invoice %lld", (long long)id);
    return 0;
}

static int64_t left_of(const inv_row *r) { return r->gross - r->paid - r->credited - r->written_off; }

static int must_be_issued(const inv_row *r, const char *what, err *e)
{
    if (!strcmp(r->status, "draft")) return err_field(e, ERR_CONFLICT, "not_issued", "number", "a draft cannot be %s: issue it first", what);
    if (!strcmp(r->status, "void")) return err_field(e, ERR_CONFLICT, "invoice_void", "number", "invoice %s is void: it cannot be %s", r->number, what);
    return 0;
}

int invoices_allocate(db *d, int64_t invoice_id, int64_t payment_id, int64_t amount, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices_allocate needs the caller's transaction");
    if (amount <= 0) return err_field(e, ERR_INVALID, "invalid_field", "amount", "an allocation is more than 0");
    inv_row r;
    int rc = load_row(d, invoice_id, &r, e);
    if (!rc) rc = must_be_issued(&r, "paid", e);
    if (rc) return rc;
    char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
    if (amount > left_of(&r)) {
        fmt_money(amount, a1);
        fmt_money(left_of(&r), a2);
        return err_field(e, ERR_CONFLICT, "over_allocation", "amount", "%s is more than is left to pay of %s (%s)", a1, r.number, a2);
    }
    if (payment_id) {
        db_stmt *s = db_prepare(d,
                                "SELECT p.customer_id, p.amount - p.refunded - "
                                "(SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE payment_id = p.id AND reversed_at IS NULL) "
                                "FROM payments p WHERE p.id = ?",
                                e);
        if (!s) return e->code;
        db_bind_int(s, 1, payment_id);
        int r2 = db_step(d, s, e);
        int64_t owner = r2 == DB_ROW ? db_col_int(s, 0) : 0, free_ = r2 == DB_ROW ? db_col_int(s, 1) : 0;
        db_done(s);
        if (r2 < 0) return r2;
        if (owner != r.customer_id)
            return err_field(e, ERR_INVALID, "invalid_field", "payment", "payment %lld is not a payment of this invoice's customer", (long long)payment_id);
        if (amount > free_) {
            fmt_money(amount, a1);
            fmt_money(free_, a2);
            return err_field(e, ERR_CONFLICT, "over_allocation", "amount", "%s is more than is left of payment %lld (%s)", a1, (long long)payment_id, a2);
        }
    } else {
        ledger_balance b;
        if ((rc = ledger_balance_of(d, r.customer_id, &b, e))) return rc;
        if (amount > b.credit) {
            fmt_money(amount, a1);
            fmt_money(b.credit, a2);
            return err_field(e, ERR_CONFLICT, "credit_exceeded", "amount", "%s is more than the customer's credit (%s)", a1, a2);
        }
    }
    char now[25];
    db_now(now);
    if (payment_id) rc = db_run(d, e, "INSERT INTO allocations (invoice_id, payment_id, amount, created_at) VALUES (?, ?, ?, ?)", "iiis",
                                invoice_id, payment_id, amount, now);
    else rc = db_run(d, e, "INSERT INTO allocations (invoice_id, payment_id, amount, created_at) VALUES (?, NULL, ?, ?)", "iis",
                     invoice_id, amount, now);
    if (!rc)
        rc = db_run(d, e, "UPDATE invoices SET paid = paid + ?, status = ? WHERE id = ?", "isi", amount,
                    status_of(r.gross, r.paid + amount, r.credited, r.written_off), invoice_id);
    return rc;
}

/* ---------------------------------------------------------------- voids */

int invoices_void(db *d, int64_t id, const char *reason, const char *by, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices_void needs the caller's transaction");
    if (!text_set(reason)) return err_field(e, ERR_INVALID, "missing_field", "reason", "a void needs a reason");
    if (strlen(reason) > REASON_MAX) return err_field(e, ERR_INVALID, "invalid_field", "reason", "a reason is at most %d bytes", REASON_MAX);
    if (!text_set(by)) return err_set(e, ERR_INTERNAL, "invoices_void: who voids is not said");
    inv_row r;
    int rc = load_row(d, id, &r, e);
    if (!rc && !strcmp(r.status, "void")) return err_field(e, ERR_CONFLICT, "invoice_void", "number", "invoice %s is void already", r.number);
    if (!rc) rc = must_be_issued(&r, "voided", e);
    if (rc) return rc;
    /* anything that settled it stays true history: a credit note, a
     * payment, credit applied, a write-off; correct with a credit note */
    int64_t allocs = 0, notes = 0, settled_deposits = 0;
    rc = db_get_int(d, e, &allocs, "SELECT COUNT(*) FROM allocations WHERE invoice_id = ? AND reversed_at IS NULL", "i", id);
    if (!rc) rc = db_get_int(d, e, &notes, "SELECT COUNT(*) FROM credit_notes WHERE invoice_id = ?", "i", id);
    if (!rc)
        rc = db_get_int(d, e, &settled_deposits,
                        "SELECT COUNT(*) FROM invoice_lines l JOIN deposits dp ON dp.id = l.deposit_id "
                        "WHERE l.invoice_id = ? AND dp.status <> 'held'",
                        "i", id);
    if (rc) return rc;
    if (r.paid || allocs) {
        char p[MONEY_FMT_MAX];
        fmt_money(r.paid, p);
        return err_field(e, ERR_CONFLICT, "invoice_settled", "number", "invoice %s has %s paid on it: it cannot be voided (issue a credit note)",
                         r.number, p);
    }
    if (r.credited || notes)
        return err_field(e, ERR_CONFLICT, "invoice_settled", "number", "invoice %s has a credit note: it cannot be voided", r.number);
    if (r.written_off) return err_field(e, ERR_CONFLICT, "invoice_settled", "number", "invoice %s is written off: it cannot be voided", r.number);
    if (settled_deposits)
        return err_field(e, ERR_CONFLICT, "deposit_settled", "number", "a deposit billed by invoice %s is settled: it cannot be voided", r.number);
    /* the subscription can only go back to where its latest bill found it:
     * an earlier bill voided would leave its period unbilled for ever */
    if (r.subscription_id && r.period_from[0]) {
        int64_t later = 0;
        rc = db_get_int(d, e, &later,
                        "SELECT COUNT(*) FROM invoices WHERE subscription_id = ? AND status <> 'void' AND period_from > ?", "is",
                        r.subscription_id, r.period_from);
        if (rc) return rc;
        if (later)
            return err_field(e, ERR_CONFLICT, "not_latest", "number",
                             "invoice %s is not its subscription's latest bill: void only the subscription's latest bill; "
                             "correct this one with a credit note", r.number);
    }
    char day[11], now[25];
    today(day);
    db_now(now);
    rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e, "UPDATE invoices SET status = 'void', voided_at = ?, voided_on = ?, void_reason = ? WHERE id = ? AND status = 'open'",
                "sssi", now, day, reason, id);
    if (!rc && db_changes(d) != 1) rc = err_field(e, ERR_CONFLICT, "invoice_settled", "number", "invoice %s changed meanwhile", r.number);
    if (!rc && r.gross) {
        ledger_entry le = {.customer_id = r.customer_id, .kind = "invoice", .amount = -r.gross, .entry_date = day, .invoice_id = id,
                           .reason = reason, .by = by, .reversal = 1};
        rc = ledger_post(d, &le, NULL, e);
    }
    /* what it billed is free again for the next bill */
    if (!rc) {
        db_stmt *s = db_prepare(d, "SELECT pending_charge_id, deposit_id, amount FROM invoice_lines WHERE invoice_id = ? "
                                   "AND (pending_charge_id IS NOT NULL OR deposit_id IS NOT NULL) ORDER BY seq", e);
        int64_t (*refs)[3] = NULL;
        size_t n = 0, cap = 0;
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, id);
            int r2;
            while ((r2 = db_step(d, s, e)) == DB_ROW) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    void *np = realloc(refs, nc * sizeof *refs);
                    if (!np) {
                        r2 = ERR_NOMEM_RET(e);
                        break;
                    }
                    refs = np;
                    cap = nc;
                }
                refs[n][0] = db_col_int(s, 0);
                refs[n][1] = db_col_int(s, 1);
                refs[n][2] = db_col_int(s, 2);
                n++;
            }
            db_done(s);
            if (r2 < 0) rc = r2;
        }
        for (size_t i = 0; i < n && !rc; i++) {
            if (refs[i][0])
                rc = db_run(d, e, "UPDATE pending_charges SET invoice_id = NULL, billed_on = NULL WHERE id = ? AND invoice_id = ?", "ii",
                            refs[i][0], id);
            if (!rc && refs[i][1]) {
                rc = db_run(d, e, "UPDATE deposits SET invoice_id = NULL WHERE id = ? AND invoice_id = ?", "ii", refs[i][1], id);
                ledger_entry le = {.customer_id = r.customer_id, .account = "deposit", .kind = "deposit_held", .amount = -refs[i][2],
                                   .entry_date = day, .invoice_id = id, .deposit_id = refs[i][1], .reason = reason, .by = by,
                                   .reversal = 1};
                if (!rc && refs[i][2]) rc = ledger_post(d, &le, NULL, e);
            }
        }
        free(refs);
    }
    if (!rc && r.subscription_id) {
        rc = db_run(d, e, "UPDATE subscription_changes SET invoice_id = NULL WHERE subscription_id = ? AND invoice_id = ?", "ii",
                    r.subscription_id, id);
        /* the subscription goes back to where this bill found it, when it
         * was its latest: the period is then billed again */
        int64_t later = 0;
        if (!rc && r.have_prev_next)
            rc = db_get_int(d, e, &later,
                            "SELECT COUNT(*) FROM invoices WHERE subscription_id = ? AND status <> 'void' AND period_from > ?", "is",
                            r.subscription_id, r.period_from);
        if (!rc && r.have_prev_next && !later)
            rc = db_run(d, e, "UPDATE subscriptions SET billed_through = ?, next_bill_date = ? WHERE id = ?", "ssi",
                        r.have_prev_billed ? r.prev_billed_through : NULL, r.prev_next_bill_date, r.subscription_id);
    }
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    return rc;
}

/* ------------------------------------------------------------- write-off */

int invoices_write_off(db *d, int64_t id, const char *reason, const char *entry_date, const char *by, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices_write_off needs the caller's transaction");
    if (!text_set(reason)) return err_field(e, ERR_INVALID, "missing_field", "reason", "a write-off needs a reason");
    if (strlen(reason) > REASON_MAX) return err_field(e, ERR_INVALID, "invalid_field", "reason", "a reason is at most %d bytes", REASON_MAX);
    if (!date_ok(entry_date)) return err_field(e, ERR_INVALID, "invalid_date", "date", "the write-off date must be a date YYYY-MM-DD");
    if (!text_set(by)) return err_set(e, ERR_INTERNAL, "invoices_write_off: who writes off is not said");
    inv_row r;
    int rc = load_row(d, id, &r, e);
    if (!rc) rc = must_be_issued(&r, "written off", e);
    if (rc) return rc;
    int64_t left = left_of(&r);
    if (left <= 0)
        return err_field(e, ERR_CONFLICT, "nothing_to_write_off", "number", "nothing is left to pay of invoice %s (%s)", r.number, r.status);
    rc = db_begin(d, e);
    if (rc) return rc;
    rc = db_run(d, e, "UPDATE invoices SET written_off = written_off + ?, status = 'written_off', written_off_on = ? WHERE id = ?",
                "isi", left, entry_date, id);
    ledger_entry le = {.customer_id = r.customer_id, .kind = "write_off", .amount = -left, .entry_date = entry_date, .invoice_id = id,
                       .reason = reason, .by = by};
    if (!rc) rc = ledger_post(d, &le, NULL, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    return rc;
}

/* ----------------------------------------------------------- credit notes */

typedef struct cline {
    int64_t id, seq, amount, tax, rate, credited, credited_tax;
    char kind[16];
    int64_t give, give_tax;   /* what this note gives back of it */
} cline;

/* Takes back `excess` of what settled the invoice, newest allocation first:
 * each is marked reversed, and what stays of a partly reversed one is a
 * new allocation. The money goes back to the customer's credit. */
static int give_back(db *d, int64_t invoice_id, int64_t excess, const char *note_number, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT id, payment_id, amount FROM allocations WHERE invoice_id = ? AND reversed_at IS NULL ORDER BY id DESC", e);
    if (!s) return e->code;
    db_bind_int(s, 1, invoice_id);
    int64_t (*al)[3] = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *np = realloc(al, nc * sizeof *al);
            if (!np) {
                rc = ERR_NOMEM_RET(e);
                break;
            }
            al = np;
            cap = nc;
        }
        al[n][0] = db_col_int(s, 0);
        al[n][1] = db_col_int(s, 1);
        al[n][2] = db_col_int(s, 2);
        n++;
    }
    db_done(s);
    rc = rc < 0 ? rc : 0;
    char now[25];
    db_now(now);
    for (size_t i = 0; i < n && excess > 0 && !rc; i++) {
        int64_t take = al[i][2] < excess ? al[i][2] : excess;
        char why[160], amt[MONEY_FMT_MAX];
        fmt_money(take, amt);
        snprintf(why, sizeof why, "credit note %s gave %s back to the customer's credit", note_number, amt);
        rc = db_run(d, e, "UPDATE allocations SET reversed_at = ?, reason = ? WHERE id = ?", "ssi", now, why, al[i][0]);
        if (!rc && take < al[i][2]) {
            snprintf(why, sizeof why, "what stays of allocation %lld after credit note %s", (long long)al[i][0], note_number);
            if (al[i][1])
                rc = db_run(d, e, "INSERT INTO allocations (invoice_id, payment_id, amount, created_at, reason) VALUES (?, ?, ?, ?, ?)",
                            "iiiss", invoice_id, al[i][1], al[i][2] - take, now, why);
            else
                rc = db_run(d, e, "INSERT INTO allocations (invoice_id, payment_id, amount, created_at, reason) VALUES (?, NULL, ?, ?, ?)",
                            "iiss", invoice_id, al[i][2] - take, now, why);
        }
        excess -= take;
    }
    free(al);
    if (!rc && excess > 0) rc = err_set(e, ERR_INTERNAL, "credit note %s: %lld fen paid could not be given back", note_number, (long long)excess);
    return rc;
}

int invoices_credit(db *d, int64_t invoice_id, const credit_line_in *lines, size_t nlines, const char *reason,
                    const char *issue_date, const char *by, int64_t *id, char number[INVOICE_NUMBER_MAX], err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "invoices_credit needs the caller's transaction");
    if (!text_set(reason)) return err_field(e, ERR_INVALID, "missing_field", "reason", "a credit note needs a reason");
    if (strlen(reason) > REASON_MAX) return err_field(e, ERR_INVALID, "invalid_field", "reason", "a reason is at most %d bytes", REASON_MAX);
    if (!date_ok(issue_date)) return err_field(e, ERR_INVALID, "invalid_date", "issue_date", "issue_date must be a date YYYY-MM-DD");
    if (!text_set(by)) return err_set(e, ERR_INTERNAL, "invoices_credit: who credits is not said");
    inv_row r;
    int rc = load_row(d, invoice_id, &r, e);
    if (!rc) rc = must_be_issued(&r, "credited", e);
    if (rc) return rc;

    /* the invoice's lines with what earlier notes gave back of each */
    int64_t nl = 0;
    rc = db_get_int(d, e, &nl, "SELECT COUNT(*) FROM invoice_lines WHERE invoice_id = ?", "i", invoice_id);
    if (rc) return rc;
    cline *cl = calloc(nl ? (size_t)nl : 1, sizeof *cl);
    if (!cl) return ERR_NOMEM_RET(e);
    size_t n = 0;
    db_stmt *s = db_prepare(d,
                            "SELECT l.id, l.seq, l.kind, l.amount, l.tax, l.tax_rate, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM credit_note_lines WHERE invoice_line_id = l.id), "
                            "(SELECT COALESCE(SUM(tax), 0) FROM credit_note_lines WHERE invoice_line_id = l.id) "
                            "FROM invoice_lines l WHERE l.invoice_id = ? ORDER BY l.seq",
                            e);
    if (!s) rc = e->code;
    else {
        db_bind_int(s, 1, invoice_id);
        while (n < (size_t)nl && (rc = db_step(d, s, e)) == DB_ROW) {
            cline *c = &cl[n++];
            c->id = db_col_int(s, 0);
            c->seq = db_col_int(s, 1);
            snprintf(c->kind, sizeof c->kind, "%s", db_col_text(s, 2));
            c->amount = db_col_int(s, 3);
            c->tax = db_col_int(s, 4);
            c->rate = db_col_int(s, 5);
            c->credited = db_col_int(s, 6);
            c->credited_tax = db_col_int(s, 7);
        }
        db_done(s);
        rc = rc < 0 ? rc : 0;
    }
    int64_t gross = 0, tax = 0;
    for (size_t i = 0; !rc && i < nlines; i++) {
        cline *c = NULL;
        for (size_t k = 0; k < n; k++)
            if (cl[k].id == lines[i].invoice_line_id) c = &cl[k];
        if (!c) {
            rc = line_err(e, ERR_INVALID, "invalid_field", i, "line", "not a line of invoice %s", r.number);
            break;
        }
        int64_t left = c->amount - c->credited;
        if (!strcmp(c->kind, "credit")) rc = line_err(e, ERR_INVALID, "invalid_field", i, "line", "line %lld shows credit applied: it is not credited", (long long)c->seq);
        else if (c->give) rc = line_err(e, ERR_INVALID, "duplicate", i, "line", "line %lld is named twice", (long long)c->seq);
        else if (lines[i].amount == 0) rc = line_err(e, ERR_INVALID, "invalid_field", i, "amount", "a credit of 0 gives nothing back");
        else if ((lines[i].amount > 0) != (c->amount > 0))
            rc = line_err(e, ERR_INVALID, "invalid_field", i, "amount", "line %lld is %s: its credit has the same sign", (long long)c->seq,
                          c->amount > 0 ? "a charge" : "a reduction");
        else if ((left >= 0 && lines[i].amount > left) || (left < 0 && lines[i].amount < left)) {
            char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
            fmt_money(lines[i].amount, a1);
            fmt_money(left, a2);
            rc = line_err(e, ERR_INVALID, "over_credit", i, "amount", "%s is more than is left of line %lld (%s)", a1, (long long)c->seq, a2);
        }
        if (rc) break;
        c->give = lines[i].amount;
    }
    if (!rc && nlines == 0)
        for (size_t k = 0; k < n; k++)
            if (strcmp(cl[k].kind, "credit")) cl[k].give = cl[k].amount - cl[k].credited;
    /* tax at each line's rate, half up; what completes a line gives back
     * exactly the tax left on it, so a line credited in full returns its
     * tax to the fen */
    for (size_t k = 0; !rc && k < n; k++) {
        cline *c = &cl[k];
        if (!c->give) continue;
        if (c->give == c->amount - c->credited) c->give_tax = c->tax - c->credited_tax;
        else rc = money_ratio(c->give, c->rate, 100 + c->rate, ROUND_HALF_UP, &c->give_tax, e);
        gross += c->give;
        tax += c->give_tax;
    }
    if (!rc && gross <= 0) {
        char g[MONEY_FMT_MAX];
        fmt_money(gross, g);
        rc = err_field(e, ERR_INVALID, nlines ? "invalid_field" : "nothing_to_credit", "lines",
                       "the credit note would give back %s: it must give back more than 0", g);
    }
    if (!rc && gross > r.gross - r.credited - r.written_off) {
        char g[MONEY_FMT_MAX], w[MONEY_FMT_MAX];
        fmt_money(gross, g);
        fmt_money(r.written_off, w);
        rc = err_field(e, ERR_CONFLICT, "over_credit", "lines", "%s is more than can be credited: %s of invoice %s is written off", g, w,
                       r.number);
    }
    char num[INVOICE_NUMBER_MAX] = "";
    int64_t note_id = 0;
    int began = 0;
    if (!rc && !(rc = db_begin(d, e))) began = 1;
    if (!rc) rc = take_number(d, g_credit_prefix, issue_date, num, e);
    if (!rc) {
        char now[25];
        db_now(now);
        rc = db_run(d, e,
                    "INSERT INTO credit_notes (number, invoice_id, customer_id, reason, net, tax, gross, issue_date, created_at, created_by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "siisiiisss", num, invoice_id, r.customer_id, reason, gross - tax, tax, gross, issue_date, now, by);
        note_id = db_last_id(d);
    }
    for (size_t k = 0; !rc && k < n; k++)
        if (cl[k].give)
            rc = db_run(d, e, "INSERT INTO credit_note_lines (credit_note_id, invoice_line_id, amount, tax, net) VALUES (?, ?, ?, ?, ?)",
                        "iiiii", note_id, cl[k].id, cl[k].give, cl[k].give_tax, cl[k].give - cl[k].give_tax);
    free(cl);
    if (!rc) {
        ledger_entry le = {.customer_id = r.customer_id, .kind = "credit_note", .amount = -gross, .entry_date = issue_date,
                           .credit_note_id = note_id, .reason = reason, .by = by};
        rc = ledger_post(d, &le, NULL, e);
    }
    if (!rc) {
        /* paid beyond what is now left to pay goes back to credit */
        int64_t excess = r.paid + r.credited + gross + r.written_off - r.gross;
        if (excess > 0) rc = give_back(d, invoice_id, excess, num, e);
        int64_t paid = excess > 0 ? r.paid - excess : r.paid;
        if (!rc)
            rc = db_run(d, e, "UPDATE invoices SET credited = credited + ?, paid = ?, status = ? WHERE id = ?", "iisi", gross, paid,
                        status_of(r.gross, paid, r.credited + gross, r.written_off), invoice_id);
    }
    /* a bill credited to nothing owed no longer holds the customer */
    if (!rc) rc = dunning_release(d, r.customer_id, "credited", NULL, 0, NULL, e);
    if (began) {
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
    }
    if (!rc) {
        if (id) *id = note_id;
        if (number) snprintf(number, INVOICE_NUMBER_MAX, "%s", num);
    }
    return rc;
}

/* ------------------------------------------------------------------ reads */

int invoices_id_by_number(db *d, const char *number, int64_t *id, err *e)
{
    if (!number || !*number || strlen(number) >= INVOICE_NUMBER_MAX)
        return err_field(e, ERR_NOTFOUND, "not_found", "number", "no invoice %s", number ? number : "");
    int rc = db_get_int(d, e, id, "SELECT id FROM invoices WHERE number = ?", "s", number);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "number", "no invoice %s", number);
    return rc;
}

int invoices_credit_note_id_by_number(db *d, const char *number, int64_t *id, err *e)
{
    if (!number || !*number || strlen(number) >= INVOICE_NUMBER_MAX)
        return err_field(e, ERR_NOTFOUND, "not_found", "number", "no credit note %s", number ? number : "");
    int rc = db_get_int(d, e, id, "SELECT id FROM credit_notes WHERE number = ?", "s", number);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "number", "no credit note %s", number);
    return rc;
}

int invoices_line_id(db *d, int64_t invoice_id, int64_t seq, const char *field, int64_t *line_id, err *e)
{
    int rc = db_get_int(d, e, line_id, "SELECT id FROM invoice_lines WHERE invoice_id = ? AND seq = ?", "ii", invoice_id, seq);
    if (rc == ERR_NOTFOUND)
        return err_field(e, ERR_INVALID, "invalid_field", field ? field : "line", "%s%sthe invoice has no line %lld", field ? field : "",
                         field ? ": " : "", (long long)seq);
    return rc;
}

/* Copies the bill_to snapshot's members to the top of o: customer_name,
 * service_address and billing_address are what the "invoice" field
 * filter masks. */
static int add_bill_to(jv_arena *a, jv *o, const char *text)
{
    jv *bt = NULL;
    err e;
    static const char *const keys[] = {"customer_name", "company_name", "tax_id", "service_address", "billing_address"};
    if (text && text[0] && json_parse(text, strlen(text), NULL, a, &bt, &e)) bt = NULL;
    for (int k = 0; k < 5; k++) {
        const jv *v = bt ? jv_get(bt, keys[k]) : NULL;
        if (jv_obj_set(a, o, keys[k], v ? (jv *)v : jv_null(a))) return ERR_NOMEM;
    }
    return 0;
}

/* columns of INVOICE_SELECT, shared by get and list */
#define INVOICE_COLS                                                                                                         \
    "i.id, i.number, c.code, i.subscription_id, i.period_from, i.period_to, i.status, i.issue_date, i.due_date, i.currency, " \
    "i.net, i.tax, i.gross, i.paid, i.credited, i.written_off, i.rules_version, i.bill_run_id, i.bill_to, i.created_at, "     \
    "i.created_by, i.finalized_at, i.voided_at, i.voided_on, i.void_reason, i.written_off_on"

static int invoice_head(db_stmt *s, jv_arena *a, jv **out)
{
    jv *o = jv_obj_sized(a, 40);
    if (!o) return ERR_NOMEM;
    char draft[32];
    snprintf(draft, sizeof draft, "draft-%lld", (long long)db_col_int(s, 0));
    int64_t gross = db_col_int(s, 12), paid = db_col_int(s, 13), cred = db_col_int(s, 14), wo = db_col_int(s, 15);
    int isvoid = !strcmp(db_col_text(s, 6), "void");
    jv *period = period_jv(a, s, 4, 5);
    jv *tot = jv_obj_sized(a, 3);
    int bad = !period || !tot || jv_obj_set(a, o, "id", db_col_is_null(s, 1) ? jv_str(a, draft) : jv_str(a, db_col_text(s, 1))) ||
              jv_obj_set(a, o, "number", text_or_null(a, s, 1)) || jv_obj_set(a, o, "customer", jv_str(a, db_col_text(s, 2))) ||
              jv_obj_set(a, o, "subscription_id", int_or_null(a, s, 3)) || jv_obj_set(a, o, "period", period) ||
              jv_obj_set(a, o, "status", jv_str(a, db_col_text(s, 6))) || jv_obj_set(a, o, "issue_date", text_or_null(a, s, 7)) ||
              jv_obj_set(a, o, "due_date", text_or_null(a, s, 8)) || jv_obj_set(a, o, "currency", jv_str(a, db_col_text(s, 9))) ||
              jv_obj_set_int(a, o, "net", db_col_int(s, 10)) || jv_obj_set_int(a, o, "tax", db_col_int(s, 11)) ||
              jv_obj_set_int(a, o, "gross", gross) || jv_obj_set_int(a, tot, "net", db_col_int(s, 10)) ||
              jv_obj_set_int(a, tot, "tax", db_col_int(s, 11)) || jv_obj_set_int(a, tot, "gross", gross) ||
              jv_obj_set(a, o, "totals", tot) || jv_obj_set_int(a, o, "paid", paid) ||
              jv_obj_set_int(a, o, "credited", cred) || jv_obj_set_int(a, o, "written_off", wo) ||
              jv_obj_set_int(a, o, "balance_due", isvoid ? 0 : gross - paid - cred - wo) ||
              jv_obj_set(a, o, "rules_version", jv_str(a, db_col_text(s, 16))) || jv_obj_set(a, o, "bill_run_id", int_or_null(a, s, 17)) ||
              add_bill_to(a, o, db_col_text(s, 18)) || jv_obj_set(a, o, "created_at", jv_str(a, db_col_text(s, 19))) ||
              jv_obj_set(a, o, "created_by", jv_str(a, db_col_text(s, 20))) || jv_obj_set(a, o, "finalized_at", text_or_null(a, s, 21)) ||
              jv_obj_set(a, o, "voided_at", text_or_null(a, s, 22)) || jv_obj_set(a, o, "voided_on", text_or_null(a, s, 23)) ||
              jv_obj_set(a, o, "void_reason", text_or_null(a, s, 24)) || jv_obj_set(a, o, "written_off_on", text_or_null(a, s, 25));
    if (bad) return ERR_NOMEM;
    *out = o;
    return 0;
}

static jv *detail_of(jv_arena *a, db_stmt *s, int i)
{
    if (db_col_is_null(s, i)) return jv_null(a);
    jv *v = NULL;
    err e;
    const char *t = db_col_text(s, i);
    if (json_parse(t, strlen(t), NULL, a, &v, &e)) return jv_str(a, t);
    return v;
}

static int invoice_lines_jv(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT l.seq, l.kind, l.description, l.product_code, l.product_version, l.quantity, l.unit_price, l.amount, "
                            "l.tax_category, l.tax_rate, l.tax, l.net, l.period_from, l.period_to, l.step, l.rule, l.detail, "
                            "l.pending_charge_id, l.deposit_id, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM credit_note_lines WHERE invoice_line_id = l.id) "
                            "FROM invoice_lines l WHERE l.invoice_id = ? ORDER BY l.seq",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 20), *period = period_jv(a, s, 12, 13);
        if (!x || !period || jv_obj_set_int(a, x, "seq", db_col_int(s, 0)) || jv_obj_set(a, x, "kind", jv_str(a, db_col_text(s, 1))) ||
            jv_obj_set(a, x, "description", jv_str(a, db_col_text(s, 2))) || jv_obj_set(a, x, "product", text_or_null(a, s, 3)) ||
            jv_obj_set(a, x, "product_version", int_or_null(a, s, 4)) || jv_obj_set_int(a, x, "quantity", db_col_int(s, 5)) ||
            jv_obj_set_int(a, x, "unit_price", db_col_int(s, 6)) || jv_obj_set_int(a, x, "amount", db_col_int(s, 7)) ||
            jv_obj_set(a, x, "tax_category", jv_str(a, db_col_text(s, 8))) || jv_obj_set_int(a, x, "tax_rate", db_col_int(s, 9)) ||
            jv_obj_set_int(a, x, "tax", db_col_int(s, 10)) || jv_obj_set_int(a, x, "net", db_col_int(s, 11)) ||
            jv_obj_set(a, x, "period", period) || jv_obj_set(a, x, "step", jv_str(a, db_col_text(s, 14))) ||
            jv_obj_set(a, x, "rule", jv_str(a, db_col_text(s, 15))) || jv_obj_set(a, x, "detail", detail_of(a, s, 16)) ||
            jv_obj_set(a, x, "charge_id", int_or_null(a, s, 17)) || jv_obj_set(a, x, "deposit_id", int_or_null(a, s, 18)) ||
            jv_obj_set_int(a, x, "credited", db_col_int(s, 19)) || jv_arr_push(a, list, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    *out = list;
    return 0;
}

int invoices_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT " INVOICE_COLS " FROM invoices i JOIN customers c ON c.id = i.customer_id WHERE i.id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    jv *o = NULL;
    if (rc == DB_ROW && invoice_head(s, a, &o)) rc = ERR_NOMEM_RET(e);
    db_done(s);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_field(e, ERR_NOTFOUND, "not_found", "number", "no invoice %lld", (long long)id);
    jv *lines = NULL, *allocs = jv_arr(a), *notes = jv_arr(a);
    if ((rc = invoice_lines_jv(d, id, a, &lines, e))) return rc;
    if (!allocs || !notes || jv_obj_set(a, o, "lines", lines) || jv_obj_set(a, o, "allocations", allocs) ||
        jv_obj_set(a, o, "credit_notes", notes))
        return ERR_NOMEM_RET(e);
    s = db_prepare(d, "SELECT id, payment_id, amount, created_at, reversed_at, reason FROM allocations WHERE invoice_id = ? ORDER BY id", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 7);
        if (!x || jv_obj_set_int(a, x, "id", db_col_int(s, 0)) || jv_obj_set(a, x, "payment_id", int_or_null(a, s, 1)) ||
            jv_obj_set(a, x, "source", jv_str(a, db_col_is_null(s, 1) ? "credit" : "payment")) ||
            jv_obj_set_int(a, x, "amount", db_col_int(s, 2)) || jv_obj_set(a, x, "created_at", jv_str(a, db_col_text(s, 3))) ||
            jv_obj_set(a, x, "reversed_at", text_or_null(a, s, 4)) || jv_obj_set(a, x, "reason", text_or_null(a, s, 5)) ||
            jv_arr_push(a, allocs, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d, "SELECT number, gross, issue_date, reason FROM credit_notes WHERE invoice_id = ? ORDER BY id", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 4);
        if (!x || jv_obj_set(a, x, "number", jv_str(a, db_col_text(s, 0))) || jv_obj_set_int(a, x, "gross", db_col_int(s, 1)) ||
            jv_obj_set(a, x, "issue_date", jv_str(a, db_col_text(s, 2))) || jv_obj_set(a, x, "reason", jv_str(a, db_col_text(s, 3))) ||
            jv_arr_push(a, notes, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    *out = o;
    return 0;
}

static int known_status(const char *s)
{
    static const char *const st[] = {"draft", "open", "partially_paid", "paid", "void", "written_off", NULL};
    for (const char *const *p = st; *p; p++)
        if (!strcmp(*p, s)) return 1;
    return 0;
}

static int invoice_row(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e)
{
    (void)ud;
    (void)d;
    return invoice_head(s, a, out) ? ERR_NOMEM_RET(e) : 0;
}

int invoices_list(db *d, int64_t customer_id, const char *status, const char *cursor, int64_t limit, jv_arena *a, jv **list,
                  char *next, size_t nnext, err *e)
{
    int64_t before;
    if (page_start(cursor, limit, &before, e)) return e->code;
    if (status && !known_status(status))
        return err_field(e, ERR_INVALID, "invalid_parameter", "status",
                         "unknown status '%s' (draft, open, partially_paid, paid, void, written_off)", status);
    /* one statement each, so that one customer's list walks its index */
    db_stmt *s = customer_id
                     ? db_prepare(d,
                                  "SELECT " INVOICE_COLS " FROM invoices i JOIN customers c ON c.id = i.customer_id "
                                  "WHERE i.customer_id = ? AND (? IS NULL OR i.status = ?) AND (? = 0 OR i.id < ?) "
                                  "ORDER BY i.id DESC LIMIT ?",
                                  e)
                     : db_prepare(d,
                                  "SELECT " INVOICE_COLS " FROM invoices i JOIN customers c ON c.id = i.customer_id "
                                  "WHERE ? = 0 AND (? IS NULL OR i.status = ?) AND (? = 0 OR i.id < ?) "
                                  "ORDER BY i.id DESC LIMIT ?",
                                  e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_text(s, 2, status);
    db_bind_text(s, 3, status);
    db_bind_int(s, 4, before);
    db_bind_int(s, 5, before);
    db_bind_int(s, 6, limit + 1);
    return page_collect(d, s, limit, invoice_row, NULL, a, list, next, nnext, e);
}

/* A rule's detail as one line of text: a reason first when it gives one,
 * then its other members as key=value. */
static void detail_text(const jv *dt, buf *b)
{
    if (!dt || dt->kind != JV_OBJ || !dt->u.obj.n) {
        buf_puts(b, "no further detail");
        return;
    }
    static const char *const first[] = {"reason", "why", "explanation", NULL};
    int any = 0;
    for (const char *const *k = first; *k; k++) {
        const jv *v = jv_get(dt, *k);
        if (v && v->kind == JV_STR) {
            buf_append(b, v->u.str.s, v->u.str.len);
            any = 1;
        }
    }
    for (size_t i = 0; i < dt->u.obj.n; i++) {
        const jv_member *m = &dt->u.obj.m[i];
        int skip = 0;
        for (const char *const *k = first; *k; k++)
            if (!strcmp(m->key, *k) && m->val->kind == JV_STR) skip = 1;
        if (skip) continue;
        buf_puts(b, any ? ", " : "");
        any = 1;
        buf_append(b, m->key, m->klen);
        buf_putc(b, '=');
        if (m->val->kind == JV_STR) buf_append(b, m->val->u.str.s, m->val->u.str.len);
        else json_write(b, m->val);
    }
}

int invoices_explain(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    jv *inv;
    int rc = invoices_get(d, id, a, &inv, e);
    if (rc) return rc;
    const jv *ver = jv_get(inv, "rules_version"), *lines = jv_get(inv, "lines"), *num = jv_get(inv, "id");
    jv *o = jv_obj_sized(a, 8), *xl = jv_arr(a), *text = jv_arr(a);
    if (!o || !xl || !text) return ERR_NOMEM_RET(e);
    buf b = {0};
    for (size_t i = 0; i < jv_len(lines); i++) {
        const jv *l = jv_at(lines, i);
        const jv *step = jv_get(l, "step"), *rule = jv_get(l, "rule"), *dt = jv_get(l, "detail");
        char amt[MONEY_FMT_MAX];
        fmt_money(jv_get(l, "amount")->u.i, amt);
        buf_reset(&b);
        buf_printf(&b, "%lld. %s %s \"%s\": step %s, rule %s, rules %s: ", (long long)jv_get(l, "seq")->u.i,
                   jv_get(l, "kind")->u.str.s, amt, jv_get(l, "description")->u.str.s, step->u.str.s, rule->u.str.s, ver->u.str.s);
        detail_text(dt, &b);
        jv *x = jv_obj_sized(a, 10);
        if (!x || jv_obj_set(a, x, "seq", (jv *)jv_get(l, "seq")) || jv_obj_set(a, x, "kind", (jv *)jv_get(l, "kind")) ||
            jv_obj_set(a, x, "description", (jv *)jv_get(l, "description")) || jv_obj_set(a, x, "amount", (jv *)jv_get(l, "amount")) ||
            jv_obj_set(a, x, "tax", (jv *)jv_get(l, "tax")) || jv_obj_set(a, x, "step", (jv *)step) || jv_obj_set(a, x, "rule", (jv *)rule) ||
            jv_obj_set(a, x, "rules_version", (jv *)ver) || jv_obj_set(a, x, "detail", (jv *)dt) ||
            jv_obj_set(a, x, "text", jv_strn(a, buf_cstr(&b), b.len)) || jv_arr_push(a, xl, x) ||
            jv_arr_push(a, text, jv_strn(a, buf_cstr(&b), b.len))) {
            buf_free(&b);
            return ERR_NOMEM_RET(e);
        }
    }
    buf_free(&b);
    if (jv_obj_set(a, o, "id", (jv *)num) || jv_obj_set(a, o, "number", (jv *)jv_get(inv, "number")) ||
        jv_obj_set(a, o, "customer", (jv *)jv_get(inv, "customer")) || jv_obj_set(a, o, "rules_version", (jv *)ver) ||
        jv_obj_set(a, o, "period", (jv *)jv_get(inv, "period")) || jv_obj_set(a, o, "lines", xl) || jv_obj_set(a, o, "text", text))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

int invoices_credit_note_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT n.number, i.number, c.code, n.reason, n.net, n.tax, n.gross, n.issue_date, n.created_at, n.created_by "
                            "FROM credit_notes n JOIN invoices i ON i.id = n.invoice_id JOIN customers c ON c.id = n.customer_id "
                            "WHERE n.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    jv *o = jv_obj_sized(a, 12);
    if (rc == DB_ROW &&
        (!o || jv_obj_set(a, o, "id", jv_str(a, db_col_text(s, 0))) || jv_obj_set(a, o, "number", jv_str(a, db_col_text(s, 0))) ||
         jv_obj_set(a, o, "invoice", jv_str(a, db_col_text(s, 1))) || jv_obj_set(a, o, "customer", jv_str(a, db_col_text(s, 2))) ||
         jv_obj_set(a, o, "reason", jv_str(a, db_col_text(s, 3))) || jv_obj_set_int(a, o, "net", db_col_int(s, 4)) ||
         jv_obj_set_int(a, o, "tax", db_col_int(s, 5)) || jv_obj_set_int(a, o, "gross", db_col_int(s, 6)) ||
         jv_obj_set(a, o, "issue_date", jv_str(a, db_col_text(s, 7))) || jv_obj_set(a, o, "created_at", jv_str(a, db_col_text(s, 8))) ||
         jv_obj_set(a, o, "created_by", jv_str(a, db_col_text(s, 9)))))
        rc = ERR_NOMEM_RET(e);
    db_done(s);
    if (rc < 0) return rc;
    if (rc != DB_ROW) return err_field(e, ERR_NOTFOUND, "not_found", "number", "no credit note %lld", (long long)id);
    jv *lines = jv_arr(a);
    if (!lines || jv_obj_set(a, o, "lines", lines)) return ERR_NOMEM_RET(e);
    s = db_prepare(d,
                   "SELECT l.seq, l.kind, l.description, cl.amount, cl.tax, cl.net, l.tax_rate FROM credit_note_lines cl "
                   "JOIN invoice_lines l ON l.id = cl.invoice_line_id WHERE cl.credit_note_id = ? ORDER BY l.seq",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 7);
        if (!x || jv_obj_set_int(a, x, "line", db_col_int(s, 0)) || jv_obj_set(a, x, "kind", jv_str(a, db_col_text(s, 1))) ||
            jv_obj_set(a, x, "description", jv_str(a, db_col_text(s, 2))) || jv_obj_set_int(a, x, "amount", db_col_int(s, 3)) ||
            jv_obj_set_int(a, x, "tax", db_col_int(s, 4)) || jv_obj_set_int(a, x, "net", db_col_int(s, 5)) ||
            jv_obj_set_int(a, x, "tax_rate", db_col_int(s, 6)) || jv_arr_push(a, lines, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    *out = o;
    return 0;
}

/* ------------------------------------------------------------- overview */

int invoices_overview_parts(db *d, int64_t customer_id, int n, jv_arena *a, ledger_balance *balance, jv **latest_invoices,
                            jv **latest_payments, err *e)
{
    int rc = ledger_balance_of(d, customer_id, balance, e);
    if (rc) return rc;
    jv *inv = jv_arr(a), *pay = jv_arr(a);
    if (!inv || !pay) return ERR_NOMEM_RET(e);
    db_stmt *s = db_prepare(d,
                            "SELECT number, period_from, period_to, issue_date, due_date, gross, paid, credited, written_off, status "
                            "FROM invoices WHERE customer_id = ? AND status <> 'draft' ORDER BY id DESC LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, n);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        int64_t g = db_col_int(s, 5), p = db_col_int(s, 6), c = db_col_int(s, 7), w = db_col_int(s, 8);
        int isvoid = !strcmp(db_col_text(s, 9), "void");
        jv *x = jv_obj_sized(a, 9);
        if (!x || jv_obj_set(a, x, "number", jv_str(a, db_col_text(s, 0))) || jv_obj_set(a, x, "period_from", text_or_null(a, s, 1)) ||
            jv_obj_set(a, x, "period_to", text_or_null(a, s, 2)) || jv_obj_set(a, x, "issue_date", jv_str(a, db_col_text(s, 3))) ||
            jv_obj_set(a, x, "due_date", jv_str(a, db_col_text(s, 4))) || jv_obj_set_int(a, x, "gross", g) ||
            jv_obj_set_int(a, x, "paid", p) || jv_obj_set_int(a, x, "balance_due", isvoid ? 0 : g - p - c - w) ||
            jv_obj_set(a, x, "status", jv_str(a, db_col_text(s, 9))) || jv_arr_push(a, inv, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d,
                   "SELECT p.id, p.channel, p.amount, p.entry_date, p.amount - p.refunded - "
                   "(SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE payment_id = p.id AND reversed_at IS NULL) "
                   "FROM payments p WHERE p.customer_id = ? ORDER BY p.id DESC LIMIT ?",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, n);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x = jv_obj_sized(a, 5);
        if (!x || jv_obj_set_int(a, x, "id", db_col_int(s, 0)) || jv_obj_set(a, x, "channel", jv_str(a, db_col_text(s, 1))) ||
            jv_obj_set_int(a, x, "amount", db_col_int(s, 2)) || jv_obj_set(a, x, "entry_date", jv_str(a, db_col_text(s, 3))) ||
            jv_obj_set_int(a, x, "unallocated", db_col_int(s, 4)) || jv_arr_push(a, pay, x)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    *latest_invoices = inv;
    *latest_payments = pay;
    return 0;
}
