/* routes.c - THE route table: every HTTP route of bandbill, its handler and
 * the permission it needs. Tests walk this table (permissions, the API
 * reference); a route added anywhere else does not exist. */
#include "api.h"
#include "notify_api.h"
#include "router.h"

const route routes[] = {
    /* operations: outside /api/v1, open (bind to loopback or firewall them) */
    {"GET", "/healthz", api_healthz, PERM_PUBLIC, "liveness and readiness: database and live rule set", 0},
    {"GET", "/metrics", api_metrics, PERM_PUBLIC, "Prometheus metrics", 0},

    /* staff login: the one open /api/v1 route besides payment callbacks */
    {"POST", "/api/v1/auth/login", api_auth_login, PERM_PUBLIC, "log in to the console: a session cookie and a CSRF token", ROUTE_NO_CSRF},
    {"POST", "/api/v1/auth/logout", api_auth_logout, "auth.self", "end the current session", 0},
    {"GET", "/api/v1/auth/me", api_auth_me, "auth.self", "who is calling, with the session's CSRF token", 0},
    {"POST", "/api/v1/auth/password", api_auth_password, "auth.self", "change one's own password (ends one's other sessions)", 0},
    {"GET", "/api/v1/auth/sessions", api_auth_sessions, "auth.self", "one's own sessions", 0},
    {"DELETE", "/api/v1/auth/sessions/{id}", api_auth_session_delete, "auth.self", "end one of one's own sessions (an admin: anyone's)", 0},

    /* staff accounts and roles */
    {"GET", "/api/v1/users", api_users_list, "user.read", "staff accounts", 0},
    {"POST", "/api/v1/users", api_users_create, "user.write", "create a staff account", 0},
    {"GET", "/api/v1/users/{username}", api_users_get, "user.read", "one staff account", 0},
    {"PATCH", "/api/v1/users/{username}", api_users_update, "user.write", "change a staff account (role, status, contacts)", 0},
    {"POST", "/api/v1/users/{username}/unlock", api_users_unlock, "user.write", "lift a lockout after failed logins", 0},
    {"POST", "/api/v1/users/{username}/password", api_users_password, "user.write", "reset a password (ends the user's sessions)", 0},
    {"GET", "/api/v1/users/{username}/sessions", api_users_sessions, "user.read", "a staff account's sessions", 0},
    {"GET", "/api/v1/roles", api_roles_list, "role.read", "roles with their permissions and field policies", 0},
    {"POST", "/api/v1/roles", api_roles_create, "role.write", "create a role", 0},
    {"PUT", "/api/v1/roles/{name}", api_roles_update, "role.write", "change a role's permissions and field policies", 0},
    {"DELETE", "/api/v1/roles/{name}", api_roles_delete, "role.write", "delete a role no one holds (not a built-in one)", 0},

    /* audit trail */
    {"GET", "/api/v1/audit", api_audit_list, "audit.read", "audit records, newest first", 0},
    {"GET", "/api/v1/audit/verify", api_audit_verify, "audit.read", "check the audit chain", 0},

    /* customers */
    {"GET", "/api/v1/customers", api_customers_list, "customer.read", "search customers: by code, phone, name prefix, PPPoE account, ONU serial, address parts, tag, status", 0},
    {"POST", "/api/v1/customers", api_customers_create, "customer.write", "create a customer", 0},
    {"GET", "/api/v1/customers/{code}", api_customers_get, "customer.read", "one customer", 0},
    {"PATCH", "/api/v1/customers/{code}", api_customers_update, "customer.write", "change a customer's details (contacts, address, tags, notes)", 0},
    {"POST", "/api/v1/customers/{code}/status", api_customers_status, "customer.write", "move a customer to another status (allowed transitions only)", 0},
    {"GET", "/api/v1/customers/{code}/history", api_customers_history, "customer.read", "every change to the customer: old and new values, who and when", 0},
    {"POST", "/api/v1/customers/{code}/phone-verification", api_customers_verify_send, "customer.write", "send a 6-digit code to the customer's phone", 0},
    {"POST", "/api/v1/customers/{code}/phone-verification/confirm", api_customers_verify_confirm, "customer.write", "check the code the customer read back", 0},
    {"PUT", "/api/v1/customers/{code}/wechat", api_customers_wechat_set, "customer.write", "set the WeChat openid the customer's template messages go to", 0},
    {"DELETE", "/api/v1/customers/{code}/wechat", api_customers_wechat_delete, "customer.write", "forget the customer's WeChat openid", 0},
    {"GET", "/api/v1/customers/{code}/overview", api_customers_overview, "customer.read", "the 360-degree view: profile, accounts, devices, subscriptions, balance, bills, dunning, tickets", 0},

    /* service accounts, devices, deposits */
    {"GET", "/api/v1/customers/{code}/accounts", api_accounts_list, "customer.read", "a customer's PPPoE accounts", 0},
    {"POST", "/api/v1/customers/{code}/accounts", api_accounts_create, "customer.write", "open a PPPoE account (the password is shown once)", 0},
    {"POST", "/api/v1/accounts/{username}/password", api_accounts_reset, "customer.write", "reset a PPPoE password (shown once)", 0},
    {"POST", "/api/v1/accounts/{username}/reset-code", api_accounts_reset_code, "customer.write", "send the customer a code to reset the PPPoE password", 0},
    {"POST", "/api/v1/accounts/{username}/reset", api_accounts_reset_with_code, "customer.write", "reset the PPPoE password with the code the customer received", 0},
    {"GET", "/api/v1/devices", api_devices_list, "device.read", "devices by serial, MAC, status", 0},
    {"POST", "/api/v1/devices", api_devices_create, "device.write", "register a device (ONU, set-top box, router)", 0},
    {"GET", "/api/v1/devices/{serial}", api_devices_get, "device.read", "a device with its installation history", 0},
    {"POST", "/api/v1/devices/{serial}/install", api_devices_install, "device.write", "install a device at a customer", 0},
    {"POST", "/api/v1/devices/{serial}/remove", api_devices_remove, "device.write", "take a device out (returned, lost, closed)", 0},
    {"POST", "/api/v1/devices/{serial}/swap", api_devices_swap, "device.write", "replace an installed device by another, keeping the history", 0},
    {"GET", "/api/v1/customers/{code}/deposits", api_deposits_list, "customer.read", "a customer's device deposits", 0},
    {"POST", "/api/v1/customers/{code}/deposits", api_deposits_create, "customer.write", "take a refundable deposit for a device", 0},
    {"POST", "/api/v1/deposits/{id}/settle", api_deposits_settle, "payment.write", "settle a deposit: returned, kept or forfeited", 0},

    /* catalog */
    {"GET", "/api/v1/products", api_products_list, "catalog.read", "the catalog, by kind and status", 0},
    {"POST", "/api/v1/products", api_products_create, "catalog.write", "define a product with its first version", 0},
    {"GET", "/api/v1/products/{code}", api_products_get, "catalog.read", "a product with all its versions", 0},
    {"PATCH", "/api/v1/products/{code}", api_products_update, "catalog.write", "rename a product or change its status (draft, active, retired)", 0},
    {"POST", "/api/v1/products/{code}/versions", api_products_add_version, "catalog.write", "a new price or terms from a date on", 0},
    {"GET", "/api/v1/pricing-rules", api_pricing_rules, "catalog.read", "pricing rules and the schemas of their parameters (for forms)", 0},
    {"GET", "/api/v1/customers/{code}/offers", api_customers_offers, "customer.read", "products that may be sold to this customer", 0},

    /* subscriptions and one-time charges */
    {"GET", "/api/v1/customers/{code}/subscriptions", api_subscriptions_list, "subscription.read", "a customer's subscriptions", 0},
    {"POST", "/api/v1/customers/{code}/subscriptions", api_subscriptions_create, "subscription.write", "subscribe a customer to a plan with add-ons", 0},
    {"GET", "/api/v1/subscriptions/{id}", api_subscriptions_get, "subscription.read", "a subscription with its add-ons and changes", 0},
    {"POST", "/api/v1/subscriptions/{id}/changes", api_subscriptions_change, "subscription.write", "upgrade, downgrade, suspend, resume, terminate, add or remove an add-on", 0},
    {"DELETE", "/api/v1/subscriptions/{id}/changes/{change}", api_subscriptions_cancel_change, "subscription.write", "cancel a scheduled change", 0},
    {"GET", "/api/v1/customers/{code}/charges", api_charges_list, "subscription.read", "one-time charges waiting for a bill", 0},
    {"POST", "/api/v1/customers/{code}/charges", api_charges_create, "subscription.write", "add a one-time charge (installation, repair visit)", 0},
    {"DELETE", "/api/v1/charges/{id}", api_charges_cancel, "subscription.write", "cancel a charge no bill has taken yet", 0},

    /* billing runs (api_billing.c) */
    {"POST", "/api/v1/bill-runs", api_bill_runs_create, "billrun.run", "start a billing run (as of a date or for a period; dry run or what-if with candidate rules)", 0},
    {"GET", "/api/v1/bill-runs", api_bill_runs_list, "invoice.read", "billing runs, newest first", 0},
    {"GET", "/api/v1/bill-runs/{id}", api_bill_runs_get, "invoice.read", "one billing run: progress, then its report", 0},
    {"GET", "/api/v1/customers/{code}/bill-preview", api_bill_preview, "invoice.read", "the customer's next bills as they would be made now, without writing anything", 0},

    /* invoices, credit notes, the ledger and payments (api_invoices.c) */
    {"GET", "/api/v1/invoices", api_invoices_list, "invoice.read", "invoices, newest first, by customer and status", 0},
    {"GET", "/api/v1/invoices/{number}", api_invoices_get, "invoice.read", "one invoice with its lines and what settled it", 0},
    {"GET", "/api/v1/invoices/{number}/explain", api_invoices_explain, "invoice.read", "why each line of the invoice is there: step, rule, rule-set version, the rule's reasons", 0},
    {"POST", "/api/v1/invoices/{number}/void", api_invoices_void, "invoice.adjust", "void an invoice nothing has settled", 0},
    {"POST", "/api/v1/invoices/{number}/credit-notes", api_invoices_credit, "invoice.adjust", "a credit note against an invoice, whole or per line", 0},
    {"POST", "/api/v1/invoices/{number}/write-off", api_invoices_write_off, "invoice.adjust", "write off what is left to pay of an invoice", 0},
    {"GET", "/api/v1/credit-notes/{number}", api_credit_notes_get, "invoice.read", "one credit note", 0},
    {"GET", "/api/v1/customers/{code}/ledger", api_ledger_list, "invoice.read", "the customer's ledger with balance and credit", 0},
    {"POST", "/api/v1/customers/{code}/adjustments", api_ledger_adjust, "invoice.adjust", "a credit or debit adjustment with reason and approver", 0},
    {"GET", "/api/v1/customers/{code}/payments", api_payments_list, "payment.read", "the customer's payments", 0},
    {"POST", "/api/v1/customers/{code}/payments", api_payments_record, "payment.write", "record a payment at the counter or by bank transfer", 0},
    {"GET", "/api/v1/payments/{id}", api_payments_get, "payment.read", "one payment with what it settled", 0},
    {"POST", "/api/v1/payments/{id}/refunds", api_payments_refund, "payment.refund", "record money paid back from a counter or bank payment", 0},
    {"POST", "/api/v1/invoices/{number}/pay-orders", api_pay_orders_create, "payment.write", "a payment order for what is left to pay of an invoice, on a channel", 0},
    {"GET", "/api/v1/pay-orders/{out_trade_no}", api_pay_orders_get, "payment.read", "one payment order", 0},
    /* signed by the channel, not authenticated by us: open only for configured channels */
    {"POST", "/api/v1/notify/{channel}", api_notify, PERM_PUBLIC, "a payment channel's notification (Alipay, WeChat Pay)", ROUTE_RAW_BODY | ROUTE_NO_CSRF},
    {"GET", "/api/v1/ledger/verify", api_ledger_verify, "invoice.read", "prove that ledger, invoices and payments agree", 0},

    /* collection (api_dunning.c) */
    {"GET", "/api/v1/collection-tasks", api_collection_tasks_list, "dunning.read", "collection tasks, newest first, by status, priority, assignee and customer", 0},
    {"GET", "/api/v1/collection-tasks/{id}", api_collection_tasks_get, "dunning.read", "one collection task with its notes and the ladder's actions on its bill", 0},
    {"PATCH", "/api/v1/collection-tasks/{id}", api_collection_tasks_update, "dunning.write", "assign a collection task, record an outcome, a note or a promise to pay, close it", 0},
    {"GET", "/api/v1/customers/{code}/dunning", api_customers_dunning, "dunning.read", "the collection ladder's record for a customer: each stage, when, by which rule version, acted or skipped", 0},

    /* messages to customers: the outbox and its delivery (api_messages.c) */
    {"GET", "/api/v1/messages", api_messages_list, "message.read", "messages to customers, newest first, by customer, status, channel and event", 0},
    {"GET", "/api/v1/messages/{id}", api_messages_get, "message.read", "one message: its delivery status, attempts and last error", 0},
    {"POST", "/api/v1/messages/{id}/retry", api_messages_retry, "message.retry", "send a dead message again (a fresh budget of attempts)", 0},

    /* rules */
    {"GET", "/api/v1/rules", api_rules_get, "rules.read", "the live rule set: version, modules, functions", 0},
    {"POST", "/api/v1/rules/reload", api_rules_reload, "rules.reload", "reload the rules folder; the old rules stay on any failure", 0},
    {"POST", "/api/v1/rules/call", api_rules_call, "rules.call", "call one rule function with a JSON input", ROUTE_READS},
    {"GET", "/api/v1/rules/versions", api_rules_versions, "rules.read", "rule set versions that went live, newest first", 0},
    {"GET", "/api/v1/rules/versions/{version}", api_rules_version, "rules.read", "one stored rule set: files, or one file's text", 0},
};

const size_t routes_count = sizeof routes / sizeof *routes;
