/* dunning.c - the daily collection pass (see dunning.h). */
#include "dunning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "customers.h"
#include "date.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "netstate.h"
#include "notify.h"
#include "outbox.h"
#include "rules.h"

/* The earliest stage is some days before the due date; no ladder starts
 * earlier than this. */
#define LOOKAHEAD_DAYS 31
#define BATCH 512

typedef struct bill {
    int64_t id, customer_id, balance_due;
    char number[40], due[11], code[24], status[16];
    char plan[48], billing[12];   /* of the bill's subscription; "" for a bill of none */
} bill;

/* What one batch did, stage by stage: counted in /metrics once the batch
 * has committed, so a rolled-back batch counts nothing. */
#define MAX_TALLIES 32
typedef struct tallies {
    struct {
        char stage[48];
        int done;
        int64_t n;
    } t[MAX_TALLIES];
    int n;
    int64_t failed;
} tallies;

static void tally(tallies *t, const char *stage, int done)
{
    int i;
    for (i = 0; i < t->n; i++)
        if (t->t[i].done == done && !strcmp(t->t[i].stage, stage)) break;
    if (i == t->n && t->n >= MAX_TALLIES - 1) {
        /* a ladder with more stages than this is still counted, as "other" */
        stage = "other";
        for (i = 0; i < t->n; i++)
            if (t->t[i].done == done && !strcmp(t->t[i].stage, stage)) break;
    }
    if (i == t->n) {
        t->n++;
        snprintf(t->t[i].stage, sizeof t->t[i].stage, "%s", stage);
        t->t[i].done = done;
        t->t[i].n = 0;
    }
    t->t[i].n++;
}

static void tallies_flush(tallies *t)
{
    for (int i = 0; i < t->n; i++) {
        char esc[96], label[160];
        metrics_escape(t->t[i].stage, esc, sizeof esc);
        snprintf(label, sizeof label, "stage=\"%s\",result=\"%s\"", esc, t->t[i].done ? "done" : "skipped");
        metric_add(metrics_counter("bandbill_dunning_stages_total", "Ladder stages recorded, by stage and result (done or skipped)",
                                   label),
                   (uint64_t)t->t[i].n);
    }
    if (t->failed)
        metric_add(metrics_counter("bandbill_dunning_rule_failures_total", "Unpaid bills whose dunning rule failed", ""),
                   (uint64_t)t->failed);
    memset(t, 0, sizeof *t);
}

/* What the rule may ask; anything else refuses that bill's stage. */
static int check_action(const jv *a, char *why, size_t n)
{
    const char *kind = jv_get_str(a, "kind");
    if (!kind) return snprintf(why, n, "an action without a kind"), -1;
    if (!strcmp(kind, "notify")) {
        const char *t = jv_get_str(a, "template");
        if (!t || !t[0] || strlen(t) > 40 || strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(t))
            return snprintf(why, n, "notify needs a template (a-z 0-9 _)"), -1;
        const jv *cl = jv_get(a, "channels");
        if (cl && (cl->kind != JV_ARR || jv_len(cl) < 1 || jv_len(cl) > NOTIFY_CHANNELS))
            return snprintf(why, n, "notify's channels is a list of 1 to %d of log, sms, email, wechat", NOTIFY_CHANNELS), -1;
        for (size_t i = 0; cl && i < jv_len(cl); i++) {
            const jv *c = jv_at(cl, i);
            int known = 0;
            for (int k = 0; c->kind == JV_STR && k < NOTIFY_CHANNELS; k++) known |= !strcmp(c->u.str.s, notify_channel_names[k]);
            if (!known) return snprintf(why, n, "notify's channels[%zu] is not log, sms, email or wechat", i + 1), -1;
        }
        return 0;
    }
    if (!strcmp(kind, "status")) {
        const char *to = jv_get_str(a, "to");
        if (!to || (strcmp(to, "overdue") && strcmp(to, "suspended")))
            return snprintf(why, n, "status goes to overdue or suspended"), -1;
        return 0;
    }
    if (!strcmp(kind, "network")) {
        const char *st = jv_get_str(a, "state");
        if (!st || (strcmp(st, "throttled") && strcmp(st, "suspended")))
            return snprintf(why, n, "network state is throttled or suspended"), -1;
        if (!strcmp(st, "throttled")) {
            /* a bad rate is the rule's failure for this bill, not the pass's */
            netstate_rate rate;
            err re;
            if (netstate_rate_parse(jv_get_str(a, "rate"), &rate, &re)) return snprintf(why, n, "network rate: %s", re.msg), -1;
        }
        return 0;
    }
    if (!strcmp(kind, "task")) {
        const char *p = jv_get_str(a, "priority");
        if (!p || (strcmp(p, "low") && strcmp(p, "high"))) return snprintf(why, n, "task priority is low or high"), -1;
        return 0;
    }
    return snprintf(why, n, "unknown action kind '%.20s'", kind), -1;
}

/* The first column of every row of `sql` (a literal: statements are
 * cached by its address) for `id`, appended to arr. */
static int texts(db *d, const char *sql, int64_t id, jv_arena *a, jv *arr, err *e)
{
    db_stmt *s = db_prepare(d, sql, e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = 0, st;
    while (!rc && (st = db_step(d, s, e)) == DB_ROW) rc = jv_arr_push(a, arr, jv_str(a, db_col_text(s, 0))) ? ERR_NOMEM : 0;
    db_done(s);
    if (rc) return err_set(e, ERR_NOMEM, "out of memory");
    return st < 0 ? st : 0;
}

static int build_ctx(db *d, const bill *b, const char *as_of, int32_t days, jv_arena *a, jv **out, err *e)
{
    jv *ctx = jv_obj(a), *inv = jv_obj(a), *cust = jv_obj(a), *tags = jv_arr(a), *done = jv_arr(a);
    if (!ctx || !inv || !cust || !tags || !done) return err_set(e, ERR_NOMEM, "out of memory");
    int rc = jv_obj_set_str(a, inv, "number", b->number) || jv_obj_set_str(a, inv, "due_date", b->due) ||
             jv_obj_set_int(a, inv, "balance_due", b->balance_due) || jv_obj_set_str(a, cust, "code", b->code) ||
             jv_obj_set_str(a, cust, "status", b->status) ||
             (b->plan[0] && (jv_obj_set_str(a, inv, "plan", b->plan) || jv_obj_set_str(a, inv, "billing", b->billing)));
    if (!rc) rc = texts(d, "SELECT tag FROM customer_tags WHERE customer_id = ? ORDER BY tag", b->customer_id, a, tags, e);
    if (!rc) rc = texts(d, "SELECT stage FROM dunning_actions WHERE invoice_id = ? ORDER BY id", b->id, a, done, e);
    if (rc) return rc < 0 ? rc : err_set(e, ERR_NOMEM, "out of memory");
    db_stmt *s = db_prepare(d, "SELECT promised_until FROM collection_tasks WHERE invoice_id = ? AND promised_until IS NOT NULL", e);
    if (!s) return e->code;
    db_bind_int(s, 1, b->id);
    if (db_step(d, s, e) == DB_ROW) rc = jv_obj_set_str(a, ctx, "promised_until", db_col_text(s, 0));
    db_done(s);
    if (!rc)
        rc = jv_obj_set(a, cust, "tags", tags) || jv_obj_set(a, ctx, "invoice", inv) || jv_obj_set(a, ctx, "customer", cust) ||
             jv_obj_set(a, ctx, "done", done) || jv_obj_set_int(a, ctx, "days", days) || jv_obj_set_str(a, ctx, "today", as_of);
    if (rc) return err_set(e, ERR_NOMEM, "out of memory");
    *out = ctx;
    return 0;
}

static int record(db *d, const bill *b, const char *stage, const char *status, const char *actions, const char *version,
                  const char *as_of, int *inserted, err *e)
{
    char now[25];
    db_now(now);
    int rc = db_run(d, e,
                    "INSERT INTO dunning_actions (invoice_id, customer_id, stage, status, actions, rules_version, acted_on, at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (invoice_id, stage) DO NOTHING",
                    "iissssss", b->id, b->customer_id, stage, status, actions, version, as_of, now);
    if (!rc) *inserted = db_changes(d) > 0;
    return rc;
}

/* Carries out one action of a stage, inside the bill's transaction. */
static int act(db *d, const vault *v, const bill *b, const char *stage, const jv *a, dunning_report *r, err *e)
{
    const char *kind = jv_get_str(a, "kind");
    jv_arena ar;
    jv_arena_init(&ar, 0);
    int rc = 0;
    if (!strcmp(kind, "notify")) {
        /* the notice goes to the customer through the outbox, in this
         * transaction: on the channels the rule chose (channels = {...}),
         * else as the customer prefers (notify_customer) */
        char event[64], key[192], link[64];
        snprintf(event, sizeof event, "dunning.%s", jv_get_str(a, "template"));
        snprintf(key, sizeof key, "dunning:%lld:%s:%s", (long long)b->id, stage, event);
        snprintf(link, sizeof link, "/pay/%s", b->number);
        const char *chans[NOTIFY_CHANNELS + 1] = {0};
        const jv *cl = jv_get(a, "channels");
        /* the template's variables: what the rule gave, and the bill */
        jv *p = jv_obj(&ar);
        for (size_t i = 0; p && !rc && i < jv_len(a); i++) {
            const jv_member *m = &a->u.obj.m[i];
            if (strcmp(m->key, "kind") && strcmp(m->key, "channels") && jv_obj_set(&ar, p, m->key, jv_copy(&ar, m->val))) rc = ERR_NOMEM;
        }
        if (!p || rc || jv_obj_set_str(&ar, p, "invoice", b->number) || jv_obj_set_str(&ar, p, "due_date", b->due) ||
            jv_obj_set_int(&ar, p, "amount", b->balance_due) || jv_obj_set_str(&ar, p, "stage", stage) ||
            jv_obj_set_str(&ar, p, "pay_link", link))
            rc = err_set(e, ERR_NOMEM, "out of memory");
        if (!rc && cl && (cl->kind != JV_ARR || jv_len(cl) < 1 || jv_len(cl) > NOTIFY_CHANNELS))
            rc = err_field(e, ERR_RULE, "rule_output", "channels", "%s: notify's channels must be a list of 1 to 4 of log, sms, email, wechat",
                           stage);
        for (size_t i = 0; !rc && cl && i < jv_len(cl); i++) {
            if (jv_at(cl, i)->kind != JV_STR)
                rc = err_field(e, ERR_RULE, "rule_output", "channels", "%s: notify's channels[%zu] is not a channel name", stage, i + 1);
            else chans[i] = jv_at(cl, i)->u.str.s;
        }
        if (!rc) rc = notify_customer(d, v, event, b->customer_id, cl ? chans : NULL, p, key, NULL, e);
        if (!rc) r->notices++;
    } else if (!strcmp(kind, "network")) {
        /* the line's state changes here, in the bill's transaction: the
         * customer's PPPoE accounts (netstate.c), which the network plugin
         * follows (netsync.c); the outbox keeps a record of the change */
        const char *state = jv_get_str(a, "state");
        netstate_rate rate = {0, 0};
        int64_t moved = 0;
        err re;
        if (!strcmp(state, "throttled") && netstate_rate_parse(jv_get_str(a, "rate"), &rate, &re))
            rc = err_field(e, ERR_RULE, "rule_output", "rate", "%s: the network action's rate: %s", stage, re.msg);
        if (!rc) rc = netstate_set_customer(d, b->customer_id, state, !strcmp(state, "throttled") ? &rate : NULL, &moved, e);
        jv *p = rc ? NULL : jv_copy(&ar, a);
        char event[64];
        snprintf(event, sizeof event, "service.%s", state);
        if (!rc && (!p || jv_obj_set_str(&ar, p, "invoice", b->number) || jv_obj_set_str(&ar, p, "due_date", b->due) ||
                    jv_obj_set_int(&ar, p, "amount", b->balance_due) || jv_obj_set_str(&ar, p, "stage", stage) ||
                    jv_obj_set_int(&ar, p, "accounts", moved)))
            rc = err_set(e, ERR_NOMEM, "out of memory");
        char key[192];
        snprintf(key, sizeof key, "dunning:%lld:%s:%s", (long long)b->id, stage, event);
        if (!rc) rc = outbox_enqueue(d, v, event, "log", b->customer_id, NULL, p, key, e);
        if (!rc) r->network++;
    } else if (!strcmp(kind, "status")) {
        const char *to = jv_get_str(a, "to");
        char from[16] = "";
        db_stmt *s = db_prepare(d, "SELECT status FROM customers WHERE id = ?", e);
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, b->customer_id);
            if (db_step(d, s, e) == DB_ROW) snprintf(from, sizeof from, "%s", db_col_text(s, 0));
            db_done(s);
        }
        /* already there, or further along (suspended is past overdue): nothing to do */
        if (!rc && strcmp(from, to) && customers_transition_ok(from, to)) {
            rc = customers_set_status(d, b->customer_id, to, e);
            if (!rc) r->status_changes++;
        }
    } else if (!strcmp(kind, "task")) {
        char now[25];
        db_now(now);
        rc = db_run(d, e,
                    "INSERT INTO collection_tasks (customer_id, invoice_id, priority, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (invoice_id) DO UPDATE SET priority = excluded.priority, updated_at = excluded.updated_at",
                    "iisss", b->customer_id, b->id, jv_get_str(a, "priority"), now, now);
        if (!rc) r->tasks++;
    }
    jv_arena_free(&ar);
    return rc;
}

static int one_bill(db *d, const vault *v, ruleset *rs, const char *version, const char *as_of, int32_t today, const bill *b,
                    int dry_run, dunning_report *r, tallies *t, err *e)
{
    int32_t due;
    err pe;
    if (date_parse(b->due, strlen(b->due), &due, &pe)) return 0; /* not a bill of the ladder */
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *ctx = NULL, *res = NULL;
    int rc = build_ctx(d, b, as_of, today - due, &a, &ctx, e);
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    const jv *args[1] = {ctx};
    err re;
    char why[160] = "";
    if (rules_call(rs, "dunning.plan", args, 1, &a, &res, &re)) {
        snprintf(why, sizeof why, "%s", re.msg);
    } else if (res->kind != JV_OBJ || (jv_get(res, "actions") && jv_get(res, "actions")->kind != JV_ARR) ||
               (jv_get(res, "skip") && jv_get(res, "skip")->kind != JV_ARR)) {
        snprintf(why, sizeof why, "dunning.plan must return {stage?, actions = {...}, skip = {...}}");
    } else {
        const jv *acts = jv_get(res, "actions");
        for (size_t i = 0; i < jv_len(acts) && !why[0]; i++)
            if (check_action(jv_at(acts, i), why, sizeof why)) {
                char tmp[160];
                snprintf(tmp, sizeof tmp, "actions[%zu]: %s", i + 1, why);
                snprintf(why, sizeof why, "%s", tmp);
            }
        const jv *skip = jv_get(res, "skip");
        for (size_t i = 0; i < jv_len(skip) && !why[0]; i++)
            if (jv_at(skip, i)->kind != JV_STR) snprintf(why, sizeof why, "skip[%zu] is not a stage name", i + 1);
        if (!why[0] && jv_len(acts) && !jv_get_str(res, "stage")) snprintf(why, sizeof why, "actions without a stage");
        /* stage names key the record and the messages' dedupe keys */
        const char *stn = jv_get_str(res, "stage");
        if (!why[0] && stn && (!stn[0] || strlen(stn) > 40 || strspn(stn, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(stn)))
            snprintf(why, sizeof why, "a stage name is 1 to 40 of a-z 0-9 _");
        for (size_t i = 0; i < jv_len(skip) && !why[0]; i++) {
            const char *sk = jv_at(skip, i)->u.str.s;
            if (!sk[0] || strlen(sk) > 40 || strspn(sk, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(sk))
                snprintf(why, sizeof why, "skip[%zu]: a stage name is 1 to 40 of a-z 0-9 _", i + 1);
        }
    }
    if (why[0]) {
        /* one bill's rule failure is the rule's: logged and counted, the pass goes on */
        r->failed++;
        t->failed++;
        log_msg(LOG_WARN, "dunning_rule_failed", "%s (customer %s): %s", b->number, b->code, why);
        jv_arena_free(&a);
        return 0;
    }
    const char *stage = jv_get_str(res, "stage");
    const jv *skip = jv_get(res, "skip"), *acts = jv_get(res, "actions");
    if (dry_run) {
        r->skipped += (int64_t)jv_len(skip);
        if (stage) r->acted++;
        jv_arena_free(&a);
        return 0;
    }
    rc = db_begin(d, e);
    for (size_t i = 0; !rc && i < jv_len(skip); i++) {
        int ins = 0;
        rc = record(d, b, jv_at(skip, i)->u.str.s, "skipped", "[]", version, as_of, &ins, e);
        if (!rc && ins) {
            r->skipped++;
            tally(t, jv_at(skip, i)->u.str.s, 0);
        }
    }
    if (!rc && stage) {
        buf text = {0};
        int ins = 0;
        rc = json_write(&text, acts) ? err_set(e, ERR_NOMEM, "out of memory") : 0;
        if (!rc) rc = record(d, b, stage, "done", buf_cstr(&text), version, as_of, &ins, e);
        buf_free(&text);
        /* done already (a pass that ran twice): nothing again */
        for (size_t i = 0; !rc && ins && i < jv_len(acts); i++) rc = act(d, v, b, stage, jv_at(acts, i), r, e);
        if (!rc && ins) {
            r->acted++;
            tally(t, stage, 1);
        }
    }
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    jv_arena_free(&a);
    return rc;
}

int dunning_pass(db *d, const vault *v, ruleset *rs, const char *rules_version, const char *as_of, int dry_run,
                 dunning_report *r, err *e)
{
    memset(r, 0, sizeof *r);
    int32_t today;
    if (date_parse(as_of, strlen(as_of), &today, e)) return err_field(e, ERR_INVALID, "invalid_date", "date", "not a date: %s", as_of);
    char horizon[11];
    date_format(today + LOOKAHEAD_DAYS, horizon);
    bill *batch = calloc(BATCH, sizeof *batch);
    if (!batch) return err_set(e, ERR_NOMEM, "out of memory");
    int64_t after = 0;
    int rc = 0;
    tallies t;
    memset(&t, 0, sizeof t);
    for (;;) {
        /* A batch is one transaction (each bill a savepoint in it): a
         * durable commit per bill would cost more than the bill. Taking the
         * write lock before reading means no payment lands between reading
         * a bill as unpaid and acting on it. */
        if (!dry_run && (rc = db_begin(d, e))) break;
        /* the statement is done before any bill is written */
        db_stmt *s = db_prepare(d,
                                "SELECT i.id, i.customer_id, i.gross - i.paid - i.credited - i.written_off, i.number, i.due_date, "
                                "c.code, c.status, p.code, sb.billing FROM invoices i JOIN customers c ON c.id = i.customer_id "
                                "LEFT JOIN subscriptions sb ON sb.id = i.subscription_id LEFT JOIN products p ON p.id = sb.product_id "
                                "WHERE i.status IN ('open', 'partially_paid') AND i.id > ? AND i.due_date <= ? "
                                "ORDER BY i.id LIMIT ?",
                                e);
        int n = 0, st = 0;
        if (!s) rc = e->code;
        else {
            db_bind_int(s, 1, after);
            db_bind_text(s, 2, horizon);
            db_bind_int(s, 3, BATCH);
            while ((st = db_step(d, s, e)) == DB_ROW) {
                bill *b = &batch[n++];
                b->id = db_col_int(s, 0);
                b->customer_id = db_col_int(s, 1);
                b->balance_due = db_col_int(s, 2);
                snprintf(b->number, sizeof b->number, "%s", db_col_text(s, 3));
                snprintf(b->due, sizeof b->due, "%s", db_col_text(s, 4) ? db_col_text(s, 4) : "");
                snprintf(b->code, sizeof b->code, "%s", db_col_text(s, 5));
                snprintf(b->status, sizeof b->status, "%s", db_col_text(s, 6));
                snprintf(b->plan, sizeof b->plan, "%s", db_col_text(s, 7));
                snprintf(b->billing, sizeof b->billing, "%s", db_col_text(s, 8));
            }
            db_done(s);
            if (st < 0) rc = st;
        }
        for (int i = 0; i < n && !rc; i++) {
            r->invoices++;
            rc = one_bill(d, v, rs, rules_version, as_of, today, &batch[i], dry_run, r, &t, e);
        }
        if (!dry_run) {
            if (rc) db_rollback(d);
            else rc = db_commit(d, e);
            if (!rc) tallies_flush(&t);
        }
        if (rc || n < BATCH) break;
        after = batch[n - 1].id;
    }
    free(batch);
    return rc;
}

/* ------------------------------------------------------------- release */

int dunning_release(db *d, int64_t customer_id, const char *reason, const char *channel, int64_t payment_id, int *restored,
                    err *e)
{
    char status[16] = "";
    db_stmt *s = db_prepare(d, "SELECT status FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) snprintf(status, sizeof status, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    int held = !strcmp(status, "overdue") || !strcmp(status, "suspended");
    int64_t lines = 0;
    if (!held && (rc = db_get_int(d, e, &lines,
                                  "SELECT count(*) FROM service_accounts WHERE customer_id = ? "
                                  "AND status IN ('throttled', 'suspended')",
                                  "i", customer_id)))
        return rc;
    if (!held && !lines) return 0;
    char today[11];
    date_format(date_of_time(time(NULL)), today);
    int64_t overdue = 0;
    rc = db_get_int(d, e, &overdue,
                    "SELECT count(*) FROM invoices WHERE customer_id = ? AND status IN ('open', 'partially_paid') "
                    "AND due_date < ? AND gross - paid - credited - written_off > 0",
                    "is", customer_id, today);
    if (rc || overdue) return rc;
    if (held && (rc = customers_set_status(d, customer_id, "active", e))) return rc;
    if ((rc = netstate_set_customer(d, customer_id, "active", NULL, &lines, e))) return rc;
    if (!held && !lines) return 0;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *p = jv_obj(&a);
    if (!p || jv_obj_set_str(&a, p, "from", status) || jv_obj_set_str(&a, p, "reason", reason) ||
        (channel && jv_obj_set_str(&a, p, "channel", channel)) || (payment_id && jv_obj_set_int(&a, p, "payment_id", payment_id)) ||
        jv_obj_set_int(&a, p, "accounts", lines))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) rc = outbox_enqueue(d, NULL, "service.restore", "log", customer_id, NULL, p, NULL, e);
    jv_arena_free(&a);
    if (!rc && restored) *restored = 1;
    return rc;
}
