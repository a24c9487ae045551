/* cmd_pay.c - payment channel commands: `pay inspect` checks a captured
 * notification offline through exactly the plugin calls the live route
 * makes, and says which check fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "buf.h"
#include "channels.h"
#include "cli.h"
#include "date.h"
#include "httpc.h"
#include "json.h"
#include "money.h"
#include "payments.h"
#include "reconcile.h"
#include "rules.h"
#include "sandbox.h"
#include "vault.h"

static int read_all(const char *path, buf *out, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, ERR_IO, "cannot read %s", path);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(out, chunk, n) || out->len > (4u << 20)) rc = err_set(e, ERR_LIMIT, "%s is larger than 4 MiB", path);
    if (!rc && ferror(f)) rc = err_set(e, ERR_IO, "cannot read %s", path);
    fclose(f);
    return rc;
}

#define MAX_HEADERS 64

/* "Name: value" lines; blank lines and a trailing CR are ignored. */
static int parse_headers(char *text, paychan_kv *kv, size_t *n, err *e)
{
    *n = 0;
    int line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t len = strlen(l);
        if (len && l[len - 1] == '\r') l[--len] = 0;
        if (!len) continue;
        char *colon = strchr(l, ':');
        if (!colon || colon == l) return err_set(e, ERR_USAGE, "--headers line %d is not `Name: value`", line);
        if (*n == MAX_HEADERS) return err_set(e, ERR_USAGE, "--headers: more than %d headers", MAX_HEADERS);
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        kv[(*n)++] = (paychan_kv){l, v};
    }
    return 0;
}

static const char *state_name(paychan_state s)
{
    return s == PAYCHAN_PAID ? "paid" : s == PAYCHAN_REFUNDED ? "refunded" : "not_paid";
}

int cmd_pay_inspect(cli *c, err *e)
{
    const char *name = cli_opt_value(c, "channel"), *key = cli_opt_value(c, "key");
    const char *apiv3 = cli_opt_value(c, "apiv3-key"), *hfile = cli_opt_value(c, "headers");
    const char *bfile = cli_opt_value(c, "body"), *at = cli_opt_value(c, "at");
    if (!name) return err_set(e, ERR_USAGE, "--channel is required (alipay or wechatpay)");
    if (!key) return err_set(e, ERR_USAGE, "--key is required: the channel's public key or certificate (PEM)");
    if (!bfile) return err_set(e, ERR_USAGE, "--body is required: the request body exactly as received");
    int64_t now = (int64_t)time(NULL);
    if (at) {
        char *end;
        long long v = strtoll(at, &end, 10);
        if (!*at || *end || v < 0) return err_set(e, ERR_USAGE, "--at must be a Unix time, got '%s'", at);
        now = v;
    }
    char dir[CFG_PATH];
    channels_dir(&c->cfg, dir, sizeof dir);
    int rc = channels_load(dir, NULL, e);
    if (rc) return rc;
    if (!channels_find(name)) return err_set(e, ERR_USAGE, "no payment channel '%s' in %s", name, dir);

    paychan_kv set[2] = {{"public_key", key}, {"apiv3_key", apiv3}};
    paychan_settings settings = {set, apiv3 ? 2 : 1};
    channel_handle ch;
    if ((rc = channel_open(name, &settings, &ch, e))) return rc;

    buf body = {0}, hdr = {0};
    paychan_kv headers[MAX_HEADERS];
    size_t nh = 0;
    rc = read_all(bfile, &body, e);
    if (!rc && hfile) rc = read_all(hfile, &hdr, e);
    if (!rc && hfile) rc = buf_putc(&hdr, 0) ? err_set(e, ERR_NOMEM, "out of memory") : parse_headers(hdr.data, headers, &nh, e);
    paychan_notice nt;
    paychan_error pe;
    memset(&nt, 0, sizeof nt);
    memset(&pe, 0, sizeof pe);
    int verified = 0;
    if (!rc) {
        paychan_request req = {headers, nh, body.data ? body.data : "", body.len};
        verified = ch.p->verify_notification(ch.h, &req, now, &nt, &pe) == 0;
    }
    paychan_reply reply;
    if (!rc) ch.p->reply(ch.h, verified, verified ? NULL : &pe, &reply);
    if (!rc && verified) {
        if (c->json) {
            jw w;
            jw_init(&w, 1);
            jw_obj_open(&w);
            jw_kv_bool(&w, "verified", 1);
            jw_kv_str(&w, "channel", name);
            jw_kv_str(&w, "event", nt.event);
            jw_kv_str(&w, "state", state_name(nt.state));
            jw_kv_str(&w, "status", nt.status);
            jw_kv_str(&w, "out_trade_no", nt.out_trade_no);
            jw_kv_str(&w, "channel_txn_id", nt.channel_txn_id);
            jw_kv_int(&w, "amount", nt.amount);
            jw_kv_str(&w, "currency", nt.currency);
            jw_kv_str(&w, "app_id", nt.app_id);
            jw_kv_str(&w, "merchant_id", nt.merchant_id);
            jw_kv_str(&w, "paid_at", nt.paid_at);
            jw_key(&w, "fields");
            jw_raw_num(&w, nt.fields_json ? nt.fields_json : "{}"); /* already JSON */
            jw_kv_int(&w, "reply_status", reply.status);
            jw_obj_close(&w);
            rc = cli_print_json(&w, e);
        } else {
            printf("verified: %s notification %s\n", name, nt.event[0] ? nt.event : "(no event type)");
            printf("  state           %s (%s)\n", state_name(nt.state), nt.status);
            if (nt.out_trade_no[0] || nt.channel_txn_id[0]) {
                printf("  out_trade_no    %s\n  channel txn id  %s\n", nt.out_trade_no, nt.channel_txn_id);
                printf("  amount          %lld.%02lld %s (%lld fen)\n", (long long)(nt.amount / 100),
                       (long long)(nt.amount % 100), nt.currency, (long long)nt.amount);
                printf("  app / merchant  %s / %s\n  paid at         %s\n", nt.app_id, nt.merchant_id, nt.paid_at);
            }
            printf("  fields          %s\n", nt.fields_json ? nt.fields_json : "{}");
            printf("  reply           %d %s\n", reply.status, reply.body);
        }
    } else if (!rc) {
        char line[512];
        channels_describe(&pe, line, sizeof line);
        if (c->json) {
            jw w;
            jw_init(&w, 1);
            jw_obj_open(&w);
            jw_kv_bool(&w, "verified", 0);
            jw_kv_str(&w, "channel", name);
            jw_kv_str(&w, "check", pe.check);
            jw_kv_str(&w, "field", pe.field);
            jw_kv_str(&w, "message", pe.message);
            jw_kv_int(&w, "reply_status", reply.status);
            jw_kv_str(&w, "reply_body", reply.body);
            jw_obj_close(&w);
            cli_print_json(&w, e);
        }
        rc = err_field(e, ERR_INVALID, "refused", pe.field, "refused: %s (the channel would get %d %s)", line, reply.status,
                       reply.body);
    }
    free(nt.fields_json);
    buf_free(&body);
    buf_free(&hdr);
    channel_close(&ch);
    return rc;
}

/* Asks the payment's channel to give `amount` back. The refund number is
 * ours and the same until a refund is recorded, so asking again after a
 * failure here refunds once at the channel. */
static int refund_through_channel(cli *c, const payment_refundable *pr, long long pid, int64_t amount, const char *reason,
                                  paychan_refund_result *res, err *e)
{
    channel_handle ch;
    int rc = channel_open_configured(&c->cfg, pr->channel, &ch, e);
    if (rc) return rc;
    if (!ch.p->refund || !ch.p->refund_response) {
        channel_close(&ch);
        return err_set(e, ERR_CONFLICT, "channel %s gives no refunds through bandbill", pr->channel);
    }
    char no[48];
    snprintf(no, sizeof no, "BBR%lldN%lld", pid, (long long)pr->refunds + 1);
    paychan_refund r = {.out_trade_no = pr->out_trade_no[0] ? pr->out_trade_no : NULL, .channel_txn_id = pr->channel_txn_id,
                        .out_refund_no = no, .amount = amount, .total = pr->amount, .reason = reason};
    paychan_http h;
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    char line[400];
    if (ch.p->refund(ch.h, &r, (int64_t)time(NULL), &h, &pe) != PAYCHAN_HTTP) {
        channels_describe(&pe, line, sizeof line);
        channel_close(&ch);
        return err_set(e, ERR_INVALID, "%s refund: %s", pr->channel, line);
    }
    httpc_answer ans;
    rc = httpc_fetch(h.method, h.url, h.headers, h.body, h.body_len, 15, &ans, e);
    free(h.body);
    if (!rc && !ans.status) rc = err_set(e, ERR_IO, "%s did not answer: %s", pr->channel, ans.error);
    paychan_request resp = {ans.headers, ans.nheaders, ans.body ? ans.body : "", ans.len};
    if (!rc && ch.p->refund_response(ch.h, &r, ans.status, &resp, (int64_t)time(NULL), res, &pe)) {
        channels_describe(&pe, line, sizeof line);
        rc = err_set(e, ERR_CONFLICT, "%s refused the refund: %s", pr->channel, line);
    }
    httpc_answer_free(&ans);
    channel_close(&ch);
    return rc;
}

/* `payment refund ID --amount YUAN --reason TEXT [--date D]`: money paid
 * back at the counter or by transfer, recorded with its ledger entry. */
int cmd_payment_refund(cli *c, err *e)
{
    const char *amount_s = cli_opt_value(c, "amount"), *reason = cli_opt_value(c, "reason");
    if (!amount_s) return err_set(e, ERR_USAGE, "payment refund needs --amount");
    if (!reason || !reason[strspn(reason, " \t")]) return err_set(e, ERR_USAGE, "payment refund needs --reason");
    char *end;
    long long pid = strtoll(c->argv[0], &end, 10);
    if (!c->argv[0][0] || *end || pid <= 0) return err_set(e, ERR_USAGE, "PAYMENT is a payment id, got '%s'", c->argv[0]);
    int64_t amount;
    if (money_parse(amount_s, strlen(amount_s), &amount, e)) return err_prefix(e, "--amount");
    char day[11];
    date_format(date_of_time(time(NULL)), day);
    const char *date = cli_opt_value(c, "date") ? cli_opt_value(c, "date") : day;
    int32_t dn;
    if (date_parse(date, strlen(date), &dn, e)) return err_set(e, ERR_USAGE, "--date must be a date YYYY-MM-DD, not '%s'", date);
    if (strcmp(date, day) > 0) return err_set(e, ERR_INVALID, "--date %s is in the future (today is %s)", date, day);
    db *d;
    vault *v = NULL;
    int rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    rc = cli_open_vault(c, &v, e);
    char by[96];
    cli_actor(by, sizeof by);
    payment_refund in = {.payment_id = pid, .amount = amount, .reason = reason, .entry_date = date, .by = by};
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *obj = NULL;
    char noted[700];
    payment_refundable pr;
    if (!rc) rc = payments_refundable(d, pid, &pr, e);
    if (!rc && strcmp(pr.channel, "counter") && strcmp(pr.channel, "bank")) {
        /* the channel gives the money back first; only what it took is recorded */
        if (amount > pr.refundable)
            rc = err_field(e, ERR_CONFLICT, "exceeds_refundable", "amount", "at most %lld.%02lld can be refunded",
                           (long long)(pr.refundable / 100), (long long)(pr.refundable % 100));
        paychan_refund_result res;
        if (!rc) rc = refund_through_channel(c, &pr, pid, amount, reason, &res, e);
        if (!rc) {
            snprintf(noted, sizeof noted, "%s (%s refund %s, %s)", reason, pr.channel, res.refund_id, res.status);
            in.reason = noted;
            in.via_channel = 1;
        }
    }
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = payments_refund(d, &in, e);
    if (!rc) rc = payments_get(d, pid, &a, &obj, e);
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", pid);
    jv *detail = rc ? NULL : jv_obj(&a);
    if (!rc && (!detail || jv_obj_set_int(&a, detail, "amount", amount) || jv_obj_set_str(&a, detail, "reason", reason)))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    audit_event ev = {.action = "payment.refund", .object_type = "payment", .object_id = oid, .after = obj, .detail = detail};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    else if (db_in_tx(d)) db_rollback(d);
    if (!rc) {
        if (c->json) {
            jw w;
            jw_init(&w, 1);
            jw_jv(&w, obj);
            rc = cli_print_json(&w, e);
        } else {
            char m[MONEY_FMT_MAX], r[MONEY_FMT_MAX];
            money_format(amount, m);
            const jv *rf = jv_get(obj, "refunded");
            money_format(rf && rf->kind == JV_INT ? rf->u.i : 0, r);
            printf("payment %lld: %s refunded (%s in all)\n", pid, m, r);
        }
    }
    jv_arena_free(&a);
    vault_close(v);
    db_close(d);
    return rc;
}

typedef struct rows {
    paychan_statement_row *v;
    size_t n, cap;
} rows;

static int keep_row(void *arg, const paychan_statement_row *r)
{
    rows *rs = arg;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        paychan_statement_row *v = realloc(rs->v, cap * sizeof *v);
        if (!v) return 1;
        rs->v = v;
        rs->cap = cap;
    }
    rs->v[rs->n++] = *r;
    return 0;
}

static void print_items(const char *title, const jv *list)
{
    if (!jv_len(list)) return;
    printf("%s:\n", title);
    for (size_t i = 0; i < jv_len(list); i++) {
        const jv *o = jv_at(list, i);
        const jv *st = jv_get(o, "statement"), *here = jv_get(o, "here"), *pid = jv_get(o, "payment_id");
        char a[MONEY_FMT_MAX], b[MONEY_FMT_MAX];
        money_format(st ? st->u.i : 0, a);
        money_format(here ? here->u.i : 0, b);
        printf("  %-32s", jv_get(o, "channel_txn_id") ? jv_get(o, "channel_txn_id")->u.str.s : "");
        if (st) printf("  statement %10s", a);
        if (here) printf("  here %10s", b);
        if (pid) printf("  payment %lld", (long long)pid->u.i);
        if (jv_get(o, "out_trade_no")) printf("  order %s", jv_get(o, "out_trade_no")->u.str.s);
        printf("\n");
    }
}

/* `reconcile --channel C --date D FILE`: the channel's daily statement
 * against the payments recorded here. */
int cmd_reconcile(cli *c, err *e)
{
    const char *name = cli_opt_value(c, "channel"), *date = cli_opt_value(c, "date");
    if (!name) return err_set(e, ERR_USAGE, "--channel is required (alipay or wechatpay)");
    int32_t dn;
    if (!date || date_parse(date, strlen(date), &dn, e)) return err_set(e, ERR_USAGE, "--date must be a date YYYY-MM-DD");
    buf text = {0};
    int rc = read_all(c->argv[0], &text, e);
    channel_handle ch = {0};
    if (!rc) rc = channel_open_configured(&c->cfg, name, &ch, e);
    if (!rc && !ch.p->parse_statement) rc = err_set(e, ERR_USAGE, "channel %s reads no statements", name);
    rows rs = {0};
    paychan_error pe;
    memset(&pe, 0, sizeof pe);
    if (!rc && ch.p->parse_statement(ch.h, text.data ? text.data : "", text.len, keep_row, &rs, &pe)) {
        char line[400];
        channels_describe(&pe, line, sizeof line);
        rc = err_set(e, ERR_INVALID, "%s: %s", c->argv[0], line);
    }
    db *d = NULL;
    if (!rc) rc = cli_open_db(c, &d, e);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *report = NULL;
    reconcile_totals t;
    if (!rc) rc = reconcile_run(d, name, date, rs.v, rs.n, &a, &report, &t, e);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 1);
        jw_obj_open(&w);
        jw_kv_str(&w, "channel", name);
        jw_kv_str(&w, "date", date);
        jw_kv_int(&w, "lines", (int64_t)rs.n);
        jw_kv_int(&w, "matched", t.matched);
        jw_kv_int(&w, "matched_amount", t.matched_fen);
        jw_kv_int(&w, "refunds_matched", t.refunds_matched);
        for (size_t i = 0; i < report->u.obj.n; i++) {
            jw_key(&w, report->u.obj.m[i].key);
            jw_jv(&w, report->u.obj.m[i].val);
        }
        jw_obj_close(&w);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        char m[MONEY_FMT_MAX];
        money_format(t.matched_fen, m);
        printf("%s statement of %s: %zu lines; %lld matched (%s), %lld refunds matched\n", name, date, rs.n,
               (long long)t.matched, m, (long long)t.refunds_matched);
        printf("%lld amount mismatches, %lld missing here, %lld missing there, %lld refund mismatches\n", (long long)t.mismatched,
               (long long)t.missing_here, (long long)t.missing_there, (long long)t.refunds_mismatched);
        print_items("amount mismatch", jv_get(report, "amount_mismatch"));
        print_items("missing here (on the statement, not recorded: a lost notification?)", jv_get(report, "missing_here"));
        print_items("missing there (recorded here, not on the statement)", jv_get(report, "missing_there"));
        print_items("refund mismatch", jv_get(report, "refund_mismatch"));
    }
    jv_arena_free(&a);
    free(rs.v);
    buf_free(&text);
    if (ch.p) channel_close(&ch);
    if (d) db_close(d);
    return rc;
}

/* `sandbox [--listen HOST:PORT] [--daemon URL] [--dir DIR]`: makes the
 * keys and channels.ini once, then plays Alipay and WeChat Pay. */
int cmd_sandbox(cli *c, err *e)
{
    const char *listen = cli_opt_value(c, "listen") ? cli_opt_value(c, "listen") : "127.0.0.1:8090";
    const char *daemon = cli_opt_value(c, "daemon") ? cli_opt_value(c, "daemon") : "http://127.0.0.1:8080";
    char dir[CFG_PATH];
    if (cli_opt_value(c, "dir")) snprintf(dir, sizeof dir, "%s", cli_opt_value(c, "dir"));
    else snprintf(dir, sizeof dir, "%s/sandbox", c->cfg.var_dir);
    int rc = sandbox_init(dir, listen, daemon, e);
    if (rc) return rc;
    fprintf(stderr, "sandbox: the channels' settings are in %s/channels.ini: serve with --config %s/channels.ini\n", dir, dir);
    if (cli_opt_value(c, "init-only")) return 0;
    return sandbox_serve(dir, listen, e);
}
