/* cmd_invoices.c - `bandbill invoice ...`, `ledger ...`, `payment record`.
 *
 * The command line acts as the local administrator: it shows what the
 * admin role may see of an invoice (the field filter of resource
 * "invoice", with the view in clear recorded as the API records it), and
 * every change is one transaction with its audit record. Money options are
 * yuan with at most two decimals (money_parse: never a float). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli.h"
#include "customers.h"
#include "date.h"
#include "invoices.h"
#include "ledger.h"
#include "money.h"
#include "payments.h"
#include "rules.h"
#include "privacy.h"
#include "vault.h"

/* ---------------------------------------------------------------- helpers */

typedef cli_env env;

static int open_env(cli *c, env *x, err *e)
{
    /* numbers are taken with the configured prefixes */
    invoices_set_prefixes(c->cfg.invoice_prefix, c->cfg.credit_note_prefix);
    return cli_env_open(c, x, e);
}

static void today(char out[11]) { date_format(date_of_time(time(NULL)), out); }

static const char *yuan(int64_t fen, char out[MONEY_FMT_MAX])
{
    money_format(fen, out);
    return out;
}

static int print_json(const jv *o, err *e)
{
    jw w;
    if (jw_init(&w, 1)) return ERR_NOMEM_RET(e);
    jw_jv(&w, o);
    return cli_print_json(&w, e);
}

static int need(cli *c, const char *opt, const char *cmd, const char **out, err *e)
{
    const char *v = cli_opt_value(c, opt);
    if (!v || !v[strspn(v, " \t")]) return err_set(e, ERR_USAGE, "%s needs --%s", cmd, opt);
    *out = v;
    return 0;
}

static int money_opt(const char *opt, const char *text, int64_t *fen, err *e)
{
    if (money_parse(text, strlen(text), fen, e)) return err_prefix(e, "--%s", opt);
    return 0;
}

static void address_line(const jv *ad, buf *out)
{
    static const char *const parts[] = {"province", "city", "district", "street", "community", "building", "unit", "floor", "room", NULL};
    for (int i = 0; ad && ad->kind == JV_OBJ && parts[i]; i++) {
        const char *p = jv_get_str(ad, parts[i]);
        if (!p || !p[0]) continue;
        if (out->len) buf_putc(out, ' ');
        buf_puts(out, p);
    }
}

static int invoice_id(env *x, const char *number, int64_t *id, err *e) { return invoices_id_by_number(x->d, number, id, e); }

/* ---------------------------------------------------------------- invoices */

int cmd_invoice_list(cli *c, err *e)
{
    const char *code = cli_opt_value(c, "customer"), *status = cli_opt_value(c, "status");
    int64_t limit;
    int rc = cli_opt_limit(c, 50, 500, &limit, e);
    if (rc) return rc;
    env x;
    rc = open_env(c, &x, e);
    if (rc) return rc;
    int64_t customer = 0;
    if (code) rc = customers_id_by_code(x.d, code, &customer, e);
    jv *list = NULL;
    char next[INVOICES_CURSOR_MAX];
    if (!rc) rc = invoices_list(x.d, customer, status, NULL, limit, &x.a, &list, next, sizeof next, e);
    if (!rc) rc = cli_admin_view(c, &x, "invoice", list->u.arr.items, list->u.arr.n, e);
    if (!rc && c->json) rc = print_json(list, e);
    else if (!rc) {
        printf("%-18s %-12s %-10s %-10s %12s %12s  %s\n", "NUMBER", "CUSTOMER", "ISSUED", "DUE", "TOTAL", "DUE NOW", "STATUS");
        for (size_t i = 0; i < list->u.arr.n; i++) {
            const jv *o = list->u.arr.items[i];
            char g[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
            printf("%-18s %-12s %-10s %-10s %12s %12s  %s\n", jv_get_str(o, "id"), jv_get_str(o, "customer"), jv_get_str(o, "issue_date") ? jv_get_str(o, "issue_date") : "-",
                   jv_get_str(o, "due_date") ? jv_get_str(o, "due_date") : "-", yuan(jv_get_int(o, "gross"), g), yuan(jv_get_int(o, "balance_due"), b),
                   jv_get_str(o, "status"));
        }
        if (next[0]) printf("(more: narrow with --customer or --status, or raise --limit)\n");
    }
    return cli_env_close(&x, rc);
}

static void print_invoice(const jv *o)
{
    char m1[MONEY_FMT_MAX];
    printf("Invoice %s    %s\n", jv_get_str(o, "id"), jv_get_str(o, "status"));
    const char *name = jv_get_str(o, "customer_name"), *company = jv_get_str(o, "company_name");
    printf("%-12s %s%s%s%s%s\n", "customer", jv_get_str(o, "customer"), name ? "  " : "", name ? name : "", company ? "  " : "", company ? company : "");
    if (jv_get_str(o, "tax_id")) printf("%-12s %s\n", "tax id", jv_get_str(o, "tax_id"));
    static const char *const addrs[][2] = {{"service_address", "service at"}, {"billing_address", "bill to"}};
    for (int i = 0; i < 2; i++) {
        buf b = {0};
        address_line(jv_get(o, addrs[i][0]), &b);
        if (b.len) printf("%-12s %s\n", addrs[i][1], buf_cstr(&b));
        buf_free(&b);
    }
    const jv *p = jv_get(o, "period");
    if (p && p->kind == JV_OBJ) printf("%-12s %s to %s\n", "period", jv_get_str(p, "from"), jv_get_str(p, "to"));
    printf("%-12s %s    due %s\n", "issued", jv_get_str(o, "issue_date") ? jv_get_str(o, "issue_date") : "-",
           jv_get_str(o, "due_date") ? jv_get_str(o, "due_date") : "-");
    printf("%-12s %s\n", "rule set", jv_get_str(o, "rules_version"));
    if (jv_get_str(o, "void_reason")) printf("%-12s %s: %s\n", "voided", jv_get_str(o, "voided_on"), jv_get_str(o, "void_reason"));
    printf("\n%3s  %-10s %-28s %5s %11s %11s  %-13s %5s %9s\n", "#", "KIND", "DESCRIPTION", "QTY", "UNIT PRICE", "AMOUNT", "TAX CATEGORY",
           "RATE", "TAX");
    const jv *lines = jv_get(o, "lines");
    for (size_t i = 0; i < jv_len(lines); i++) {
        const jv *l = jv_at(lines, i);
        char u[MONEY_FMT_MAX], a[MONEY_FMT_MAX], t[MONEY_FMT_MAX], rate[8];
        snprintf(rate, sizeof rate, "%lld%%", (long long)jv_get_int(l, "tax_rate"));
        printf("%3lld  %-10s %-28s %5lld %11s %11s  %-13s %5s %9s\n", (long long)jv_get_int(l, "seq"), jv_get_str(l, "kind"), jv_get_str(l, "description"),
               (long long)jv_get_int(l, "quantity"), yuan(jv_get_int(l, "unit_price"), u), yuan(jv_get_int(l, "amount"), a), jv_get_str(l, "tax_category"), rate,
               yuan(jv_get_int(l, "tax"), t));
        const jv *lp = jv_get(l, "period");
        if (lp && lp->kind == JV_OBJ) printf("%3s  %-10s %s to %s\n", "", "", jv_get_str(lp, "from"), jv_get_str(lp, "to"));
        if (jv_get_int(l, "credited")) printf("%3s  %-10s credited %s\n", "", "", yuan(jv_get_int(l, "credited"), m1));
    }
    static const char *const sums[][2] = {{"net", "net"}, {"tax", "tax"}, {"gross", "total (tax included)"}, {"paid", "paid"},
                                          {"credited", "credited"}, {"written_off", "written off"}, {"balance_due", "balance due"}};
    putchar('\n');
    for (int i = 0; i < 7; i++) {
        if ((i == 4 || i == 5) && !jv_get_int(o, sums[i][0])) continue;
        printf("%60s %11s\n", sums[i][1], yuan(jv_get_int(o, sums[i][0]), m1));
    }
    const jv *al = jv_get(o, "allocations");
    if (jv_len(al)) printf("\nsettled by\n");
    for (size_t i = 0; i < jv_len(al); i++) {
        const jv *x = jv_at(al, i);
        char who[40];
        if (jv_get_int(x, "payment_id")) snprintf(who, sizeof who, "payment %lld", (long long)jv_get_int(x, "payment_id"));
        else snprintf(who, sizeof who, "customer credit");
        printf("  %-20s %11s  %s%s%s\n", who, yuan(jv_get_int(x, "amount"), m1), jv_get_str(x, "created_at"), jv_get_str(x, "reversed_at") ? "  reversed: " : "",
               jv_get_str(x, "reversed_at") ? jv_get_str(x, "reason") : "");
    }
    const jv *cn = jv_get(o, "credit_notes");
    if (jv_len(cn)) printf("\ncredit notes\n");
    for (size_t i = 0; i < jv_len(cn); i++) {
        const jv *x = jv_at(cn, i);
        printf("  %-20s %11s  %s  %s\n", jv_get_str(x, "number"), yuan(jv_get_int(x, "gross"), m1), jv_get_str(x, "issue_date"), jv_get_str(x, "reason"));
    }
}

int cmd_invoice_show(cli *c, err *e)
{
    env x;
    int rc = open_env(c, &x, e);
    if (rc) return rc;
    int64_t id;
    jv *o = NULL;
    rc = invoice_id(&x, c->argv[0], &id, e);
    if (!rc) rc = invoices_get(x.d, id, &x.a, &o, e);
    if (!rc) rc = cli_admin_view(c, &x, "invoice", &o, 1, e);
    if (!rc && c->json) rc = print_json(o, e);
    else if (!rc) print_invoice(o);
    return cli_env_close(&x, rc);
}

int cmd_invoice_explain(cli *c, err *e)
{
    env x;
    int rc = open_env(c, &x, e);
    if (rc) return rc;
    int64_t id;
    jv *o = NULL;
    rc = invoice_id(&x, c->argv[0], &id, e);
    if (!rc) rc = invoices_explain(x.d, id, &x.a, &o, e);
    if (!rc && c->json) rc = print_json(o, e);
    else if (!rc) {
        printf("Invoice %s, made with rule set %s\n", jv_get_str(o, "id"), jv_get_str(o, "rules_version"));
        const jv *lines = jv_get(o, "lines");
        for (size_t i = 0; i < jv_len(lines); i++) {
            const jv *l = jv_at(lines, i);
            char a[MONEY_FMT_MAX];
            printf("\n%lld. %s %s \"%s\"\n", (long long)jv_get_int(l, "seq"), jv_get_str(l, "kind"), yuan(jv_get_int(l, "amount"), a), jv_get_str(l, "description"));
            printf("   step  %s\n   rule  %s (rule set %s)\n", jv_get_str(l, "step"), jv_get_str(l, "rule"), jv_get_str(l, "rules_version"));
            const jv *dt = jv_get(l, "detail");
            if (dt && dt->kind == JV_OBJ && dt->u.obj.n) {
                /* the rule's own words, one member a line */
                printf("   why\n");
                for (size_t k = 0; k < dt->u.obj.n; k++) {
                    const jv_member *m = &dt->u.obj.m[k];
                    buf b = {0};
                    if (m->val->kind == JV_STR) buf_append(&b, m->val->u.str.s, m->val->u.str.len);
                    else json_write(&b, m->val);
                    printf("     %.*s: %s\n", (int)m->klen, m->key, buf_cstr(&b));
                    buf_free(&b);
                }
            } else {
                printf("   (the rule gave no further detail)\n");
            }
        }
    }
    return cli_env_close(&x, rc);
}

/* One change to an invoice: the invoice before and after, audited. */
typedef enum { CHANGE_VOID, CHANGE_WRITE_OFF } change_kind;

static int invoice_change(cli *c, change_kind kind, err *e)
{
    const char *reason = NULL;
    int rc = need(c, "reason", kind == CHANGE_VOID ? "invoice void" : "invoice write-off", &reason, e);
    if (rc) return rc;
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    int64_t id;
    char by[96], day[11];
    cli_actor(by, sizeof by);
    today(day);
    jv *before = NULL, *after = NULL;
    rc = invoice_id(&x, c->argv[0], &id, e);
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = invoices_get(x.d, id, &x.a, &before, e);
    if (!rc) rc = kind == CHANGE_VOID ? invoices_void(x.d, id, reason, by, e) : invoices_write_off(x.d, id, reason, day, by, e);
    if (!rc) rc = invoices_get(x.d, id, &x.a, &after, e);
    audit_event ev = {.action = kind == CHANGE_VOID ? "invoice.void" : "invoice.write_off", .object_type = "invoice",
                      .object_id = c->argv[0], .before = before, .after = after};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    if (!rc && c->json) rc = cli_admin_view(c, &x, "invoice", &after, 1, e) ? e->code : print_json(after, e);
    else if (!rc) {
        char m[MONEY_FMT_MAX];
        if (kind == CHANGE_VOID) printf("invoice %s void: %s is no longer owed\n", jv_get_str(after, "id"), yuan(jv_get_int(after, "gross"), m));
        else printf("invoice %s written off: %s\n", jv_get_str(after, "id"), yuan(jv_get_int(after, "written_off"), m));
    }
    return cli_env_close(&x, rc);
}

int cmd_invoice_void(cli *c, err *e) { return invoice_change(c, CHANGE_VOID, e); }
int cmd_invoice_write_off(cli *c, err *e) { return invoice_change(c, CHANGE_WRITE_OFF, e); }

/* --lines 1:10.00,3:6.03 */
static int parse_credit_lines(env *x, int64_t invoice, const char *spec, credit_line_in **out, size_t *n, err *e)
{
    size_t cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    credit_line_in *cl = jv_alloc(&x->a, cap * sizeof *cl);
    if (!cl) return ERR_NOMEM_RET(e);
    *n = 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item) return err_set(e, ERR_USAGE, "--lines takes SEQ:YUAN,... (e.g. 1:10.00,3:6.03)");
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strchr(item, ':'), *stop;
        if (!colon) return err_set(e, ERR_USAGE, "--lines: '%s' is not SEQ:YUAN", item);
        *colon = '\0';
        errno = 0;
        long long seq = strtoll(item, &stop, 10);
        if (errno || !item[0] || *stop || seq < 1) return err_set(e, ERR_USAGE, "--lines: '%s' is not a line number", item);
        char field[48];
        snprintf(field, sizeof field, "--lines %lld", seq);
        int rc = invoices_line_id(x->d, invoice, seq, field, &cl[*n].invoice_line_id, e);
        if (!rc) rc = money_opt("lines", colon + 1, &cl[*n].amount, e);
        if (rc) return rc;
        (*n)++;
        p = end ? end + 1 : p + len;
    }
    *out = cl;
    return 0;
}

int cmd_invoice_credit(cli *c, err *e)
{
    const char *reason = NULL;
    int rc = need(c, "reason", "invoice credit", &reason, e);
    if (rc) return rc;
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    int64_t id, note_id = 0;
    char by[96], day[11], number[INVOICE_NUMBER_MAX];
    cli_actor(by, sizeof by);
    today(day);
    credit_line_in *lines = NULL;
    size_t n = 0;
    jv *before = NULL, *after = NULL, *note = NULL;
    rc = invoice_id(&x, c->argv[0], &id, e);
    const char *spec = cli_opt_value(c, "lines");
    if (!rc && spec) rc = parse_credit_lines(&x, id, spec, &lines, &n, e);
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = invoices_get(x.d, id, &x.a, &before, e);
    if (!rc) rc = invoices_credit(x.d, id, lines, n, reason, day, by, &note_id, number, e);
    if (!rc) rc = invoices_get(x.d, id, &x.a, &after, e);
    if (!rc) rc = invoices_credit_note_get(x.d, note_id, &x.a, &note, e);
    audit_event ev = {.action = "invoice.credit", .object_type = "invoice", .object_id = c->argv[0], .before = before, .after = after,
                      .detail = note};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    if (!rc && c->json) rc = print_json(note, e);
    else if (!rc) {
        char g[MONEY_FMT_MAX], t[MONEY_FMT_MAX], d[MONEY_FMT_MAX];
        printf("credit note %s against %s: %s (tax %s); %s now due\n", number, c->argv[0], yuan(jv_get_int(note, "gross"), g),
               yuan(jv_get_int(note, "tax"), t), yuan(jv_get_int(after, "balance_due"), d));
    }
    return cli_env_close(&x, rc);
}

/* ------------------------------------------------------------------ ledger */

int cmd_ledger_show(cli *c, err *e)
{
    env x;
    int rc = open_env(c, &x, e);
    if (rc) return rc;
    int64_t customer;
    ledger_balance b;
    rc = customers_id_by_code(x.d, c->argv[0], &customer, e);
    if (!rc) rc = ledger_balance_of(x.d, customer, &b, e);
    /* every entry, oldest first: a statement */
    jv *all = jv_arr(&x.a);
    char cursor[INVOICES_CURSOR_MAX] = "";
    if (!all && !rc) rc = ERR_NOMEM_RET(e);
    while (!rc) {
        jv *page;
        char next[INVOICES_CURSOR_MAX];
        rc = ledger_list(x.d, customer, cursor[0] ? cursor : NULL, 500, &x.a, &page, next, sizeof next, e);
        for (size_t i = 0; !rc && i < jv_len(page); i++)
            if (jv_arr_push(&x.a, all, page->u.arr.items[i])) rc = ERR_NOMEM_RET(e);
        if (rc || !next[0]) break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    char code[CUSTOMER_CODE_MAX];
    if (!rc) rc = customers_code_by_id(x.d, customer, code, e);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 1);
        jw_obj_open(&w);
        jw_kv_str(&w, "customer", code);
        jw_kv_int(&w, "balance", b.balance);
        jw_kv_int(&w, "open", b.open);
        jw_kv_int(&w, "credit", b.credit);
        jw_kv_int(&w, "deposits_held", b.deposits_held);
        jw_key(&w, "entries");
        jw_jv(&w, all);
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        char m1[MONEY_FMT_MAX], m2[MONEY_FMT_MAX], m3[MONEY_FMT_MAX], m4[MONEY_FMT_MAX];
        printf("customer %s: balance %s (owed when positive), open invoices %s, credit %s, deposits held %s\n\n", code, yuan(b.balance, m1),
               yuan(b.open, m2), yuan(b.credit, m3), yuan(b.deposits_held, m4));
        printf("%-10s %-8s %-18s %12s %12s  %s\n", "DATE", "ACCOUNT", "KIND", "AMOUNT", "BALANCE", "DOCUMENT");
        for (size_t i = jv_len(all); i-- > 0;) {
            const jv *o = jv_at(all, i);
            char doc[160] = "";
            if (jv_get_str(o, "invoice")) snprintf(doc, sizeof doc, "%s", jv_get_str(o, "invoice"));
            if (jv_get_str(o, "credit_note")) snprintf(doc, sizeof doc, "%s", jv_get_str(o, "credit_note"));
            if (jv_get_int(o, "payment_id")) snprintf(doc, sizeof doc, "payment %lld", (long long)jv_get_int(o, "payment_id"));
            if (jv_get_int(o, "deposit_id")) snprintf(doc + strlen(doc), sizeof doc - strlen(doc), "%sdeposit %lld", doc[0] ? ", " : "",
                                                (long long)jv_get_int(o, "deposit_id"));
            if (jv_get_str(o, "reason"))
                snprintf(doc + strlen(doc), sizeof doc - strlen(doc), "%s%s%s%s", doc[0] ? "; " : "", jv_get_str(o, "reason"),
                         jv_get_str(o, "approved_by") ? ", approved by " : "", jv_get_str(o, "approved_by") ? jv_get_str(o, "approved_by") : "");
            printf("%-10s %-8s %-18s %12s %12s  %s\n", jv_get_str(o, "entry_date"), jv_get_str(o, "account"), jv_get_str(o, "kind"), yuan(jv_get_int(o, "amount"), m1),
                   yuan(jv_get_int(o, "balance_after"), m2), doc);
        }
    }
    return cli_env_close(&x, rc);
}

int cmd_ledger_adjust(cli *c, err *e)
{
    const char *amount_s = NULL, *reason = NULL, *approver = NULL;
    int rc = need(c, "amount", "ledger adjust", &amount_s, e);
    if (!rc) rc = need(c, "reason", "ledger adjust", &reason, e);
    if (!rc) rc = need(c, "approved-by", "ledger adjust", &approver, e);
    if (rc) return rc;
    int64_t amount;
    if ((rc = money_opt("amount", amount_s, &amount, e))) return rc;
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    int64_t customer, entry = 0;
    char by[96], day[11];
    cli_actor(by, sizeof by);
    today(day);
    ledger_balance b0, b1;
    rc = customers_id_by_code(x.d, c->argv[0], &customer, e);
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = ledger_balance_of(x.d, customer, &b0, e);
    if (!rc) rc = ledger_adjust(x.d, customer, amount, reason, approver, day, by, &entry, e);
    if (!rc) rc = ledger_balance_of(x.d, customer, &b1, e);
    jv *before = jv_obj(&x.a), *after = jv_obj(&x.a);
    if (!rc && (!before || !after || jv_obj_set_int(&x.a, before, "balance", b0.balance) || jv_obj_set_int(&x.a, before, "credit", b0.credit) ||
                jv_obj_set_int(&x.a, after, "balance", b1.balance) || jv_obj_set_int(&x.a, after, "credit", b1.credit) ||
                jv_obj_set_int(&x.a, after, "entry", entry) || jv_obj_set_int(&x.a, after, "amount", amount) ||
                jv_obj_set_str(&x.a, after, "reason", reason) || jv_obj_set_str(&x.a, after, "approved_by", approver)))
        rc = ERR_NOMEM_RET(e);
    char code[CUSTOMER_CODE_MAX];
    if (!rc) rc = customers_code_by_id(x.d, customer, code, e);
    audit_event ev = {.action = "ledger.adjust", .object_type = "customer", .object_id = code, .before = before, .after = after};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    if (!rc && c->json) rc = print_json(after, e);
    else if (!rc) {
        char m1[MONEY_FMT_MAX], m2[MONEY_FMT_MAX], m3[MONEY_FMT_MAX];
        printf("adjustment of %s for %s (entry %lld): balance %s, credit %s\n", yuan(amount, m1), code, (long long)entry, yuan(b1.balance, m2),
               yuan(b1.credit, m3));
    }
    return cli_env_close(&x, rc);
}

typedef struct verify_print {
    db *d;
    jv_arena *a;
    jv *list;
    int json;
} verify_print;

static void on_problem(void *ud, int64_t customer_id, const char *what)
{
    verify_print *vp = ud;
    char code[CUSTOMER_CODE_MAX];
    err e;
    if (customers_code_by_id(vp->d, customer_id, code, &e)) snprintf(code, sizeof code, "#%lld", (long long)customer_id);
    if (!vp->json) {
        printf("%s: %s\n", code, what);
        return;
    }
    jv *x = jv_obj_sized(vp->a, 2);
    if (x && !jv_obj_set_str(vp->a, x, "customer", code) && !jv_obj_set_str(vp->a, x, "problem", what)) jv_arr_push(vp->a, vp->list, x);
}

int cmd_ledger_verify(cli *c, err *e)
{
    env x;
    int rc = open_env(c, &x, e);
    if (rc) return rc;
    int64_t customer = 0;
    if (c->argc) rc = customers_id_by_code(x.d, c->argv[0], &customer, e);
    verify_print vp = {.d = x.d, .a = &x.a, .list = jv_arr(&x.a), .json = c->json};
    ledger_report r;
    if (!rc) rc = ledger_verify(x.d, customer, on_problem, &vp, &r, e);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 1);
        jw_obj_open(&w);
        jw_kv_bool(&w, "ok", r.problems == 0);
        jw_kv_int(&w, "customers", r.customers);
        jw_kv_int(&w, "entries", r.entries);
        jw_kv_int(&w, "days", r.days);
        jw_kv_int(&w, "problems", r.problems);
        jw_key(&w, "disagreements");
        jw_jv(&w, vp.list);
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
        if (!rc && r.problems) rc = 1;   /* explained by the output */
    } else if (!rc) {
        printf("%lld customers, %lld entries on %lld business days checked\n", (long long)r.customers, (long long)r.entries, (long long)r.days);
        if (r.problems)
            rc = err_set(e, ERR_CONFLICT, "%lld disagreement%s between the ledger and the documents (listed above)", (long long)r.problems,
                         r.problems == 1 ? "" : "s");
        else printf("the ledger, the invoices, the credit notes, the payments and the allocations agree\n");
    }
    fflush(stdout);
    return cli_env_close(&x, rc);
}

/* ---------------------------------------------------------------- payments */

int cmd_payment_record(cli *c, err *e)
{
    const char *amount_s = NULL, *receipt = NULL;
    int rc = need(c, "amount", "payment record", &amount_s, e);
    if (!rc) rc = need(c, "receipt", "payment record", &receipt, e);
    if (rc) return rc;
    const char *channel = cli_opt_value(c, "channel") ? cli_opt_value(c, "channel") : "counter";
    if (strcmp(channel, "counter") && strcmp(channel, "bank")) return err_set(e, ERR_USAGE, "--channel is counter or bank");
    char day[11];
    today(day);
    const char *date = cli_opt_value(c, "date") ? cli_opt_value(c, "date") : day;
    int32_t dn;
    if (date_parse(date, strlen(date), &dn, e)) return err_set(e, ERR_USAGE, "--date must be a date YYYY-MM-DD, not '%s'", date);
    if (strcmp(date, day) > 0) return err_set(e, ERR_INVALID, "--date %s is in the future (today is %s)", date, day);
    int64_t amount;
    if ((rc = money_opt("amount", amount_s, &amount, e))) return rc;
    if (amount <= 0) return err_set(e, ERR_INVALID, "--amount: a payment is more than 0.00");
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    int64_t customer, invoice = 0, pid = 0;
    char by[96];
    cli_actor(by, sizeof by);
    rc = customers_id_by_code(x.d, c->argv[0], &customer, e);
    if (!rc && cli_opt_value(c, "invoice")) rc = invoices_id_by_number(x.d, cli_opt_value(c, "invoice"), &invoice, e);
    ruleset *rs = NULL;
    if (!rc) rc = cli_open_rules(c, &rs, e);
    payment_new in = {.customer_id = customer, .channel = channel, .channel_txn_id = receipt, .amount = amount, .invoice_id = invoice,
                      .entry_date = date, .note = cli_opt_value(c, "note"), .by = by, .rules = rs};
    jv *obj = NULL;
    int restored = 0;
    if (!rc) rc = db_begin(x.d, e);
    if (!rc) rc = payments_record(x.d, &in, &pid, &restored, e);
    if (rs) ruleset_unref(rs);
    if (!rc) rc = payments_get(x.d, pid, &x.a, &obj, e);
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)pid);
    audit_event ev = {.action = "payment.record", .object_type = "payment", .object_id = oid, .after = obj};
    if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    if (!rc) rc = db_commit(x.d, e);
    if (!rc && c->json) rc = print_json(obj, e);
    else if (!rc) {
        char m1[MONEY_FMT_MAX], m2[MONEY_FMT_MAX];
        printf("payment %lld: %s from %s (%s %s)\n", (long long)pid, yuan(amount, m1), jv_get_str(obj, "customer"), channel, receipt);
        const jv *al = jv_get(obj, "allocations");
        for (size_t i = 0; i < jv_len(al); i++)
            printf("  pays %s %s\n", jv_get_str(jv_at(al, i), "invoice"), yuan(jv_get_int(jv_at(al, i), "amount"), m1));
        if (jv_get_int(obj, "unallocated")) printf("  %s is credit for the next bills\n", yuan(jv_get_int(obj, "unallocated"), m2));
        if (restored) printf("  nothing is overdue any more: the customer and the line are active again\n");
    }
    return cli_env_close(&x, rc);
}
