/* cli.c - the command table, option parsing and configuration layering. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "privacy.h"
#include "buf.h"
#include "log.h"
#include "migrate.h"
#include "rules.h"
#include "vault.h"

static const cli_opt opts_serve[] = {
    {"listen", 1, "HOST:PORT", "address to serve HTTP on (default 127.0.0.1:8080; port 0 picks a free one)"},
    {"socket", 1, "PATH", "control socket for `bandbill rules reload` (default: next to the database)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_token_create[] = {
    {"name", 1, "NAME", "a name for the token (who or what uses it)"},
    {"role", 1, "ROLE", "the role the token acts as (admin)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_rules_test[] = {
    {"module", 1, "NAME", "run only this module's examples"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_rules_reload[] = {
    {"socket", 1, "PATH", "the daemon's control socket"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_rules_show[] = {
    {"file", 1, "PATH", "print this file of the version"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_rules_call[] = {
    {"input", 1, "JSON", "the argument as JSON, @FILE to read it from a file, - for standard input"},
    {"args", 1, "JSON", "several arguments, as a JSON list"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_migrate[] = {
    {"check", 0, NULL, "only report; exit 1 if migrations are pending"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_backup[] = {
    {"force", 0, NULL, "replace PATH if it exists"},
    {NULL, 0, NULL, NULL},
};

static const cli_opt opts_user_add[] = {
    {"role", 1, "ROLE", "the role (see bandbill user roles)"},
    {"display-name", 1, "NAME", "the name shown in the console"},
    {"email", 1, "ADDRESS", "e-mail (stored encrypted)"},
    {"phone", 1, "NUMBER", "phone (stored encrypted)"},
    {"password-stdin", 0, NULL, "read the password from standard input (else one is generated and shown once)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_password[] = {
    {"password-stdin", 0, NULL, "read the password from standard input (else one is generated and shown once)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_audit_export[] = {
    {"from", 1, "DATE", "first day (YYYY-MM-DD, UTC) or instant to include"},
    {"to", 1, "DATE", "the day (or instant) to stop before"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_privacy_export[] = {
    {"out", 1, "FILE", "write to FILE (created with mode 0600) instead of standard output"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_privacy_erase[] = {
    {"yes", 0, NULL, "go ahead: erasure cannot be undone"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_keys_rotate[] = {
    {"resume", 0, NULL, "finish an interrupted rotation without adding another key"},
    {NULL, 0, NULL, NULL},
};

static const cli_opt opts_customer[] = {
    {"type", 1, "TYPE", "residential (default) or business"},
    {"name", 1, "NAME", "the customer's name"},
    {"company", 1, "NAME", "company name (business customers)"},
    {"tax-id", 1, "ID", "unified social credit code (business customers)"},
    {"id-card", 1, "NUMBER", "resident ID-card number"},
    {"phone", 1, "NUMBER", "primary mobile"},
    {"phone2", 1, "NUMBER", "backup phone"},
    {"email", 1, "ADDRESS", "e-mail"},
    {"province", 1, "TEXT", "service address: province"},
    {"city", 1, "TEXT", "city"},
    {"district", 1, "TEXT", "district"},
    {"street", 1, "TEXT", "street or town"},
    {"community", 1, "TEXT", "residential community"},
    {"building", 1, "TEXT", "building"},
    {"unit", 1, "TEXT", "unit"},
    {"floor", 1, "TEXT", "floor"},
    {"room", 1, "TEXT", "room"},
    {"tags", 1, "A,B", "tags (replaces the list)"},
    {"notes", 1, "TEXT", "notes"},
    {"status", 1, "STATUS", "edit only: prospect, active, overdue, suspended, closed"},
    {"json-file", 1, "FILE", "the whole customer as JSON (the API's shape)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_customer_find[] = {
    {"phone", 1, "NUMBER", "primary or backup phone"},
    {"name", 1, "PREFIX", "name starting with"},
    {"pppoe", 1, "USERNAME", "PPPoE account"},
    {"serial", 1, "SERIAL", "ONU serial"},
    {"community", 1, "TEXT", "residential community"},
    {"building", 1, "TEXT", "building"},
    {"status", 1, "STATUS", "status"},
    {"tag", 1, "TAG", "tag"},
    {"limit", 1, "N", "at most N results (default 20)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_product_list[] = {
    {"kind", 1, "KIND", "plan, addon, fee, deposit, promotion"},
    {"status", 1, "STATUS", "draft, active, retired"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_product_add[] = {
    {"kind", 1, "KIND", "plan, addon, fee, deposit, promotion"},
    {"name", 1, "NAME", "the name customers see"},
    {"price", 1, "YUAN", "price, tax-inclusive (129.00)"},
    {"price-fen", 1, "FEN", "price in fen (12900)"},
    {"tax-category", 1, "CATEGORY", "internet, installation, equipment, deposit, ..."},
    {"rule", 1, "MODULE.FUNCTION", "the pricing rule"},
    {"params", 1, "JSON", "the rule's parameters"},
    {"attrs", 1, "JSON", "kind-specific attributes (a plan's bandwidth and period, an add-on's plans)"},
    {"from", 1, "DATE", "effective from (default today)"},
    {"status", 1, "STATUS", "draft (default) or active"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_product_price[] = {
    {"price", 1, "YUAN", "the new price"},
    {"price-fen", 1, "FEN", "the new price in fen"},
    {"params", 1, "JSON", "new parameters for the rule"},
    {"from", 1, "DATE", "effective from"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_subscribe[] = {
    {"start", 1, "DATE", "start date (default today)"},
    {"addons", 1, "A,B", "add-on product codes"},
    {"account", 1, "USERNAME", "the PPPoE account that carries it"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_bill_run[] = {
    {"period", 1, "YYYY-MM", "bill the period: as of the first day after it"},
    {"date", 1, "DATE", "bill what is due on or before DATE (default today)"},
    {"dry-run", 0, NULL, "compute everything, write nothing"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_bill_runs[] = {
    {"limit", 1, "N", "how many (default 20)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_invoice_list[] = {
    {"customer", 1, "CODE", "one customer's invoices"},
    {"status", 1, "STATUS", "open, partially_paid, paid, void, written_off"},
    {"limit", 1, "N", "how many (default 50)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_reason[] = {
    {"reason", 1, "TEXT", "why (required)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_invoice_credit[] = {
    {"reason", 1, "TEXT", "why (required)"},
    {"lines", 1, "SEQ:YUAN,...", "credit these lines by these amounts (default: the whole invoice)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_ledger_adjust[] = {
    {"amount", 1, "YUAN", "negative for a credit to the customer (-20.00), positive for a debit"},
    {"reason", 1, "TEXT", "why (required)"},
    {"approved-by", 1, "NAME", "who approved it (required)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_payment_record[] = {
    {"amount", 1, "YUAN", "the amount received"},
    {"receipt", 1, "NUMBER", "the receipt (counter) or bank reference"},
    {"channel", 1, "NAME", "counter (default) or bank"},
    {"invoice", 1, "NUMBER", "the invoice it pays (default: the oldest open ones)"},
    {"date", 1, "DATE", "the business day (default today)"},
    {"note", 1, "TEXT", "a note"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_bench[] = {
    {"count", 1, "N", "how many customers (default 100000, at most 10000000)"},
    {"checks", 0, NULL, "let SQLite evaluate the schema's CHECK constraints on every row during the load (slower)"},
    {"lookups", 1, "N", "random lookups of each kind after the load (default 10000; 0: none)"},
    {NULL, 0, NULL, NULL},
};

static const cli_opt opts_pay_inspect[] = {
    {"channel", 1, "NAME", "alipay or wechatpay (or any installed channel plugin)"},
    {"key", 1, "PEM", "the channel's public key or platform certificate (PEM file)"},
    {"apiv3-key", 1, "KEY", "WeChat Pay: the APIv3 key that decrypts the resource"},
    {"headers", 1, "FILE", "WeChat Pay: the request's headers, one `Name: value` per line"},
    {"body", 1, "FILE", "the request body exactly as received"},
    {"at", 1, "UNIXTIME", "check the time window as of this moment (default now)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_payment_refund[] = {
    {"amount", 1, "YUAN", "how much goes back"},
    {"reason", 1, "TEXT", "why (required)"},
    {"date", 1, "DATE", "the business day (default today)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_reconcile[] = {
    {"channel", 1, "NAME", "alipay or wechatpay"},
    {"date", 1, "DATE", "the business day of the statement"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_sandbox[] = {
    {"listen", 1, "HOST:PORT", "where the sandbox serves (default 127.0.0.1:8090)"},
    {"daemon", 1, "URL", "where bandbill serves, for the notifications (default http://127.0.0.1:8080)"},
    {"dir", 1, "DIR", "its keys and channels.ini (default the database's folder/sandbox)"},
    {"init-only", 0, NULL, "make the keys and channels.ini, do not serve"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_radius_resync[] = {
    {"dry-run", 0, NULL, "report the differences, repair nothing (exit 1 when there are any)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_outbox_list[] = {
    {"customer", 1, "CODE", "one customer's messages"},
    {"status", 1, "STATUS", "pending, failed, sent, dead"},
    {"channel", 1, "NAME", "log, sms, email, wechat"},
    {"event", 1, "EVENT", "verification_code, invoice_issued, dunning.due_reminder, ..."},
    {"limit", 1, "N", "how many (default 50)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_outbox_deliver[] = {
    {"limit", 1, "N", "handle at most N messages"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_dunning_run[] = {
    {"date", 1, "DATE", "the business day of the pass (default today)"},
    {"dry-run", 0, NULL, "say what would be done, write nothing"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_collection_list[] = {
    {"status", 1, "STATUS", "open or done"},
    {"priority", 1, "PRIORITY", "low or high"},
    {"assigned", 1, "USER", "tasks of this staff user (- for unassigned ones)"},
    {"customer", 1, "CODE", "tasks of this customer"},
    {"limit", 1, "N", "at most N tasks, newest first (default 50, at most 500)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_collection_assign[] = {
    {"note", 1, "TEXT", "a note kept with the change"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_collection_update[] = {
    {"status", 1, "STATUS", "open or done (closing needs --outcome)"},
    {"outcome", 1, "OUTCOME", "contacted, no_answer, promised, disputed, paid or other"},
    {"note", 1, "TEXT", "what was said or done"},
    {"promised-until", 1, "DATE", "the customer promised to pay by DATE: the ladder waits until then (- withdraws it)"},
    {NULL, 0, NULL, NULL},
};
static const cli_opt opts_bench_billrun[] = {
    {"customers", 1, "N", "how many customers to bill (default 100000, at most 10000000)"},
    {"dry-run", 0, NULL, "compute every bill and write nothing"},
    {"reuse", 0, NULL, "bill the customers already in --db (made by an earlier run of this bench) instead of creating them"},
    {NULL, 0, NULL, NULL},
};

static const command commands[] = {
    {"init", cmd_init, "", 0, 0, NULL, "create the database (and its folder) and apply the schema",
     "Creates the SQLite database named by --db (default ./var/bandbill.db) with its folder (mode 0700)\n"
     "and applies every schema migration. Running it again is harmless."},
    {"migrate", cmd_migrate, "", 0, 0, opts_migrate, "apply pending schema migrations",
     "Applies the migrations this binary knows and the database lacks, each in its own transaction.\n"
     "Refuses a database that is newer than the binary or whose applied migrations were edited."},
    {"demo", cmd_demo, "", 0, 0, NULL, "fill the database with demo data (idempotent)",
     "Loads the rules into the version store and builds a living ISP in Hangzhou through the modules:\n"
     "2,000 customers (a fixed seed: the same on every machine) with PPPoE accounts, ONUs and set-top\n"
     "boxes with their deposits, subscriptions with add-ons over the past two years, changes and pending\n"
     "charges, on a catalog of 5 plans, add-ons, fees, deposits and promotions. Creates one staff account\n"
     "per built-in role (passwords in var/demo-staff.txt, mode 0600) and an admin token named demo-admin\n"
     "(var/demo-admin.token, mode 0600) for trying the API with curl. Postpaid monthly subscriptions are\n"
     "billed through the month before last, so `bandbill bill run --period <last month>` bills one month.\n"
     "A second run finds the demo there and adds nothing."},
    {"serve", cmd_serve, "", 0, 0, opts_serve, "run the daemon: HTTP API, scheduler, hot reload",
     "Serves HTTP on --listen and the control socket; SIGHUP reloads the rules, SIGTERM/SIGINT stop\n"
     "accepting, finish requests in flight and exit 0."},
    {"token create", cmd_token_create, "", 0, 0, opts_token_create, "create an API token (printed once)",
     "Prints a new bearer token on standard output. Only its SHA-256 is stored: copy it now."},
    {"token list", cmd_token_list, "", 0, 0, NULL, "list API tokens (never their values)", NULL},
    {"token revoke", cmd_token_revoke, "NAME", 1, 1, NULL, "revoke an API token", NULL},
    {"backup", cmd_backup, "PATH", 1, 1, opts_backup, "write an online backup of the database to PATH",
     "Copies the live database with SQLite's online backup (the daemon may keep running).\n"
     "To restore: stop the daemon, copy PATH over the database file, delete its -wal and -shm files,\n"
     "start the daemon."},
    {"jobs list", cmd_jobs_list, "", 0, 0, NULL, "list scheduled jobs, their schedules and last runs", NULL},
    {"jobs run", cmd_jobs_run, "NAME", 1, 1, NULL, "run a job now", NULL},
    {"rules check", cmd_rules_check, "[DIR]", 0, 1, NULL, "compile and validate a rules folder",
     "Loads every file of DIR (default: --rules) into a sandbox as the daemon would, without running\n"
     "examples. Prints the version the folder would have."},
    {"rules test", cmd_rules_test, "[DIR]", 0, 1, opts_rules_test, "run the examples carried by the rules",
     "Runs every example of every module (or of --module) and prints PASS/FAIL with the first difference."},
    {"rules reload", cmd_rules_reload, "", 0, 0, opts_rules_reload, "make the running daemon reload its rules",
     "Talks to the daemon over its control socket. On failure the daemon keeps its old rules and this\n"
     "prints the error with file:line."},
    {"rules show", cmd_rules_show, "[VERSION]", 0, 1, opts_rules_show, "list stored rule set versions, or show one",
     NULL},
    {"rules diff", cmd_rules_diff, "A B", 2, 2, NULL, "show what changed between two rule set versions",
     "A and B are stored versions (a prefix of 8+ hex digits) or rules folders."},
    {"rules call", cmd_rules_call, "MODULE.FUNCTION", 1, 1, opts_rules_call, "call one rule function with JSON input",
     "Example: bandbill rules call tariffs.monthly --input '{\"price\":12900,\"period\":{...}}'"},
    {"user add", cmd_user_add, "NAME", 1, 1, opts_user_add, "create a staff account",
     "Passwords need 10+ characters with three of lower case, upper case, digits and symbols (or 16+ of anything)."},
    {"user disable", cmd_user_disable, "NAME", 1, 1, NULL, "disable a staff account (ends its sessions)", NULL},
    {"user enable", cmd_user_enable, "NAME", 1, 1, NULL, "enable a disabled staff account", NULL},
    {"user passwd", cmd_user_passwd, "NAME", 1, 1, opts_password, "set a new password (ends the user's sessions)", NULL},
    {"user unlock", cmd_user_unlock, "NAME", 1, 1, NULL, "lift a lockout after failed logins", NULL},
    {"user list", cmd_user_list, "", 0, 0, NULL, "list staff accounts", NULL},
    {"user roles", cmd_user_roles, "", 0, 0, NULL, "list roles and their permissions", NULL},
    {"audit verify", cmd_audit_verify, "", 0, 0, NULL, "check the audit trail's chain; names the first broken record", NULL},
    {"audit export", cmd_audit_export, "", 0, 0, opts_audit_export, "write audit records as JSON lines (for a regulator)",
     "Each line carries its hash and the previous record's hash, so the chain can be checked from the export."},
    {"keys status", cmd_keys_status, "", 0, 0, NULL, "the key file, the current key, and how many values each key holds", NULL},
    {"keys rotate", cmd_keys_rotate, "", 0, 0, opts_keys_rotate, "add a new key and re-encrypt every value under it",
     "Safe to stop at any point: `keys rotate --resume` finishes the work. Old keys stay in the key file\n"
     "until `keys prune` removes the ones no value uses."},
    {"keys prune", cmd_keys_prune, "", 0, 0, NULL, "remove keys that no stored value uses any more", NULL},
    {"privacy export", cmd_privacy_export, "CUSTOMER", 1, 1, opts_privacy_export,
     "everything held about one customer, as JSON (PIPL right of access; audited)",
     "Decrypts and gathers the customer's profile, contacts, addresses, accounts, devices, deposits,\n"
     "subscriptions, charges, messages and change history. The export itself is an audit record."},
    {"privacy erase", cmd_privacy_erase, "CUSTOMER", 1, 1, opts_privacy_erase,
     "anonymise a closed customer's personal data (PIPL right to erasure; audited)",
     "Removes names, ID-card number, phones, e-mail, detailed addresses, tags, notes and message\n"
     "recipients of a closed customer. Invoices, payments, the ledger and the audit trail stay, for\n"
     "accounting law, but no longer point to a person. Needs --yes."},
    {"customer add", cmd_customer_add, "", 0, 0, opts_customer, "create a customer", "Personal data is validated: a mainland mobile, an 18-character ID with its check character. Give the\nservice address with --province --city --district and the finer parts, or everything as --json-file."},
    {"customer show", cmd_customer_show, "CODE", 1, 1, NULL, "show a customer (masked as for the local admin: in clear)", NULL},
    {"customer find", cmd_customer_find, "[QUERY]", 0, 1, opts_customer_find, "find customers by code, phone, name prefix, PPPoE account, ONU serial or address parts", NULL},
    {"customer edit", cmd_customer_edit, "CODE", 1, 1, opts_customer, "change a customer's details or status", NULL},
    {"product list", cmd_product_list, "", 0, 0, opts_product_list, "list products with their current price", NULL},
    {"product add", cmd_product_add, "CODE", 1, 1, opts_product_add, "define a product with its first version", "The price is in yuan with up to two decimals (129.00) or fen with --price-fen."},
    {"product price", cmd_product_price, "CODE", 1, 1, opts_product_price, "a new price (or parameters) from a date on", NULL},
    {"bill run", cmd_bill_run, "", 0, 0, opts_bill_run, "make the bills that are due (or a dry run, or a what-if with candidate rules)",
     "Bills every subscription due on or before the date, each in its own transaction: run it again, or after\n"
     "a crash, and nothing is billed twice. A customer whose rules fail is reported and the run goes on.\n"
     "It bills with the live rules: the version the daemon last loaded (bandbill rules show). Given\n"
     "--rules DIR, it is a what-if: it computes with both and reports the difference, writing nothing."},
    {"bill runs", cmd_bill_runs, "", 0, 0, opts_bill_runs, "billing runs, newest first", NULL},
    {"bill show", cmd_bill_show, "RUN", 1, 1, NULL, "one billing run's report", NULL},
    {"bill preview", cmd_bill_preview, "CUSTOMER", 1, 1, NULL, "the customer's next bills as they would be made now (writes nothing)", NULL},
    {"invoice list", cmd_invoice_list, "", 0, 0, opts_invoice_list, "invoices, newest first", NULL},
    {"invoice show", cmd_invoice_show, "NUMBER", 1, 1, NULL, "one invoice with its lines and settlements", NULL},
    {"invoice explain", cmd_invoice_explain, "NUMBER", 1, 1, NULL, "why was I charged this? each line with its step, rule and reasons", NULL},
    {"invoice void", cmd_invoice_void, "NUMBER", 1, 1, opts_reason, "void an invoice nothing has settled", NULL},
    {"invoice credit", cmd_invoice_credit, "NUMBER", 1, 1, opts_invoice_credit, "a credit note against an invoice, whole or per line", NULL},
    {"invoice write-off", cmd_invoice_write_off, "NUMBER", 1, 1, opts_reason, "write off what is left to pay of an invoice", NULL},
    {"ledger show", cmd_ledger_show, "CUSTOMER", 1, 1, NULL, "a customer's ledger, balance and credit", NULL},
    {"ledger adjust", cmd_ledger_adjust, "CUSTOMER", 1, 1, opts_ledger_adjust, "a credit or debit adjustment with reason and approver", NULL},
    {"ledger verify", cmd_ledger_verify, "[CUSTOMER]", 0, 1, NULL, "prove that ledger, invoices and payments agree; names every disagreement", NULL},
    {"payment refund", cmd_payment_refund, "PAYMENT", 1, 1, opts_payment_refund, "record money paid back from a counter or bank payment",
     "Only what settles nothing can go back: the part of the payment no invoice took, within the\n"
     "customer's credit (credit an invoice first to refund more). A payment that came through a channel\n"
     "(Alipay, WeChat Pay) is given back by the channel first (its plugin's refund call, with the\n"
     "channel's settings from the config); only what the channel took is recorded."},
    {"payment record", cmd_payment_record, "CUSTOMER", 1, 1, opts_payment_record, "record a payment at the counter or by bank transfer", NULL},
    {"subscribe", cmd_subscribe, "CUSTOMER PLAN", 2, 2, opts_subscribe, "subscribe a customer to a plan", NULL},
    {"bench customers", cmd_bench_customers, "", 0, 0, opts_bench, "benchmark: create customers with accounts, devices and subscriptions",
     "Writes into the database given by --db: use a scratch one. Creates N demo customers (encrypted\n"
     "personal data, PPPoE accounts, ONUs, deposits, subscriptions) through the modules' bulk paths in one\n"
     "transaction (the eight random-key secondary indexes are built after the rows, inside it), then\n"
     "times lookups by customer code, phone and PPPoE account. The schema's\n"
     "CHECK constraints are enforced by the modules' validation during the load and verified afterwards\n"
     "(PRAGMA quick_check) unless --checks asks SQLite to evaluate them on every row. docs/BENCHMARKS.md\n"
     "has the figures."},
    {"reconcile", cmd_reconcile, "FILE", 1, 1, opts_reconcile, "a channel's daily statement against the payments recorded here",
     "Reads the statement a channel's merchant platform gives for a day (Alipay's trade statement in GBK,\n"
     "WeChat Pay's trade bill; columns found by their names) and reports what matches, amounts that\n"
     "differ, what the channel has and we do not (a lost notification), what we have and the channel\n"
     "does not, and refunds that do not show here. Writes nothing."},
    {"dunning run", cmd_dunning_run, "", 0, 0, opts_dunning_run, "the collection pass: each unpaid bill's due stage of rules/dunning.lua, once",
     "Asks rules/dunning.lua (the folder of --rules) which stage of the ladder is due for each unpaid\n"
     "bill and carries it out once: notices and line changes through the outbox, the customer's status,\n"
     "a collection task. Stages passed over are recorded as skipped. Running it twice acts once."},
    {"collection list", cmd_collection_list, "", 0, 0, opts_collection_list, "collection tasks, newest first",
     "The tasks the collection ladder opened (one per overdue bill; its priority rises at suspension),\n"
     "with who has each, the promise to pay and the last outcome."},
    {"collection show", cmd_collection_show, "TASK", 1, 1, NULL, "one collection task with its notes and the ladder's actions on its bill", NULL},
    {"collection assign", cmd_collection_assign, "TASK USER", 2, 2, opts_collection_assign, "give a collection task to a staff user (- to nobody)", NULL},
    {"collection update", cmd_collection_update, "TASK", 1, 1, opts_collection_update, "record an outcome, a note or a promise to pay; close or reopen a task",
     "Every update is kept as a note with who made it and when. A promise to pay pauses the ladder for\n"
     "the task's bill until the promised day (rules/dunning.lua reads it); closing a task needs its outcome."},
    {"radius sync", cmd_radius_sync, "", 0, 0, NULL, "apply the pending network changes once (the daemon does it every radius.poll_ms)",
     "Takes the accounts whose state, password, plan or rate changed since the last sync and makes\n"
     "FreeRADIUS's tables (radius.db) hold them, then tells the NASes about live sessions (CoA for a new\n"
     "rate, Disconnect for a suspension). The first sync applies every account. Exit 1 when a NAS did not\n"
     "take a request (the tables are written all the same)."},
    {"radius resync", cmd_radius_resync, "", 0, 0, opts_radius_resync, "compare every account with FreeRADIUS's tables; report and repair the drift",
     "Compares each account's desired entries (password, rate, rejection or walled garden) with\n"
     "radcheck, radreply and radusergroup, and every name those tables hold with the accounts: missing,\n"
     "extra and wrong entries, and live sessions of suspended or closed lines. Repairs all of it unless\n"
     "--dry-run (which exits 1 when anything differs)."},
    {"radius status", cmd_radius_status, "", 0, 0, NULL, "where the network sync stands: pending changes, the last error, sessions a NAS did not take", NULL},
    {"outbox list", cmd_outbox_list, "", 0, 0, opts_outbox_list, "messages to customers, newest first, with their delivery status", NULL},
    {"outbox show", cmd_outbox_show, "ID", 1, 1, NULL, "one message: status, recipient, payload, every attempt and its outcome", NULL},
    {"outbox retry", cmd_outbox_retry, "ID", 1, 1, NULL, "send a dead message again (audited)",
     "A dead message (its attempts used up, or refused for good) goes back to pending with a fresh\n"
     "budget of attempts; the attempts made stay in its history."},
    {"outbox deliver", cmd_outbox_deliver, "", 0, 0, opts_outbox_deliver, "deliver what is due now, on every configured channel",
     "Runs the dispatcher once over the due messages (pending, or failed and due again): renders them\n"
     "with rules/notices.lua of --rules, sends them through their channel (notify.CHANNEL.* settings),\n"
     "records each outcome, and returns when nothing due is left. For machines where no daemon runs\n"
     "(or notify.dispatch = false); claims keep it from sending what a running daemon sends."},
    {"sandbox", cmd_sandbox, "", 0, 0, opts_sandbox, "play Alipay and WeChat Pay offline, for the demo and for trying payments",
     "Makes both sides' keys and the channels' settings once (DIR/channels.ini: serve bandbill with\n"
     "--config DIR/channels.ini), then serves the channels' pay pages and order API: a pay link of a\n"
     "payment order opens a page whose button sends bandbill the notification, signed (and for WeChat\n"
     "Pay encrypted) as the real channel would. No real money moves."},
    {"pay inspect", cmd_pay_inspect, "", 0, 0, opts_pay_inspect, "verify a captured payment notification offline and say why it fails",
     "Runs exactly the checks of the live notification route on a captured request: the signature\n"
     "(Alipay RSA2 over the canonical string; WeChat Pay v3 over timestamp, nonce and body, with the\n"
     "time window), then the decryption (WeChat Pay AES-GCM with the APIv3 key), and prints the decoded\n"
     "fields, or the precise check and field that fail (exit 1)."},
    {"bench billrun", cmd_bench_billrun, "", 0, 0, opts_bench_billrun, "benchmark: a billing run over N customers, end to end",
     "Writes into the database given by --db: use a scratch one. Creates N customers with subscriptions\n"
     "(as bench customers does) unless --reuse, then times one billing run for a month over all of them:\n"
     "read subscriptions, run the bill's rule steps, write invoices, lines and ledger entries durably.\n"
     "Reports invoices per second and peak memory. docs/BENCHMARKS.md has the figures."},
    {"config", cmd_config, "", 0, 0, NULL, "print the effective configuration", NULL},
    {"version", cmd_version, "", 0, 0, NULL, "print the version of bandbill and its libraries", NULL},
};
static const int ncommands = sizeof commands / sizeof *commands;

static const cli_opt common_opts[] = {
    {"db", 1, "PATH", "database file (default ./var/bandbill.db; BANDBILL_DB)"},
    {"rules", 1, "DIR", "rules folder (default ./rules; BANDBILL_RULES)"},
    {"config", 1, "FILE", "INI config file (BANDBILL_CONFIG)"},
    {"set", 1, "KEY=VALUE", "set any config key, e.g. --set log.level=debug (repeatable)"},
    {"json", 0, NULL, "machine-readable output"},
    {"help", 0, NULL, "show help"},
    {NULL, 0, NULL, NULL},
};

const char *cli_opt_value(const cli *c, const char *name)
{
    for (int i = c->nopts - 1; i >= 0; i--)
        if (strcmp(c->opts[i].name, name) == 0) return c->opts[i].value;
    return NULL;
}

int cli_opt_limit(const cli *c, int64_t dflt, int64_t max, int64_t *out, err *e)
{
    const char *s = cli_opt_value(c, "limit");
    *out = dflt;
    if (!s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !s[0] || *end || v < 1 || (max && v > max)) {
        if (max) return err_set(e, ERR_USAGE, "--limit is a whole number from 1 to %lld", (long long)max);
        return err_set(e, ERR_USAGE, "--limit is a whole number, 1 or more");
    }
    *out = v;
    return 0;
}

void cli_actor(char *out, size_t n)
{
    struct passwd pw, *res = NULL;
    char pbuf[1024];
    if (getpwuid_r(getuid(), &pw, pbuf, sizeof pbuf, &res) == 0 && res) snprintf(out, n, "cli:%s", res->pw_name);
    else snprintf(out, n, "cli:uid%u", (unsigned)getuid());
}

/* Columns a code point takes on a terminal: the wide East Asian ranges 2. */
static int cols_of(uint32_t cp)
{
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
                   (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                   (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD)
               ? 2
               : 1;
}

const char *cli_fit(const char *s, int cols, char *out, size_t n)
{
    size_t o = 0;
    int used = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o + 8 < n) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 1;
        uint32_t cp = len == 1 ? *p : (uint32_t)(*p & (0x3F >> (len - 1)));
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                len = 1; /* not UTF-8: one byte, one column */
                cp = *p;
                break;
            }
            cp = cp << 6 | (p[i] & 0x3F);
        }
        int w = cols_of(cp);
        if (used + w > cols) break;
        memcpy(out + o, p, (size_t)len);
        o += (size_t)len;
        used += w;
        p += len;
    }
    while (used < cols && o + 1 < n) out[o++] = ' ', used++;
    out[o] = 0;
    return out;
}

int cli_open_rules(cli *c, struct ruleset **out, err *e) { return rules_load_folder(c->cfg.rules, out, e); }

int cli_open_db(cli *c, db **out, err *e)
{
    int rc = db_open(c->cfg.db, 0, out, e);
    if (!rc && (rc = migrate_require_current(*out, e))) {
        db_close(*out);
        *out = NULL;
    }
    return rc;
}

int cli_env_open(cli *c, cli_env *x, err *e)
{
    memset(x, 0, sizeof *x);
    jv_arena_init(&x->a, 0);
    int rc = cli_open_db(c, &x->d, e);
    if (!rc && (rc = cli_open_vault(c, &x->v, e))) {
        db_close(x->d);
        x->d = NULL;
    }
    return rc;
}

int cli_env_close(cli_env *x, int rc)
{
    if (x->d && db_in_tx(x->d)) db_rollback(x->d);
    if (x->d) db_close(x->d);
    if (x->v) vault_close(x->v);
    jv_arena_free(&x->a);
    return rc;
}

int cli_admin_view(cli *c, cli_env *x, const char *resource, jv **objs, size_t n, err *e)
{
    buf clear = {0}, ids = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        buf one = {0};
        rc = privacy_filter(x->d, &x->a, "admin", resource, objs[i], &one, e);
        if (!rc && one.len) {
            if (!clear.len) buf_puts(&clear, buf_cstr(&one));
            if (ids.len) buf_putc(&ids, ',');
            const jv *id = jv_get(objs[i], "id");
            if (id && id->kind == JV_INT) buf_printf(&ids, "%lld", (long long)id->u.i);
            else if (id && id->kind == JV_STR) buf_puts(&ids, id->u.str.s);
        }
        buf_free(&one);
    }
    if (!rc && clear.len) {
        jv *detail = jv_obj(&x->a);
        if (!detail || jv_obj_set_str(&x->a, detail, "fields", buf_cstr(&clear)) || jv_obj_set_str(&x->a, detail, "ids", buf_cstr(&ids)))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "field.view", .object_type = resource, .object_id = ids.len < 200 ? buf_cstr(&ids) : NULL,
                          .detail = detail};
        if (!rc) rc = db_begin(x->d, e);
        if (!rc) rc = cli_audit(c, x->d, x->v, &ev, e);
        if (!rc) rc = db_commit(x->d, e);
    }
    buf_free(&clear);
    buf_free(&ids);
    return rc;
}

int cli_print_json(jw *w, err *e)
{
    size_t n;
    const char *s = jw_finish(w, &n);
    int rc = 0;
    if (!s) rc = err_set(e, ERR_INTERNAL, "could not encode the output as JSON");
    else {
        fwrite(s, 1, n, stdout);
        fputc('\n', stdout);
    }
    jw_free(w);
    return rc;
}

static void print_opts(FILE *f, const cli_opt *o)
{
    for (; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->has_arg ? " " : "", o->has_arg ? o->arg_name : "");
        fprintf(f, "  %-22s %s\n", left, o->help);
    }
}

static void usage_all(FILE *f)
{
    fprintf(f, "bandbill %s - billing and operations for broadband ISPs\n\n"
               "Usage: bandbill COMMAND [OPTIONS] [ARGS]\n\nCommands:\n", BB_VERSION);
    for (int i = 0; i < ncommands; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].args);
        fprintf(f, "  %-30s %s\n", left, commands[i].summary);
    }
    fprintf(f, "\nOptions for every command:\n");
    print_opts(f, common_opts);
    fprintf(f, "\nEvery config key can also be set as BANDBILL_<SECTION>_<KEY> (e.g. BANDBILL_LOG_LEVEL=debug).\n"
               "`bandbill COMMAND --help` tells more about one command; `bandbill config` shows the keys.\n");
}

static void usage_cmd(FILE *f, const command *cmd)
{
    fprintf(f, "Usage: bandbill %s [OPTIONS] %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
    if (cmd->help) fprintf(f, "\n%s\n", cmd->help);
    if (cmd->opts && cmd->opts->name) {
        fprintf(f, "\nOptions:\n");
        print_opts(f, cmd->opts);
    }
    fprintf(f, "\nCommon options:\n");
    print_opts(f, common_opts);
}

static const cli_opt *find_opt(const command *cmd, const char *name)
{
    for (const cli_opt *o = common_opts; o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    for (const cli_opt *o = cmd ? cmd->opts : NULL; o && o->name; o++)
        if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static int usage_error(const command *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "bandbill: %s%s%s (see bandbill %s --help)\n", what, arg[0] ? " " : "", arg, cmd->name);
    return 2;
}

/* Finds the command named by the first one or two words that are not
 * options (skipping the values of options that take one). */
static const command *find_command(int argc, char **argv, int *w1, int *w2)
{
    int words[2], nw = 0;
    for (int i = 1; i < argc && nw < 2; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            char name[64];
            snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - a - 2) : (int)strlen(a + 2), a + 2);
            int takes = 0;
            for (int k = 0; k < ncommands && !takes; k++) {
                const cli_opt *o = find_opt(&commands[k], name);
                if (o && o->has_arg) takes = 1;
            }
            if (takes && !eq) i++;
            continue;
        }
        words[nw++] = i;
    }
    *w1 = *w2 = -1;
    if (nw == 0) return NULL;
    for (int k = 0; k < ncommands; k++) {
        const char *n = commands[k].name, *sp = strchr(n, ' ');
        if (sp) {
            if (nw == 2 && strncmp(argv[words[0]], n, (size_t)(sp - n)) == 0 && !argv[words[0]][sp - n] &&
                strcmp(argv[words[1]], sp + 1) == 0) {
                *w1 = words[0];
                *w2 = words[1];
                return &commands[k];
            }
        } else if (strcmp(argv[words[0]], n) == 0) {
            *w1 = words[0];
            return &commands[k];
        }
    }
    *w1 = words[0];
    return NULL;
}

int cli_main(int argc, char **argv, char **envp)
{
    if (argc < 2) {
        usage_all(stderr);
        return 2;
    }
    int w1, w2;
    const command *cmd = find_command(argc, argv, &w1, &w2);
    if (!cmd) {
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                usage_all(stdout);
                return 0;
            }
        if (w1 < 0) {
            usage_all(stderr);
            return 2;
        }
        /* a group name alone ("rules") lists its subcommands */
        int group = 0;
        for (int k = 0; k < ncommands; k++)
            if (!strncmp(commands[k].name, argv[w1], strlen(argv[w1])) && commands[k].name[strlen(argv[w1])] == ' ') group = 1;
        fprintf(stderr, "bandbill: %s '%s'%s (see bandbill --help)\n", group ? "missing or unknown subcommand after" : "unknown command",
                argv[w1], "");
        return 2;
    }

    /* argv without the command words, for getopt_long */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    struct option *lo = calloc(CLI_MAX_OPTS + 1, sizeof *lo);
    static cli cl;
    cli *c = &cl;
    memset(c, 0, sizeof *c);
    int na = 0, rc = 0;
    if (!args || !lo) {
        fprintf(stderr, "bandbill: out of memory\n");
        free(args);
        free(lo);
        return 1;
    }
    for (int i = 0; i < argc; i++)
        if (i != w1 && i != w2) args[na++] = argv[i];
    int nlo = 0;
    for (const cli_opt *o = common_opts; o->name; o++) lo[nlo++] = (struct option){o->name, o->has_arg ? required_argument : no_argument, NULL, 0};
    for (const cli_opt *o = cmd->opts; o && o->name && nlo < CLI_MAX_OPTS; o++)
        lo[nlo++] = (struct option){o->name, o->has_arg ? required_argument : no_argument, NULL, 0};
    c->cmd = cmd;
    cfg_defaults(&c->cfg);
    optind = 1;
    opterr = 0;
    int idx, ch;
    const char *sets[CLI_MAX_OPTS];
    int nsets = 0;
    const char *config = NULL;
    for (char **p = envp; p && *p; p++)
        if (!strncmp(*p, "BANDBILL_CONFIG=", 16)) config = *p + 16;
    while ((ch = getopt_long(na, args, ":", lo, &idx)) != -1) {
        if (ch == '?') {
            rc = usage_error(cmd, "unknown option", args[optind - 1]);
            goto out;
        }
        if (ch == ':') {
            rc = usage_error(cmd, "this option needs a value:", args[optind - 1]);
            goto out;
        }
        const char *name = lo[idx].name, *val = optarg ? optarg : "";
        if (!strcmp(name, "help")) {
            usage_cmd(stdout, cmd);
            goto out;
        }
        if (!strcmp(name, "json")) c->json = 1;
        else if (!strcmp(name, "config")) config = val;
        else if (!strcmp(name, "set") && nsets < CLI_MAX_OPTS) sets[nsets++] = val;
        else if (c->nopts < CLI_MAX_OPTS) {
            c->opts[c->nopts].name = name;
            c->opts[c->nopts].value = val;
            c->nopts++;
        }
    }
    c->argc = na - optind;
    c->argv = args + optind;
    if (c->argc < cmd->min_args || c->argc > cmd->max_args) {
        rc = usage_error(cmd, c->argc < cmd->min_args ? "missing argument:" : "too many arguments; expected:",
                         cmd->args[0] ? cmd->args : "none");
        goto out;
    }

    /* configuration: defaults < file < environment < flags */
    err e;
    err_clear(&e);
    if (config && cfg_load_file(&c->cfg, config, &e)) goto fail;
    if (cfg_load_env(&c->cfg, envp, &e)) goto fail;
    static const char *const direct[] = {"db", "rules", "listen", "socket", NULL};
    for (const char *const *d = direct; *d; d++) {
        const char *v = cli_opt_value(c, *d);
        if (v && cfg_set(&c->cfg, *d, v, "command line", &e)) goto fail;
    }
    for (int i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq) {
            rc = usage_error(cmd, "--set needs KEY=VALUE, got", sets[i]);
            goto out;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (cfg_set(&c->cfg, key, eq + 1, "--set", &e)) goto fail;
    }
    if (cfg_finish(&c->cfg, &e)) goto fail;
    setenv("TZ", c->cfg.timezone, 1);
    tzset();
    /* other commands speak through stdout and one error line; their log
     * lines appear only when asked for (log.level or log.file set) */
    if (cmd->fn == cmd_serve || c->cfg.log_level_set || c->cfg.log_file[0])
        log_set_level(log_level_parse(c->cfg.log_level));
    else
        log_set_level(LOG_OFF);
    if (cmd->fn != cmd_serve && c->cfg.log_file[0]) {
        int fd = open(c->cfg.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd >= 0) log_set_fd(fd);
    }

    /* a command returns 0, a negative ERR_* (reported here), or a positive
     * exit status it has already explained on its own */
    rc = cmd->fn(c, &e);
    if (c->audited) cli_anchor(c);
    if (rc >= 0) goto out;
    for (char *p = e.msg; *p; p++)
        if (*p == '\n') *p = ' ';
    if (rc == ERR_USAGE) {
        fprintf(stderr, "bandbill: %s (see bandbill %s --help)\n", e.msg, cmd->name);
        rc = 2;
        goto out;
    }
fail:
    /* one line: the message may carry newlines from a rule traceback */
    for (char *p = e.msg; *p; p++)
        if (*p == '\n') *p = ' ';
    fprintf(stderr, "bandbill: error: %s\n", e.msg);
    rc = 1;
out:
    free(args);
    free(lo);
    log_release();
    return rc;
}
