/* cmd_outbox.c - `bandbill outbox list|show|retry|deliver`: messages to
 * customers and their delivery, from the command line.
 *
 * The command line acts as the local administrator: recipients are shown
 * as the admin role sees resource "message" (a view in clear is recorded
 * as the API records it), a retry is audited, and `deliver` runs the
 * dispatcher once over what is due - for a machine where no daemon runs,
 * or with notify.dispatch off. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "customers.h"
#include "notify.h"
#include "privacy.h"
#include "vault.h"

typedef cli_env env;

static int open_env(cli *c, env *x, err *e)
{
    return cli_env_open(c, x, e);
}

static int print_json(const jv *o, err *e)
{
    jw w;
    if (jw_init(&w, 1)) return ERR_NOMEM_RET(e);
    jw_jv(&w, o);
    return cli_print_json(&w, e);
}

static int message_arg(const char *s, int64_t *id, err *e)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !s[0] || *end || v <= 0) return err_set(e, ERR_USAGE, "a message is named by its id, a whole number: '%s'", s);
    *id = v;
    return 0;
}

static const char *recipient_of(const jv *m)
{
    const char *r = jv_get_str(m, "phone");
    if (!r) r = jv_get_str(m, "email");
    if (!r) r = jv_get_str(m, "openid");
    return r ? r : "-";
}

int cmd_outbox_list(cli *c, err *e)
{
    const char *code = cli_opt_value(c, "customer");
    int64_t limit;
    int rc = cli_opt_limit(c, 50, 500, &limit, e);
    if (rc) return rc;
    env x;
    rc = open_env(c, &x, e);
    if (rc) return rc;
    notify_filter f = {0, cli_opt_value(c, "status"), cli_opt_value(c, "channel"), cli_opt_value(c, "event")};
    if (code) rc = customers_id_by_code(x.d, code, &f.customer_id, e);
    jv *list = NULL;
    char next[32];
    if (!rc) rc = notify_list(x.d, x.v, &f, NULL, limit, &x.a, &list, next, sizeof next, e);
    if (!rc && jv_len(list)) rc = cli_admin_view(c, &x, "message", list->u.arr.items, jv_len(list), e);
    if (!rc && c->json) rc = print_json(list, e);
    else if (!rc) {
        char ev[80], ch[16], st[16], rc_[40];
        printf("%8s  %-24s %-32s %-7s %-8s %3s  %-20s %s\n", "ID", "CREATED", "EVENT", "CHANNEL", "STATUS", "TRY", "RECIPIENT", "LAST ERROR");
        for (size_t i = 0; i < jv_len(list); i++) {
            const jv *m = jv_at(list, i);
            const char *le = jv_get_str(m, "last_error");
            printf("%8lld  %-24s %s %s %s %3lld  %s %s\n", (long long)jv_get_int(m, "id"), jv_get_str(m, "created_at"),
                   cli_fit(jv_get_str(m, "event"), 32, ev, sizeof ev), cli_fit(jv_get_str(m, "channel"), 7, ch, sizeof ch),
                   cli_fit(jv_get_str(m, "status"), 8, st, sizeof st), (long long)jv_get_int(m, "attempts"), cli_fit(recipient_of(m), 20, rc_, sizeof rc_),
                   le ? le : "");
        }
        if (next[0]) printf("(more: narrow with --customer, --status, --channel, --event or raise --limit)\n");
    }
    return cli_env_close(&x, rc);
}

int cmd_outbox_show(cli *c, err *e)
{
    int64_t id = 0;
    int rc = message_arg(c->argv[0], &id, e);
    if (rc) return rc;
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    jv *m = NULL;
    rc = notify_get(x.d, x.v, id, &x.a, &m, e);
    if (!rc) rc = cli_admin_view(c, &x, "message", &m, 1, e);
    if (!rc && c->json) rc = print_json(m, e);
    else if (!rc) {
        const char *v;
        printf("message %lld: %s on %s, %s\n", (long long)id, jv_get_str(m, "event"), jv_get_str(m, "channel"), jv_get_str(m, "status"));
        printf("  customer      %s\n", (v = jv_get_str(m, "customer")) ? v : "-");
        printf("  recipient     %s\n", recipient_of(m));
        printf("  created       %s\n", jv_get_str(m, "created_at"));
        printf("  attempts      %lld\n", (long long)jv_get_int(m, "attempts"));
        if ((v = jv_get_str(m, "next_attempt_at"))) printf("  next attempt  %s\n", v);
        if ((v = jv_get_str(m, "sent_at"))) printf("  sent          %s\n", v);
        if ((v = jv_get_str(m, "driver"))) printf("  driver        %s\n", v);
        if ((v = jv_get_str(m, "provider_id"))) printf("  gateway id    %s\n", v);
        if ((v = jv_get_str(m, "last_error"))) printf("  last error    %s\n", v);
        buf p = {0};
        if (json_write(&p, jv_get(m, "payload")) == 0) printf("  payload       %s\n", buf_cstr(&p));
        buf_free(&p);
        const jv *h = jv_get(m, "history");
        for (size_t i = 0; i < jv_len(h); i++) {
            const jv *a = jv_at(h, i);
            const char *er = jv_get_str(a, "error"), *pid = jv_get_str(a, "provider_id");
            printf("  #%lld %s %-9s %-10s", (long long)jv_get_int(a, "attempt"), jv_get_str(a, "at"), jv_get_str(a, "outcome"), jv_get_str(a, "driver"));
            if (jv_get_int(a, "status_code")) printf(" %lld", (long long)jv_get_int(a, "status_code"));
            if (pid) printf(" id=%s", pid);
            if (er) printf(" %s", er);
            printf("\n");
        }
    }
    return cli_env_close(&x, rc);
}

int cmd_outbox_retry(cli *c, err *e)
{
    int64_t id = 0;
    int rc = message_arg(c->argv[0], &id, e);
    if (rc) return rc;
    env x;
    if ((rc = open_env(c, &x, e))) return rc;
    char oid[24];
    snprintf(oid, sizeof oid, "%lld", (long long)id);
    jv *before = NULL, *after = NULL;
    rc = db_begin(x.d, e);
    if (!rc) rc = notify_get(x.d, x.v, id, &x.a, &before, e);
    if (!rc) rc = notify_retry(x.d, id, e);
    if (!rc) rc = notify_get(x.d, x.v, id, &x.a, &after, e);
    if (!rc) {
        /* the delivery state only: never the recipient or the content */
        jv *b = jv_obj(&x.a), *af = jv_obj(&x.a);
        static const char *const keep[] = {"status", "attempts", "next_attempt_at", "last_error", NULL};
        for (const char *const *k = keep; b && af && *k && !rc; k++)
            if (jv_obj_set(&x.a, b, *k, jv_copy(&x.a, jv_get(before, *k))) || jv_obj_set(&x.a, af, *k, jv_copy(&x.a, jv_get(after, *k))))
                rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "message.retry", .object_type = "message", .object_id = oid, .before = b, .after = af};
        if (!rc && (!b || !af)) rc = ERR_NOMEM_RET(e);
        if (!rc) rc = cli_audit(c, x.d, x.v, &ev, e);
    }
    if (!rc) rc = db_commit(x.d, e);
    if (!rc && c->json) {
        rc = privacy_filter(x.d, &x.a, "admin", "message", after, NULL, e);
        if (!rc) rc = print_json(after, e);
    } else if (!rc) {
        printf("message %lld is pending again: the dispatcher sends it at its next look (or run `bandbill outbox deliver`)\n",
               (long long)id);
    }
    return cli_env_close(&x, rc);
}

int cmd_outbox_deliver(cli *c, err *e)
{
    int64_t limit;
    int rc = cli_opt_limit(c, 0, 0, &limit, e);
    if (rc) return rc;
    db *d;
    rc = cli_open_db(c, &d, e);
    if (rc) return rc;
    notify_report r;
    rc = notify_deliver(d, &c->cfg, NULL, limit, NULL, &r, e);
    db_close(d);
    if (rc) return rc;
    if (c->json) {
        jw w;
        if (jw_init(&w, 1)) return ERR_NOMEM_RET(e);
        jw_obj_open(&w);
        jw_kv_int(&w, "sent", r.sent);
        jw_kv_int(&w, "failed", r.failed);
        jw_kv_int(&w, "dead", r.dead);
        jw_kv_int(&w, "postponed", r.postponed);
        jw_obj_close(&w);
        return cli_print_json(&w, e);
    }
    printf("%lld sent, %lld failed (tried again later), %lld dead, %lld postponed (quiet hours)\n", (long long)r.sent,
           (long long)r.failed, (long long)r.dead, (long long)r.postponed);
    return 0;
}
