/* ledger.c - the customer's account (see ledger.h).
 *
 * Entries are posted only here, by ledger_post, which checks each against
 * the table of kinds below: which account it goes to, its sign, and which
 * document it must name. ledger_verify then proves, from the documents
 * alone, that every entry is what its document says and nothing else is
 * on the ledger. */
#include "ledger.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "date.h"
#include "money.h"
#include "page.h"

/* ------------------------------------------------------------ the kinds */

enum { ACC_CUSTOMER = 1, ACC_DEPOSIT = 2 };
enum { REF_NONE, REF_INVOICE, REF_CREDIT_NOTE, REF_PAYMENT, REF_DEPOSIT };

typedef struct kind_rule {
    const char *name;
    int accounts;     /* ACC_* the kind may be posted to */
    int sign;         /* +1, -1, or 0 for either (never 0 itself) */
    int ref;          /* the document it must name */
    int reversible;   /* a void takes it back with an entry of the opposite sign */
} kind_rule;

static const kind_rule kinds[] = {
    {"invoice", ACC_CUSTOMER, +1, REF_INVOICE, 1},
    {"payment", ACC_CUSTOMER, -1, REF_PAYMENT, 0},
    {"credit_note", ACC_CUSTOMER, -1, REF_CREDIT_NOTE, 0},
    {"adjustment", ACC_CUSTOMER, 0, REF_NONE, 0},
    {"refund", ACC_CUSTOMER, +1, REF_PAYMENT, 0},
    {"write_off", ACC_CUSTOMER, -1, REF_INVOICE, 0},
    {"deposit_held", ACC_DEPOSIT, +1, REF_DEPOSIT, 1},
    {"deposit_returned", ACC_CUSTOMER | ACC_DEPOSIT, -1, REF_DEPOSIT, 0},
    {"deposit_forfeited", ACC_DEPOSIT, -1, REF_DEPOSIT, 0},
};
#define NKINDS (sizeof kinds / sizeof *kinds)

static const kind_rule *kind_of(const char *k)
{
    for (size_t i = 0; k && i < NKINDS; i++)
        if (!strcmp(kinds[i].name, k)) return &kinds[i];
    return NULL;
}

static int date_ok(const char *s)
{
    int32_t days;
    err e;
    return s && date_parse(s, strlen(s), &days, &e) == 0;
}

static int text_set(const char *s) { return s && s[strspn(s, " \t\r\n")]; }

/* Checks one entry; *account gets its account name and *kname its kind's. */
static int check_entry(const ledger_entry *le, const char **account, const char **kname, err *e)
{
    const char *acc_name = le->account ? le->account : "customer";
    int acc = !strcmp(acc_name, "customer") ? ACC_CUSTOMER : !strcmp(acc_name, "deposit") ? ACC_DEPOSIT : 0;
    const kind_rule *k = kind_of(le->kind);
    if (!acc) return err_set(e, ERR_INTERNAL, "ledger: unknown account '%s'", acc_name);
    if (!k) return err_set(e, ERR_INTERNAL, "ledger: unknown kind '%s'", le->kind ? le->kind : "");
    if (!(k->accounts & acc)) return err_set(e, ERR_INTERNAL, "ledger: %s is not posted to the %s account", k->name, acc_name);
    if (le->customer_id <= 0) return err_set(e, ERR_INTERNAL, "ledger: no customer");
    if (le->amount == 0) return err_set(e, ERR_INTERNAL, "ledger: a %s of 0 is not an entry", k->name);
    if (le->reversal && !k->reversible) return err_set(e, ERR_INTERNAL, "ledger: a %s is never reversed", k->name);
    int sign = le->reversal ? -k->sign : k->sign;
    if ((sign > 0 && le->amount < 0) || (sign < 0 && le->amount > 0))
        return err_set(e, ERR_INTERNAL, "ledger: a %s%s is %s, not %lld", le->reversal ? "reversed " : "", k->name,
                       sign > 0 ? "positive" : "negative", (long long)le->amount);
    if (!date_ok(le->entry_date))
        return err_set(e, ERR_INTERNAL, "ledger: entry date '%s' is not a date", le->entry_date ? le->entry_date : "");
    if (!text_set(le->by)) return err_set(e, ERR_INTERNAL, "ledger: who posts the entry is not said");
    int64_t ref = k->ref == REF_INVOICE ? le->invoice_id : k->ref == REF_CREDIT_NOTE ? le->credit_note_id
                : k->ref == REF_PAYMENT ? le->payment_id : k->ref == REF_DEPOSIT ? le->deposit_id : 1;
    if (ref <= 0) return err_set(e, ERR_INTERNAL, "ledger: a %s names its document", k->name);
    if (!strcmp(k->name, "adjustment") && (!text_set(le->reason) || !text_set(le->approved_by)))
        return err_set(e, ERR_INTERNAL, "ledger: an adjustment has a reason and an approver");
    if (!strcmp(k->name, "write_off") && !text_set(le->reason))
        return err_set(e, ERR_INTERNAL, "ledger: a write-off has a reason");
    *account = acc_name;
    *kname = k->name;
    return 0;
}

#define ENTRY_COLS                                                                                                  \
    "INSERT INTO ledger_entries (customer_id, account, kind, amount, entry_date, invoice_id, credit_note_id, "     \
    "payment_id, deposit_id, reason, approved_by, created_at, created_by) VALUES "
#define ENTRY_ROW "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define ENTRY_NCOLS 13
#define ENTRIES_PER_INSERT 4
/* a statement run has a fixed cost (SQLite builds the kind CHECK's IN list
 * once per run): entries posted together go in together */
static const char *const ENTRY_SQL[ENTRIES_PER_INSERT + 1] = {
    NULL,
    ENTRY_COLS ENTRY_ROW,
    ENTRY_COLS ENTRY_ROW ", " ENTRY_ROW,
    ENTRY_COLS ENTRY_ROW ", " ENTRY_ROW ", " ENTRY_ROW,
    ENTRY_COLS ENTRY_ROW ", " ENTRY_ROW ", " ENTRY_ROW ", " ENTRY_ROW,
};

/* The entry's values outlive the step (the caller's, the kinds' table and
 * insert_entries' clock): bound without copies. */
static void bind_entry(db_stmt *s, int r, const ledger_entry *le, const char *account, const char *kname, const char *now)
{
    int b = r * ENTRY_NCOLS;
    db_bind_int(s, b + 1, le->customer_id);
    db_bind_text_ref(s, b + 2, account);
    db_bind_text_ref(s, b + 3, kname);
    db_bind_int(s, b + 4, le->amount);
    db_bind_text_ref(s, b + 5, le->entry_date);
    const int64_t refs[4] = {le->invoice_id, le->credit_note_id, le->payment_id, le->deposit_id};
    for (int i = 0; i < 4; i++) {
        if (refs[i] > 0) db_bind_int(s, b + 6 + i, refs[i]);
        else db_bind_null(s, b + 6 + i);
    }
    db_bind_text_ref(s, b + 10, le->reason);
    db_bind_text_ref(s, b + 11, le->approved_by);
    db_bind_text_ref(s, b + 12, now);
    db_bind_text_ref(s, b + 13, le->by);
}

/* Entries les[0..k-1] in one statement, already checked. */
static int insert_entries(db *d, const ledger_entry *les, size_t k, const char *const *accounts, const char *const *knames,
                          err *e)
{
    char now[25];
    db_now(now);
    db_stmt *s = db_prepare(d, ENTRY_SQL[k], e);
    if (!s) return e->code;
    for (size_t r = 0; r < k; r++) bind_entry(s, (int)r, &les[r], accounts[r], knames[r], now);
    int rc = db_step(d, s, e);
    db_done(s);
    return rc < 0 ? rc : 0;
}

int ledger_post(db *d, const ledger_entry *le, int64_t *id, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "ledger_post needs the caller's transaction");
    const char *account, *kname;
    int rc = check_entry(le, &account, &kname, e);
    if (!rc) rc = insert_entries(d, le, 1, &account, &kname, e);
    if (rc) return rc;
    if (id) *id = db_last_id(d);
    return 0;
}

int ledger_post_many(db *d, const ledger_entry *les, size_t n, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "ledger_post_many needs the caller's transaction");
    const char *accounts[ENTRIES_PER_INSERT], *knames[ENTRIES_PER_INSERT];
    /* every entry checked before any is written */
    for (size_t i = 0; i < n; i++) {
        int rc = check_entry(&les[i], &accounts[0], &knames[0], e);
        if (rc) return rc;
    }
    /* one statement is all or none by itself; more need a savepoint */
    int several = n > ENTRIES_PER_INSERT, rc = 0;
    if (several && (rc = db_begin(d, e))) return rc;
    for (size_t i = 0; i < n && !rc; i += ENTRIES_PER_INSERT) {
        size_t k = n - i < ENTRIES_PER_INSERT ? n - i : ENTRIES_PER_INSERT;
        for (size_t r = 0; r < k && !rc; r++) rc = check_entry(&les[i + r], &accounts[r], &knames[r], e);
        if (!rc) rc = insert_entries(d, les + i, k, accounts, knames, e);
    }
    if (several) {
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
    }
    return rc;
}

/* ---------------------------------------------------------------- balance */

int ledger_balance_of(db *d, int64_t customer_id, ledger_balance *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT COALESCE(SUM(CASE WHEN account = 'customer' THEN amount END), 0), "
                            "COALESCE(SUM(CASE WHEN account = 'deposit' THEN amount END), 0) "
                            "FROM ledger_entries WHERE customer_id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->balance = db_col_int(s, 0);
        out->deposits_held = db_col_int(s, 1);
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d,
                   "SELECT COALESCE(SUM(gross - paid - credited - written_off), 0) FROM invoices "
                   "WHERE customer_id = ? AND status IN ('open', 'partially_paid')",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    rc = db_step(d, s, e);
    if (rc == DB_ROW) out->open = db_col_int(s, 0);
    db_done(s);
    if (rc < 0) return rc;
    out->credit = out->open - out->balance > 0 ? out->open - out->balance : 0;
    return 0;
}

/* ------------------------------------------------------------ adjustments */

/* The name in a "kind:name" label ("user:alice" -> "alice"). */
static const char *label_name(const char *by)
{
    const char *c = strchr(by, ':');
    return c ? c + 1 : by;
}

int ledger_adjust(db *d, int64_t customer_id, int64_t amount, const char *reason, const char *approved_by,
                  const char *entry_date, const char *by, int64_t *id, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "ledger_adjust needs the caller's transaction");
    if (amount == 0) return err_field(e, ERR_INVALID, "invalid_field", "amount", "an adjustment of 0 changes nothing");
    if (amount > 100000000000LL || amount < -100000000000LL)
        return err_field(e, ERR_INVALID, "invalid_field", "amount", "an adjustment is at most 1,000,000,000.00 either way");
    if (!text_set(reason)) return err_field(e, ERR_INVALID, "missing_field", "reason", "an adjustment needs a reason");
    if (strlen(reason) > 500) return err_field(e, ERR_INVALID, "invalid_field", "reason", "a reason is at most 500 bytes");
    if (!text_set(approved_by))
        return err_field(e, ERR_INVALID, "missing_field", "approved_by", "an adjustment needs the name of who approved it");
    if (strlen(approved_by) > 64) return err_field(e, ERR_INVALID, "invalid_field", "approved_by", "an approver's name is at most 64 bytes");
    if (!date_ok(entry_date)) return err_field(e, ERR_INVALID, "invalid_date", "date", "the entry date must be a date YYYY-MM-DD");
    if (!text_set(by)) return err_set(e, ERR_INTERNAL, "ledger_adjust: who asks is not said");
    /* four eyes: somebody else approves, except for the operator at the
     * machine itself, who can do anything anyway */
    int local = !strncmp(by, "cli:", 4) || !strncmp(by, "local:", 6);
    if (!local && !strcasecmp(label_name(by), approved_by))
        return err_field(e, ERR_FORBIDDEN, "same_approver", "approved_by",
                         "an adjustment is approved by someone other than who asks for it (four eyes)");
    int64_t known = 0;
    int rc = db_get_int(d, e, &known, "SELECT COUNT(*) FROM customers WHERE id = ?", "i", customer_id);
    if (rc) return rc;
    if (!known) return err_field(e, ERR_NOTFOUND, "not_found", "code", "no customer with id %lld", (long long)customer_id);
    ledger_entry le = {.customer_id = customer_id, .kind = "adjustment", .amount = amount, .entry_date = entry_date,
                       .reason = reason, .approved_by = approved_by, .by = by};
    return ledger_post(d, &le, id, e);
}

/* ------------------------------------------------------------------ lists */

static jv *text_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_str(a, db_col_text(s, i)); }
static jv *int_or_null(jv_arena *a, db_stmt *s, int i) { return db_col_is_null(s, i) ? jv_null(a) : jv_int(a, db_col_int(s, i)); }

/* Each account's balance after the entry being read: entries come newest
 * first, so the balance steps back by each amount. */
typedef struct running {
    int64_t customer, deposit;
} running;

static int entry_row(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e)
{
    (void)d;
    running *run = ud;
    int dep = !strcmp(db_col_text(s, 1), "deposit");
    int64_t amount = db_col_int(s, 3);
    jv *o = jv_obj_sized(a, 14);
    int bad = !o || jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set(a, o, "account", jv_str(a, db_col_text(s, 1))) ||
              jv_obj_set(a, o, "kind", jv_str(a, db_col_text(s, 2))) || jv_obj_set_int(a, o, "amount", amount) ||
              jv_obj_set_int(a, o, "balance_after", dep ? run->deposit : run->customer) ||
              jv_obj_set(a, o, "entry_date", jv_str(a, db_col_text(s, 4))) || jv_obj_set(a, o, "invoice", text_or_null(a, s, 5)) ||
              jv_obj_set(a, o, "credit_note", text_or_null(a, s, 6)) || jv_obj_set(a, o, "payment_id", int_or_null(a, s, 7)) ||
              jv_obj_set(a, o, "deposit_id", int_or_null(a, s, 8)) || jv_obj_set(a, o, "reason", text_or_null(a, s, 9)) ||
              jv_obj_set(a, o, "approved_by", text_or_null(a, s, 10)) ||
              jv_obj_set(a, o, "created_at", jv_str(a, db_col_text(s, 11))) ||
              jv_obj_set(a, o, "created_by", jv_str(a, db_col_text(s, 12)));
    if (bad) return ERR_NOMEM_RET(e);
    if (dep) run->deposit -= amount;
    else run->customer -= amount;
    *out = o;
    return 0;
}

int ledger_list(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                size_t nnext, err *e)
{
    int64_t before;
    if (page_start(cursor, limit, &before, e)) return e->code;
    /* the running balance of each account after each entry: the sums up to
     * the newest entry of the page, then back from there */
    running run = {0, 0};
    db_stmt *s = db_prepare(d,
                            "SELECT COALESCE(SUM(CASE WHEN account = 'customer' THEN amount END), 0), "
                            "COALESCE(SUM(CASE WHEN account = 'deposit' THEN amount END), 0) "
                            "FROM ledger_entries WHERE customer_id = ? AND (? = 0 OR id < ?)",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        run.customer = db_col_int(s, 0);
        run.deposit = db_col_int(s, 1);
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d,
                   "SELECT l.id, l.account, l.kind, l.amount, l.entry_date, i.number, c.number, l.payment_id, "
                   "l.deposit_id, l.reason, l.approved_by, l.created_at, l.created_by "
                   "FROM ledger_entries l LEFT JOIN invoices i ON i.id = l.invoice_id "
                   "LEFT JOIN credit_notes c ON c.id = l.credit_note_id "
                   "WHERE l.customer_id = ? AND (? = 0 OR l.id < ?) ORDER BY l.id DESC LIMIT ?",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    db_bind_int(s, 4, limit + 1);
    return page_collect(d, s, limit, entry_row, &run, a, list, next, nnext, e);
}

/* ---------------------------------------------------------------- deposits */

int ledger_deposit_settled(db *d, int64_t deposit_id, const char *status, const char *settled_on, const char *by,
                           err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "ledger_deposit_settled needs the caller's transaction");
    db_stmt *s = db_prepare(d,
                            "SELECT dp.customer_id, dp.amount, dp.invoice_id FROM deposits dp "
                            "JOIN invoices i ON i.id = dp.invoice_id AND i.status NOT IN ('draft', 'void') WHERE dp.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, deposit_id);
    int rc = db_step(d, s, e);
    int64_t customer = 0, amount = 0, invoice = 0;
    if (rc == DB_ROW) {
        customer = db_col_int(s, 0);
        amount = db_col_int(s, 1);
        invoice = db_col_int(s, 2);
    }
    db_done(s);
    if (rc < 0) return rc;
    /* never billed: the money was never on the ledger, so neither is its return */
    if (rc == DB_DONE || amount == 0) return 0;
    const char *who = text_set(by) ? by : "system";
    if (!strcmp(status, "returned")) {
        ledger_entry le = {.customer_id = customer, .account = "customer", .kind = "deposit_returned", .amount = -amount,
                           .entry_date = settled_on, .invoice_id = invoice, .deposit_id = deposit_id, .by = who};
        rc = ledger_post(d, &le, NULL, e);
        le.account = "deposit";
        if (!rc) rc = ledger_post(d, &le, NULL, e);
        return rc;
    }
    if (!strcmp(status, "kept") || !strcmp(status, "forfeited")) {
        ledger_entry le = {.customer_id = customer, .account = "deposit", .kind = "deposit_forfeited", .amount = -amount,
                           .entry_date = settled_on, .invoice_id = invoice, .deposit_id = deposit_id, .by = who};
        return ledger_post(d, &le, NULL, e);
    }
    return err_set(e, ERR_INTERNAL, "ledger: a deposit is settled as returned, kept or forfeited, not '%s'", status ? status : "");
}
/* ----------------------------------------------------------- verification */

/* One customer's entries, and what the documents say each should be. */
typedef struct ventry {
    int64_t id, amount, ref;
    int kind, acc;            /* index into kinds[], ACC_* */
    char date[11];
    int matched;
} ventry;

/* A sum for one business day, kind and account, from the ledger (side 0)
 * or from the documents (side 1). */
typedef struct vday {
    char date[11];
    int kind, acc, side;
    int64_t amount;
} vday;

typedef struct vctx {
    db *d;
    ledger_problem_fn fn;
    void *ud;
    ledger_report *rep;
    int64_t cid;
    ventry *ent;
    size_t nent, capent;
    vday *day;
    size_t nday, capday;
    int64_t doc_balance, doc_deposits;
    err *e;
} vctx;

static void problem(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(vctx *v, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    v->rep->problems++;
    if (v->fn) v->fn(v->ud, v->cid, text);
}

static const char *yuan(int64_t fen, char out[MONEY_FMT_MAX])
{
    money_format(fen, out);
    return out;
}

static int kind_index(const char *k)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (!strcmp(kinds[i].name, k)) return (int)i;
    return -1;
}

static int add_day(vctx *v, const char *date, int kind, int acc, int side, int64_t amount)
{
    if (!amount) return 0;
    if (v->nday == v->capday) {
        size_t nc = v->capday ? v->capday * 2 : 64;
        vday *np = realloc(v->day, nc * sizeof *np);
        if (!np) return ERR_NOMEM_RET(v->e);
        v->day = np;
        v->capday = nc;
    }
    vday *x = &v->day[v->nday++];
    snprintf(x->date, sizeof x->date, "%s", date ? date : "");
    x->kind = kind;
    x->acc = acc;
    x->side = side;
    x->amount = amount;
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const ventry *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    if (x->ref != y->ref) return x->ref < y->ref ? -1 : 1;
    if (x->acc != y->acc) return x->acc < y->acc ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int day_cmp(const void *a, const void *b)
{
    const vday *x = a, *y = b;
    int c = strcmp(x->date, y->date);
    if (c) return c;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return x->acc < y->acc ? -1 : x->acc > y->acc;
}

/* The sum of the entries of one kind, document and account; marks them as
 * accounted for. *count gets how many there are. */
static int64_t entries_of(vctx *v, const char *kind, int64_t ref, int acc, int *count)
{
    ventry key = {.kind = kind_index(kind), .ref = ref, .acc = acc, .id = 0};
    size_t lo = 0, hi = v->nent;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ent_cmp(&v->ent[mid], &key) < 0) lo = mid + 1;
        else hi = mid;
    }
    int64_t sum = 0;
    int n = 0;
    for (size_t i = lo; i < v->nent && v->ent[i].kind == key.kind && v->ent[i].ref == ref && v->ent[i].acc == acc; i++) {
        sum += v->ent[i].amount;
        v->ent[i].matched = 1;
        n++;
    }
    if (count) *count = n;
    return sum;
}

static void expect(vctx *v, const char *what, const char *kind, int64_t ref, int acc, int64_t want)
{
    int n;
    int64_t got = entries_of(v, kind, ref, acc, &n);
    if (got == want) return;
    char g[MONEY_FMT_MAX], w[MONEY_FMT_MAX];
    if (!n)
        problem(v, "%s: no %s entry on the %s account (expected %s)", what, kind, acc == ACC_DEPOSIT ? "deposit" : "customer", yuan(want, w));
    else
        problem(v, "%s: its %s entries add up to %s on the %s account, the document says %s", what, kind, yuan(got, g),
                acc == ACC_DEPOSIT ? "deposit" : "customer", yuan(want, w));
}

static int load_entries(vctx *v)
{
    v->nent = 0;
    db_stmt *s = db_prepare(v->d,
                            "SELECT id, account, kind, amount, entry_date, invoice_id, credit_note_id, payment_id, deposit_id, "
                            "reason, approved_by FROM ledger_entries WHERE customer_id = ?",
                            v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    int rc;
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        if (v->nent == v->capent) {
            size_t nc = v->capent ? v->capent * 2 : 64;
            ventry *np = realloc(v->ent, nc * sizeof *np);
            if (!np) {
                rc = ERR_NOMEM_RET(v->e);
                break;
            }
            v->ent = np;
            v->capent = nc;
        }
        ventry *x = &v->ent[v->nent];
        memset(x, 0, sizeof *x);
        x->id = db_col_int(s, 0);
        x->acc = !strcmp(db_col_text(s, 1), "deposit") ? ACC_DEPOSIT : ACC_CUSTOMER;
        x->kind = kind_index(db_col_text(s, 2));
        x->amount = db_col_int(s, 3);
        snprintf(x->date, sizeof x->date, "%s", db_col_text(s, 4));
        v->rep->entries++;
        char a1[MONEY_FMT_MAX];
        if (x->kind < 0) {
            problem(v, "entry %lld: unknown kind '%s'", (long long)x->id, db_col_text(s, 2));
            continue;
        }
        const kind_rule *k = &kinds[x->kind];
        int refcol = k->ref == REF_INVOICE ? 5 : k->ref == REF_CREDIT_NOTE ? 6 : k->ref == REF_PAYMENT ? 7 : k->ref == REF_DEPOSIT ? 8 : -1;
        x->ref = refcol < 0 ? 0 : db_col_int(s, refcol);
        if (!(k->accounts & x->acc)) problem(v, "entry %lld: a %s on the %s account", (long long)x->id, k->name, db_col_text(s, 1));
        if (!k->reversible && ((k->sign > 0 && x->amount <= 0) || (k->sign < 0 && x->amount >= 0)))
            problem(v, "entry %lld: a %s of %s has the wrong sign", (long long)x->id, k->name, yuan(x->amount, a1));
        if (!strcmp(k->name, "adjustment")) {
            /* an adjustment is its own document: its reason and approver */
            x->matched = 1;
            v->doc_balance += x->amount;
            if (!text_set(db_col_text(s, 9)) || !text_set(db_col_text(s, 10)))
                problem(v, "entry %lld: an adjustment of %s without %s", (long long)x->id, yuan(x->amount, a1),
                        text_set(db_col_text(s, 9)) ? "an approver" : "a reason");
            continue;
        }
        /* refunds carry no day of their own in the documents yet (the
         * payments issue): they are checked per payment only */
        if (strcmp(k->name, "refund") && add_day(v, x->date, x->kind, x->acc, 0, x->amount)) {
            rc = v->e->code;
            break;
        }
        v->nent++;
    }
    db_done(s);
    if (rc < 0) return rc;
    qsort(v->ent, v->nent, sizeof *v->ent, ent_cmp);
    return 0;
}

typedef struct vinv {
    int64_t id, paid, credited, allocated, noted;
    char number[40];
} vinv;

static int vinv_cmp(const void *a, const void *b)
{
    const vinv *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static vinv *find_inv(vinv *a, size_t n, int64_t id)
{
    vinv key = {.id = id};
    return bsearch(&key, a, n, sizeof *a, vinv_cmp);
}

static const char *status_for(int64_t gross, int64_t paid, int64_t credited, int64_t wo)
{
    int64_t left = gross - paid - credited - wo;
    if (left <= 0) return wo > 0 ? "written_off" : "paid";
    return paid + credited + wo > 0 ? "partially_paid" : "open";
}

static int check_invoices(vctx *v, vinv **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    db_stmt *s = db_prepare(v->d,
                            "SELECT id, number, status, gross, paid, credited, written_off, issue_date, voided_on, written_off_on "
                            "FROM invoices WHERE customer_id = ? AND status <> 'draft' ORDER BY id",
                            v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    vinv *inv = NULL;
    size_t n = 0, cap = 0;
    int rc;
    int ki = kind_index("invoice"), kw = kind_index("write_off");
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            vinv *np = realloc(inv, nc * sizeof *np);
            if (!np) {
                rc = ERR_NOMEM_RET(v->e);
                break;
            }
            inv = np;
            cap = nc;
        }
        vinv *x = &inv[n++];
        memset(x, 0, sizeof *x);
        x->id = db_col_int(s, 0);
        snprintf(x->number, sizeof x->number, "invoice %s", db_col_text(s, 1));
        const char *st = db_col_text(s, 2);
        int isvoid = !strcmp(st, "void");
        int64_t gross = db_col_int(s, 3), wo = db_col_int(s, 6);
        x->paid = db_col_int(s, 4);
        x->credited = db_col_int(s, 5);
        expect(v, x->number, "invoice", x->id, ACC_CUSTOMER, isvoid ? 0 : gross);
        expect(v, x->number, "write_off", x->id, ACC_CUSTOMER, -wo);
        rc = add_day(v, db_col_text(s, 7), ki, ACC_CUSTOMER, 1, gross);
        if (!rc && isvoid) rc = add_day(v, db_col_text(s, 8), ki, ACC_CUSTOMER, 1, -gross);
        if (!rc && wo) rc = add_day(v, db_col_text(s, 9), kw, ACC_CUSTOMER, 1, -wo);
        if (rc) break;
        v->doc_balance += (isvoid ? 0 : gross) - wo;
        char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
        if (x->paid + x->credited + wo > gross && gross >= 0)
            problem(v, "%s: paid %s + credited + written off is more than its %s", x->number, yuan(x->paid, a1), yuan(gross, a2));
        if (!isvoid && strcmp(st, status_for(gross, x->paid, x->credited, wo)))
            problem(v, "%s: status %s, but its figures say %s", x->number, st, status_for(gross, x->paid, x->credited, wo));
        if (isvoid && (x->paid || x->credited || wo)) problem(v, "%s: void, but something settled it", x->number);
    }
    db_done(s);
    if (rc < 0) {
        free(inv);
        return rc;
    }
    /* what settled each: live allocations, and credit notes */
    s = db_prepare(v->d,
                   "SELECT a.invoice_id, SUM(a.amount) FROM allocations a JOIN invoices i ON i.id = a.invoice_id "
                   "WHERE i.customer_id = ? AND a.reversed_at IS NULL GROUP BY a.invoice_id",
                   v->e);
    if (!s) {
        free(inv);
        return v->e->code;
    }
    db_bind_int(s, 1, v->cid);
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        vinv *x = find_inv(inv, n, db_col_int(s, 0));
        if (x) x->allocated = db_col_int(s, 1);
    }
    db_done(s);
    if (rc < 0) {
        free(inv);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (inv[i].allocated != inv[i].paid) {
            char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
            problem(v, "%s: paid %s, but its allocations add up to %s", inv[i].number, yuan(inv[i].paid, a1), yuan(inv[i].allocated, a2));
        }
    *out = inv;
    *nout = n;
    return 0;
}

static int check_credit_notes(vctx *v, vinv *inv, size_t ninv)
{
    db_stmt *s = db_prepare(v->d,
                            "SELECT n.id, n.number, n.invoice_id, n.gross, n.tax, n.issue_date, i.customer_id, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM credit_note_lines WHERE credit_note_id = n.id), "
                            "(SELECT COALESCE(SUM(tax), 0) FROM credit_note_lines WHERE credit_note_id = n.id) "
                            "FROM credit_notes n JOIN invoices i ON i.id = n.invoice_id WHERE n.customer_id = ? ORDER BY n.id",
                            v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    int rc, kc = kind_index("credit_note");
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        char what[64], a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
        int64_t id = db_col_int(s, 0), gross = db_col_int(s, 3);
        snprintf(what, sizeof what, "credit note %s", db_col_text(s, 1));
        expect(v, what, "credit_note", id, ACC_CUSTOMER, -gross);
        if ((rc = add_day(v, db_col_text(s, 5), kc, ACC_CUSTOMER, 1, -gross))) break;
        v->doc_balance -= gross;
        if (db_col_int(s, 7) != gross) problem(v, "%s: its lines add up to %s, the note says %s", what, yuan(db_col_int(s, 7), a1), yuan(gross, a2));
        if (db_col_int(s, 8) != db_col_int(s, 4))
            problem(v, "%s: the tax of its lines adds up to %s, the note says %s", what, yuan(db_col_int(s, 8), a1), yuan(db_col_int(s, 4), a2));
        vinv *x = db_col_int(s, 6) == v->cid ? find_inv(inv, ninv, db_col_int(s, 2)) : NULL;
        if (!x) problem(v, "%s: credits an invoice that is not this customer's", what);
        else x->noted += gross;
    }
    db_done(s);
    if (rc < 0) return rc;
    for (size_t i = 0; i < ninv; i++)
        if (inv[i].noted != inv[i].credited) {
            char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
            problem(v, "%s: credited %s, but its credit notes add up to %s", inv[i].number, yuan(inv[i].credited, a1), yuan(inv[i].noted, a2));
        }
    return 0;
}

static int check_payments(vctx *v)
{
    db_stmt *s = db_prepare(v->d,
                            "SELECT p.id, p.amount, p.refunded, p.entry_date, "
                            "(SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE payment_id = p.id AND reversed_at IS NULL) "
                            "FROM payments p WHERE p.customer_id = ? ORDER BY p.id",
                            v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    int rc, kp = kind_index("payment");
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        char what[48], a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
        int64_t id = db_col_int(s, 0), amount = db_col_int(s, 1), refunded = db_col_int(s, 2), alloc = db_col_int(s, 4);
        snprintf(what, sizeof what, "payment %lld", (long long)id);
        expect(v, what, "payment", id, ACC_CUSTOMER, -amount);
        expect(v, what, "refund", id, ACC_CUSTOMER, refunded);
        if ((rc = add_day(v, db_col_text(s, 3), kp, ACC_CUSTOMER, 1, -amount))) break;
        v->doc_balance += refunded - amount;
        if (alloc > amount - refunded)
            problem(v, "%s: %s of it is allocated, more than its %s", what, yuan(alloc, a1), yuan(amount - refunded, a2));
    }
    db_done(s);
    if (rc < 0) return rc;
    /* an allocation of this customer's money to somebody else's invoice */
    s = db_prepare(v->d,
                   "SELECT a.id, a.payment_id, i.number FROM allocations a JOIN payments p ON p.id = a.payment_id "
                   "JOIN invoices i ON i.id = a.invoice_id WHERE p.customer_id = ? AND i.customer_id <> p.customer_id",
                   v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW)
        problem(v, "allocation %lld: payment %lld pays invoice %s of another customer", (long long)db_col_int(s, 0),
                (long long)db_col_int(s, 1), db_col_text(s, 2));
    db_done(s);
    return rc < 0 ? rc : 0;
}

typedef struct vdep {
    int64_t id, billed, invoice;   /* billed: amount on live invoices */
    int lines;
} vdep;

static int check_deposits(vctx *v)
{
    /* what the invoices billed: deposit lines, voids taking them back */
    db_stmt *s = db_prepare(v->d,
                            "SELECT l.deposit_id, l.amount, i.id, i.status, i.issue_date, i.voided_on, i.number FROM invoices i "
                            "JOIN invoice_lines l ON l.invoice_id = i.id WHERE i.customer_id = ? AND i.status <> 'draft' "
                            "AND l.deposit_id IS NOT NULL ORDER BY l.deposit_id",
                            v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    vdep *dep = NULL;
    size_t n = 0, cap = 0;
    int rc, kh = kind_index("deposit_held");
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        int64_t did = db_col_int(s, 0), amount = db_col_int(s, 1);
        int isvoid = !strcmp(db_col_text(s, 3), "void");
        if (!n || dep[n - 1].id != did) {
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                vdep *np = realloc(dep, nc * sizeof *np);
                if (!np) {
                    rc = ERR_NOMEM_RET(v->e);
                    break;
                }
                dep = np;
                cap = nc;
            }
            memset(&dep[n++], 0, sizeof *dep);
            dep[n - 1].id = did;
        }
        vdep *x = &dep[n - 1];
        x->lines++;
        if (!isvoid) {
            x->billed += amount;
            x->invoice = db_col_int(s, 2);
        }
        rc = add_day(v, db_col_text(s, 4), kh, ACC_DEPOSIT, 1, amount);
        if (!rc && isvoid) rc = add_day(v, db_col_text(s, 5), kh, ACC_DEPOSIT, 1, -amount);
        if (rc) break;
    }
    db_done(s);
    if (rc < 0) {
        free(dep);
        return rc;
    }
    s = db_prepare(v->d, "SELECT id, amount, status, settled_on, invoice_id FROM deposits WHERE customer_id = ? ORDER BY id", v->e);
    if (!s) {
        free(dep);
        return v->e->code;
    }
    db_bind_int(s, 1, v->cid);
    size_t seen = 0;
    int kr = kind_index("deposit_returned"), kf = kind_index("deposit_forfeited");
    while ((rc = db_step(v->d, s, v->e)) == DB_ROW) {
        int64_t id = db_col_int(s, 0), amount = db_col_int(s, 1), inv = db_col_int(s, 4);
        const char *st = db_col_text(s, 2);
        vdep *x = NULL;
        for (size_t i = 0; i < n; i++)
            if (dep[i].id == id) x = &dep[i];
        if (x) seen++;
        char what[48], a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
        snprintf(what, sizeof what, "deposit %lld", (long long)id);
        int64_t billed = x ? x->billed : 0;
        expect(v, what, "deposit_held", id, ACC_DEPOSIT, billed);
        if (billed && billed != amount) problem(v, "%s: billed as %s, the deposit is %s", what, yuan(billed, a1), yuan(amount, a2));
        if ((x && x->invoice) != (inv != 0) || (x && x->invoice && x->invoice != inv))
            problem(v, "%s: the deposit and the invoices disagree on which bill holds it", what);
        int returned = billed && !strcmp(st, "returned"), forfeited = billed && (!strcmp(st, "kept") || !strcmp(st, "forfeited"));
        expect(v, what, "deposit_returned", id, ACC_CUSTOMER, returned ? -billed : 0);
        expect(v, what, "deposit_returned", id, ACC_DEPOSIT, returned ? -billed : 0);
        expect(v, what, "deposit_forfeited", id, ACC_DEPOSIT, forfeited ? -billed : 0);
        int bad = 0;
        if (returned) {
            bad = add_day(v, db_col_text(s, 3), kr, ACC_CUSTOMER, 1, -billed) || add_day(v, db_col_text(s, 3), kr, ACC_DEPOSIT, 1, -billed);
            v->doc_balance -= billed;
        }
        if (!bad && forfeited) bad = add_day(v, db_col_text(s, 3), kf, ACC_DEPOSIT, 1, -billed);
        if (bad) {
            rc = v->e->code;
            break;
        }
        v->doc_deposits += returned || forfeited ? 0 : billed;
    }
    db_done(s);
    if (rc >= 0 && seen < n) problem(v, "an invoice of this customer bills a deposit that is not theirs");
    free(dep);
    return rc < 0 ? rc : 0;
}

static void check_days(vctx *v)
{
    qsort(v->day, v->nday, sizeof *v->day, day_cmp);
    for (size_t i = 0; i < v->nday;) {
        size_t j = i;
        int64_t sums[2] = {0, 0};
        while (j < v->nday && !day_cmp(&v->day[i], &v->day[j])) {
            sums[v->day[j].side] += v->day[j].amount;
            j++;
        }
        if (sums[0] != sums[1]) {
            char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
            problem(v, "%s: the %s entries of the day add up to %s on the %s account, the documents of the day to %s", v->day[i].date,
                    kinds[v->day[i].kind].name, yuan(sums[0], a1), v->day[i].acc == ACC_DEPOSIT ? "deposit" : "customer", yuan(sums[1], a2));
        }
        i = j;
    }
}

static int verify_customer(vctx *v)
{
    v->nday = 0;
    v->doc_balance = v->doc_deposits = 0;
    v->rep->customers++;
    int rc = load_entries(v);
    vinv *inv = NULL;
    size_t ninv = 0;
    if (!rc) rc = check_invoices(v, &inv, &ninv);
    if (!rc) rc = check_credit_notes(v, inv, ninv);
    free(inv);
    if (!rc) rc = check_payments(v);
    if (!rc) rc = check_deposits(v);
    if (rc) return rc;
    int64_t bal = 0, deps = 0;
    for (size_t i = 0; i < v->nent; i++) {
        ventry *x = &v->ent[i];
        if (x->acc == ACC_DEPOSIT) deps += x->amount;
        else bal += x->amount;
        if (!x->matched) {
            char a1[MONEY_FMT_MAX];
            problem(v, "entry %lld: a %s of %s on %s that no document accounts for", (long long)x->id, kinds[x->kind].name,
                    yuan(x->amount, a1), x->date);
        }
    }
    /* adjustments were left out of the sorted entries: add them back */
    db_stmt *s = db_prepare(v->d, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE customer_id = ? AND kind = 'adjustment'", v->e);
    if (!s) return v->e->code;
    db_bind_int(s, 1, v->cid);
    rc = db_step(v->d, s, v->e);
    if (rc == DB_ROW) bal += db_col_int(s, 0);
    db_done(s);
    if (rc < 0) return rc;
    char a1[MONEY_FMT_MAX], a2[MONEY_FMT_MAX];
    if (bal != v->doc_balance)
        problem(v, "balance %s, but invoices - credit notes - payments + refunds + adjustments - write-offs - deposits returned = %s",
                yuan(bal, a1), yuan(v->doc_balance, a2));
    if (deps != v->doc_deposits)
        problem(v, "deposit account %s, but the deposits billed and still held add up to %s", yuan(deps, a1), yuan(v->doc_deposits, a2));
    check_days(v);
    return 0;
}

int ledger_verify(db *d, int64_t customer_id, ledger_problem_fn fn, void *ud, ledger_report *out, err *e)
{
    memset(out, 0, sizeof *out);
    vctx v = {.d = d, .fn = fn, .ud = ud, .rep = out, .e = e};
    int rc = 0;
    if (customer_id) {
        int64_t known = 0;
        rc = db_get_int(d, e, &known, "SELECT COUNT(*) FROM customers WHERE id = ?", "i", customer_id);
        if (!rc && !known) rc = err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)customer_id);
        v.cid = customer_id;
        if (!rc) rc = verify_customer(&v);
        if (!rc) rc = db_get_int(d, e, &out->days, "SELECT COUNT(DISTINCT entry_date) FROM ledger_entries WHERE customer_id = ?", "i",
                                 customer_id);
    } else {
        /* customers in batches by id, so no read stays open for the whole run */
        int64_t after = 0;
        for (;;) {
            int64_t ids[256];
            int n = 0;
            db_stmt *s = db_prepare(d, "SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT 256", e);
            if (!s) {
                rc = e->code;
                break;
            }
            db_bind_int(s, 1, after);
            while (n < 256 && (rc = db_step(d, s, e)) == DB_ROW) ids[n++] = db_col_int(s, 0);
            db_done(s);
            if (rc < 0) break;
            rc = 0;
            for (int i = 0; i < n && !rc; i++) {
                v.cid = ids[i];
                rc = verify_customer(&v);
            }
            if (rc || n < 256) break;
            after = ids[n - 1];
        }
        if (!rc) rc = db_get_int(d, e, &out->days, "SELECT COUNT(DISTINCT entry_date) FROM ledger_entries WHERE ? = 0", "i", (int64_t)0);
    }
    free(v.ent);
    free(v.day);
    return rc;
}
