/* cli.h - the command line: one table of commands, common options, and
 * the output conventions (text by default, --json for scripts; exit 0 on
 * success, 1 on an error with one line on stderr, 2 on a usage error). */
#ifndef BB_CLI_H
#define BB_CLI_H

#include <stdio.h>

#include "cfg.h"
#include "db.h"
#include "err.h"
#include "json.h"

#define CLI_MAX_OPTS 32

typedef struct cli_opt {
    const char *name;       /* long option, without "--" */
    int has_arg;            /* 0 flag, 1 required value */
    const char *arg_name;   /* "PATH" */
    const char *help;
} cli_opt;

typedef struct cli cli;
typedef int (*cmd_fn)(cli *c, err *e);

typedef struct command {
    const char *name;       /* "rules check" */
    cmd_fn fn;
    const char *args;       /* synopsis of positional arguments, "[DIR]" */
    int min_args, max_args;
    const cli_opt *opts;    /* command-specific, NULL-terminated; may be NULL */
    const char *summary;
    const char *help;       /* longer text for --help, may be NULL */
} command;

struct cli {
    cfg cfg;
    int json;
    const command *cmd;
    int argc;               /* positional arguments */
    char **argv;
    struct { const char *name; const char *value; } opts[CLI_MAX_OPTS];
    int nopts;
    int audited;            /* the command appended audit records */
};

/* Anchors the audit chain's head after a command that wrote to it. */
void cli_anchor(cli *c);

/* The value of a command option, NULL if absent; a flag gives "". */
const char *cli_opt_value(const cli *c, const char *name);
/* --limit: *out is dflt when absent; else a whole number from 1 to max
 * (no upper bound when max is 0), or ERR_USAGE naming the option. */
int cli_opt_limit(const cli *c, int64_t dflt, int64_t max, int64_t *out, err *e);
/* Opens the configured database (must exist and be migrated). */
int cli_open_db(cli *c, db **out, err *e);
/* s cut to whole characters and padded with spaces to `cols` terminal
 * columns (a Chinese character takes two), in out (n bytes); returns out. */
const char *cli_fit(const char *s, int cols, char *out, size_t n);
/* The rules of the configured folder (--rules), loaded without running
 * their examples; ruleset_unref it. */
struct ruleset;
int cli_open_rules(cli *c, struct ruleset **out, err *e);
/* Who runs the command, for records: "cli:USER". */
void cli_actor(char *out, size_t n);
struct vault;
struct audit_event;
/* Opens the configured key file. */
int cli_open_vault(cli *c, struct vault **out, err *e);
/* Records a change made from the command line in the audit trail (inside
 * the caller's transaction), as the local user. */
int cli_audit(cli *c, db *d, const struct vault *v, const struct audit_event *ev, err *e);
/* Prints a finished jw document to stdout with a newline and frees it. */
int cli_print_json(jw *w, err *e);

/* What most commands work with: the database, the key file, an arena. */
typedef struct cli_env {
    db *d;
    struct vault *v;
    jv_arena a;
} cli_env;
/* Opens the configured database and key file (nothing stays open on an
 * error). */
int cli_env_open(cli *c, cli_env *x, err *e);
/* Rolls back a transaction left open, closes both, frees the arena;
 * returns rc, so a command ends with `return cli_env_close(&x, rc);`. */
int cli_env_close(cli_env *x, int rc);
/* Applies the local admin's field visibility to n objects of `resource`
 * (the command line is the admin's), and records in the audit trail what
 * was shown in clear, as the API does for a caller who sees it. */
int cli_admin_view(cli *c, cli_env *x, const char *resource, jv **objs, size_t n, err *e);

int cli_main(int argc, char **argv, char **envp);

/* The command implementations (cmd_*.c). */
int cmd_init(cli *c, err *e);
int cmd_migrate(cli *c, err *e);
int cmd_demo(cli *c, err *e);
int cmd_serve(cli *c, err *e);
int cmd_backup(cli *c, err *e);
int cmd_version(cli *c, err *e);
int cmd_config(cli *c, err *e);
int cmd_token_create(cli *c, err *e);
int cmd_token_list(cli *c, err *e);
int cmd_token_revoke(cli *c, err *e);
int cmd_jobs_list(cli *c, err *e);
int cmd_jobs_run(cli *c, err *e);
int cmd_rules_check(cli *c, err *e);
int cmd_rules_test(cli *c, err *e);
int cmd_rules_reload(cli *c, err *e);
int cmd_rules_show(cli *c, err *e);
int cmd_rules_diff(cli *c, err *e);
int cmd_rules_call(cli *c, err *e);
int cmd_user_add(cli *c, err *e);
int cmd_user_disable(cli *c, err *e);
int cmd_user_enable(cli *c, err *e);
int cmd_user_passwd(cli *c, err *e);
int cmd_user_unlock(cli *c, err *e);
int cmd_user_list(cli *c, err *e);
int cmd_user_roles(cli *c, err *e);
int cmd_audit_verify(cli *c, err *e);
int cmd_audit_export(cli *c, err *e);
int cmd_keys_status(cli *c, err *e);
int cmd_keys_rotate(cli *c, err *e);
int cmd_keys_prune(cli *c, err *e);
int cmd_privacy_export(cli *c, err *e);
int cmd_privacy_erase(cli *c, err *e);
int cmd_customer_add(cli *c, err *e);
int cmd_customer_show(cli *c, err *e);
int cmd_customer_find(cli *c, err *e);
int cmd_customer_edit(cli *c, err *e);
int cmd_product_list(cli *c, err *e);
int cmd_product_add(cli *c, err *e);
int cmd_product_price(cli *c, err *e);
int cmd_subscribe(cli *c, err *e);
int cmd_bill_run(cli *c, err *e);
int cmd_bill_runs(cli *c, err *e);
int cmd_bill_show(cli *c, err *e);
int cmd_bill_preview(cli *c, err *e);
int cmd_invoice_list(cli *c, err *e);
int cmd_invoice_show(cli *c, err *e);
int cmd_invoice_explain(cli *c, err *e);
int cmd_invoice_void(cli *c, err *e);
int cmd_invoice_credit(cli *c, err *e);
int cmd_invoice_write_off(cli *c, err *e);
int cmd_ledger_show(cli *c, err *e);
int cmd_ledger_adjust(cli *c, err *e);
int cmd_ledger_verify(cli *c, err *e);
int cmd_payment_record(cli *c, err *e);
int cmd_bench_customers(cli *c, err *e);
int cmd_bench_billrun(cli *c, err *e); /* cmd_billing.c */
int cmd_pay_inspect(cli *c, err *e);   /* cmd_pay.c */
int cmd_payment_refund(cli *c, err *e);
int cmd_reconcile(cli *c, err *e);
int cmd_sandbox(cli *c, err *e);
int cmd_dunning_run(cli *c, err *e);
int cmd_outbox_list(cli *c, err *e);    /* cmd_outbox.c */
int cmd_outbox_show(cli *c, err *e);
int cmd_outbox_retry(cli *c, err *e);
int cmd_outbox_deliver(cli *c, err *e);
int cmd_radius_sync(cli *c, err *e);   /* cmd_radius.c */
int cmd_radius_resync(cli *c, err *e);
int cmd_radius_status(cli *c, err *e);
int cmd_collection_list(cli *c, err *e);
int cmd_collection_show(cli *c, err *e);
int cmd_collection_assign(cli *c, err *e);
int cmd_collection_update(cli *c, err *e);

#endif
