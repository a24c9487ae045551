/* cmd_dunning.c - `dunning run` and the collection tasks on the command
 * line: list, show, assign, update. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli.h"
#include "collect.h"
#include "customers.h"
#include "date.h"
#include "dunning.h"
#include "json.h"
#include "money.h"
#include "rules.h"
#include "vault.h"

/* `dunning run [--date D] [--dry-run]`: the collection pass now. */
int cmd_dunning_run(cli *c, err *e)
{
    char day[11];
    date_format(date_of_time(time(NULL)), day);
    const char *date = cli_opt_value(c, "date") ? cli_opt_value(c, "date") : day;
    int32_t dn;
    if (date_parse(date, strlen(date), &dn, e)) return err_set(e, ERR_USAGE, "--date must be a date YYYY-MM-DD, not '%s'", date);
    int dry = cli_opt_value(c, "dry-run") != NULL;
    db *d = NULL;
    vault *v = NULL;
    ruleset *rs = NULL;
    int rc = cli_open_db(c, &d, e);
    if (!rc) rc = cli_open_vault(c, &v, e);
    if (!rc) rc = cli_open_rules(c, &rs, e);
    dunning_report r;
    if (!rc) rc = dunning_pass(d, v, rs, rs->snap->version, date, dry, &r, e);
    if (!rc && c->json) {
        printf("{\"date\":\"%s\",\"dry_run\":%s,\"invoices\":%lld,\"acted\":%lld,\"skipped\":%lld,\"notices\":%lld,"
               "\"status_changes\":%lld,\"network\":%lld,\"tasks\":%lld,\"failed\":%lld}\n",
               date, dry ? "true" : "false", (long long)r.invoices, (long long)r.acted, (long long)r.skipped,
               (long long)r.notices, (long long)r.status_changes, (long long)r.network, (long long)r.tasks, (long long)r.failed);
    } else if (!rc) {
        printf("dunning %s%s: %lld unpaid bills, %lld stages acted, %lld skipped; %lld notices, %lld status changes, "
               "%lld line changes, %lld tasks; %lld failed\n",
               date, dry ? " (dry run: nothing written)" : "", (long long)r.invoices, (long long)r.acted, (long long)r.skipped,
               (long long)r.notices, (long long)r.status_changes, (long long)r.network, (long long)r.tasks, (long long)r.failed);
    }
    if (rs) ruleset_unref(rs);
    vault_close(v);
    if (d) db_close(d);
    return rc;
}

/* A field as the tables print it: "-" when there is none. */
static const char *s_of(const jv *o, const char *k)
{
    const char *v = jv_get_str(o, k);
    return v ? v : "-";
}

static int task_arg(const cli *c, int64_t *id, err *e)
{
    char *end;
    long long v = strtoll(c->argv[0], &end, 10);
    if (!c->argv[0][0] || *end || v <= 0) return err_set(e, ERR_USAGE, "a task is named by its number, not '%s'", c->argv[0]);
    *id = v;
    return 0;
}

/* `collection list [--status] [--priority] [--assigned USER|-] [--customer CODE] [--limit N]` */
int cmd_collection_list(cli *c, err *e)
{
    int64_t limit;
    int lrc = cli_opt_limit(c, 50, 500, &limit, e);
    if (lrc) return lrc;
    const char *assigned = cli_opt_value(c, "assigned");
    collect_filter f = {.status = cli_opt_value(c, "status"), .priority = cli_opt_value(c, "priority"),
                        .assigned_to = assigned && !strcmp(assigned, "-") ? "" : assigned};
    db *d = NULL;
    int rc = cli_open_db(c, &d, e);
    const char *code = cli_opt_value(c, "customer");
    if (!rc && code) rc = customers_id_by_code(d, code, &f.customer_id, e);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *list = NULL;
    char next[32];
    if (!rc) rc = collect_list(d, &f, NULL, limit, &a, &list, next, sizeof next, e);
    if (!rc && c->json) {
        jw w;
        if (jw_init(&w, 0)) rc = ERR_NOMEM_RET(e);
        else {
            jw_jv(&w, list);
            rc = cli_print_json(&w, e);
        }
    } else if (!rc) {
        if (!jv_len(list)) printf("no collection tasks\n");
        else printf("%-6s %-12s %-18s %10s %-10s %-8s %-6s %-14s %-11s %s\n", "TASK", "CUSTOMER", "INVOICE", "DUE", "DUE DATE",
                    "PRIORITY", "STATUS", "ASSIGNED", "PROMISED", "OUTCOME");
        for (size_t i = 0; i < jv_len(list); i++) {
            const jv *t = jv_at(list, i);
            char amount[32], who[64];
            money_format(jv_get_int(t, "balance_due"), amount);
            printf("%-6lld %-12s %-18s %10s %-10s %-8s %-6s %s %-11s %s\n", (long long)jv_get_int(t, "id"), s_of(t, "customer"),
                   s_of(t, "invoice"), amount, s_of(t, "due_date"), s_of(t, "priority"), s_of(t, "status"),
                   cli_fit(s_of(t, "assigned_to"), 14, who, sizeof who), s_of(t, "promised_until"), s_of(t, "outcome"));
        }
        if (next[0]) printf("(more: narrow with --status, --priority, --assigned or --customer, or raise --limit)\n");
    }
    jv_arena_free(&a);
    if (d) db_close(d);
    return rc;
}

static void print_task(const jv *t)
{
    char amount[32];
    money_format(jv_get_int(t, "balance_due"), amount);
    printf("Collection task %lld: %s, %s priority\n", (long long)jv_get_int(t, "id"), s_of(t, "status"), s_of(t, "priority"));
    printf("  customer        %s\n  invoice         %s (%s), %s due on %s\n", s_of(t, "customer"), s_of(t, "invoice"),
           s_of(t, "invoice_status"), amount, s_of(t, "due_date"));
    printf("  assigned to     %s\n  promised until  %s\n  outcome         %s\n", s_of(t, "assigned_to"), s_of(t, "promised_until"),
           s_of(t, "outcome"));
    const jv *ladder = jv_get(t, "ladder"), *notes = jv_get(t, "notes");
    if (jv_len(ladder)) printf("The ladder on this bill\n");
    for (size_t i = 0; i < jv_len(ladder); i++) {
        const jv *x = jv_at(ladder, i);
        printf("  %s  %-12s %-8s rules %.12s\n", s_of(x, "acted_on"), s_of(x, "stage"), s_of(x, "result"), s_of(x, "rules_version"));
    }
    if (jv_len(notes)) printf("Notes\n");
    for (size_t i = 0; i < jv_len(notes); i++) {
        const jv *n = jv_at(notes, i);
        buf b = {0};
        json_write(&b, jv_get(n, "changes"));
        printf("  %s  %s  %s%s%s\n", s_of(n, "at"), s_of(n, "by"), buf_cstr(&b), jv_get(n, "note") && jv_get(n, "note")->kind == JV_STR ? "  " : "",
               jv_get(n, "note") && jv_get(n, "note")->kind == JV_STR ? s_of(n, "note") : "");
        buf_free(&b);
    }
}

static int show(cli *c, db *d, int64_t id, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *t = NULL;
    int rc = collect_get(d, id, &a, &t, e);
    if (!rc && c->json) {
        jw w;
        if (jw_init(&w, 0)) rc = ERR_NOMEM_RET(e);
        else {
            jw_jv(&w, t);
            rc = cli_print_json(&w, e);
        }
    } else if (!rc) {
        print_task(t);
    }
    jv_arena_free(&a);
    return rc;
}

/* `collection show ID` */
int cmd_collection_show(cli *c, err *e)
{
    int64_t id = 0;
    int rc = task_arg(c, &id, e);
    if (rc) return rc;
    db *d = NULL;
    if (!(rc = cli_open_db(c, &d, e))) rc = show(c, d, id, e);
    if (d) db_close(d);
    return rc;
}

/* The change, recorded in the audit trail, then the task as it is now. */
static int update(cli *c, int64_t id, const collect_change *ch, err *e)
{
    db *d = NULL;
    struct vault *v = NULL;
    char by[96], today[11];
    cli_actor(by, sizeof by);
    date_format(date_of_time(time(NULL)), today);
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *before = NULL, *after = NULL;
    int rc = cli_open_db(c, &d, e);
    if (!rc) rc = cli_open_vault(c, &v, e);
    if (!rc && !(rc = db_begin(d, e))) {
        rc = collect_get(d, id, &a, &before, e);
        if (!rc) rc = collect_update(d, id, ch, by, today, e);
        if (!rc) rc = collect_get(d, id, &a, &after, e);
        char oid[24];
        snprintf(oid, sizeof oid, "%lld", (long long)id);
        audit_event ev = {.action = "collection_task.update", .object_type = "collection_task", .object_id = oid,
                          .before = before, .after = after};
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        if (!rc) rc = db_commit(d, e);
        else db_rollback(d);
    }
    if (!rc) rc = show(c, d, id, e);
    jv_arena_free(&a);
    vault_close(v);
    if (d) db_close(d);
    return rc;
}

/* `collection assign ID USER` (USER "-" takes the task from whoever has it) */
int cmd_collection_assign(cli *c, err *e)
{
    int64_t id = 0;
    int rc = task_arg(c, &id, e);
    if (rc) return rc;
    collect_change ch = {.assigned_to = strcmp(c->argv[1], "-") ? c->argv[1] : "", .note = cli_opt_value(c, "note")};
    return update(c, id, &ch, e);
}

/* `collection update ID [--status] [--outcome] [--note] [--promised-until D|-]` */
int cmd_collection_update(cli *c, err *e)
{
    int64_t id = 0;
    int rc = task_arg(c, &id, e);
    if (rc) return rc;
    const char *promise = cli_opt_value(c, "promised-until");
    collect_change ch = {.status = cli_opt_value(c, "status"), .outcome = cli_opt_value(c, "outcome"),
                         .note = cli_opt_value(c, "note"), .promised_until = promise && !strcmp(promise, "-") ? "" : promise};
    if (!ch.status && !ch.outcome && !ch.note && !ch.promised_until)
        return err_set(e, ERR_USAGE, "nothing to change: give --status, --outcome, --note or --promised-until");
    return update(c, id, &ch, e);
}
