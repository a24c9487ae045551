/* api.h - the HTTP handlers, one file per resource family (api_*.c).
 * They are wired to paths and permissions in routes.c only. */
#ifndef BB_API_H
#define BB_API_H

#include "http.h"

/* api_system.c */
int api_healthz(http_req *q);
int api_metrics(http_req *q);

/* api_rules.c */
int api_rules_get(http_req *q);
int api_rules_reload(http_req *q);
int api_rules_call(http_req *q);
int api_rules_versions(http_req *q);
int api_rules_version(http_req *q);

/* api_auth.c */
int api_auth_login(http_req *q);
int api_auth_logout(http_req *q);
int api_auth_me(http_req *q);
int api_auth_password(http_req *q);
int api_auth_sessions(http_req *q);
int api_auth_session_delete(http_req *q);
/* {"data": [sessions]} of a user; `current` marks the caller's own. */
void api_write_sessions(http_req *q, int64_t user_id, int64_t current);

/* api_users.c */
int api_users_list(http_req *q);
int api_users_get(http_req *q);
int api_users_create(http_req *q);
int api_users_update(http_req *q);
int api_users_unlock(http_req *q);
int api_users_password(http_req *q);
int api_users_sessions(http_req *q);
int api_roles_list(http_req *q);
int api_roles_create(http_req *q);
int api_roles_update(http_req *q);
int api_roles_delete(http_req *q);

/* api_audit.c */
int api_audit_list(http_req *q);
int api_audit_verify(http_req *q);

/* api_customers.c */
int api_customers_list(http_req *q);
int api_customers_create(http_req *q);
int api_customers_get(http_req *q);
int api_customers_update(http_req *q);
int api_customers_status(http_req *q);
int api_customers_history(http_req *q);
int api_customers_verify_send(http_req *q);
int api_customers_verify_confirm(http_req *q);
int api_customers_overview(http_req *q);

/* api_accounts.c */
int api_accounts_list(http_req *q);
int api_accounts_create(http_req *q);
int api_accounts_reset(http_req *q);
int api_accounts_reset_code(http_req *q);
int api_accounts_reset_with_code(http_req *q);
int api_devices_list(http_req *q);
int api_devices_create(http_req *q);
int api_devices_get(http_req *q);
int api_devices_install(http_req *q);
int api_devices_remove(http_req *q);
int api_devices_swap(http_req *q);
int api_deposits_list(http_req *q);
int api_deposits_create(http_req *q);
int api_deposits_settle(http_req *q);

/* api_catalog.c */
int api_products_list(http_req *q);
int api_products_create(http_req *q);
int api_products_get(http_req *q);
int api_products_update(http_req *q);
int api_products_add_version(http_req *q);
int api_pricing_rules(http_req *q);
int api_customers_offers(http_req *q);

/* api_subscriptions.c */
int api_subscriptions_list(http_req *q);
int api_subscriptions_create(http_req *q);
int api_subscriptions_get(http_req *q);
int api_subscriptions_change(http_req *q);
int api_subscriptions_cancel_change(http_req *q);
int api_charges_list(http_req *q);
int api_charges_create(http_req *q);
int api_charges_cancel(http_req *q);

/* api_billing.c */
int api_bill_runs_create(http_req *q);
int api_bill_runs_list(http_req *q);
int api_bill_runs_get(http_req *q);
int api_bill_preview(http_req *q);

/* api_invoices.c */
int api_invoices_list(http_req *q);
int api_invoices_get(http_req *q);
int api_invoices_explain(http_req *q);
int api_invoices_void(http_req *q);
int api_invoices_credit(http_req *q);
int api_invoices_write_off(http_req *q);
int api_credit_notes_get(http_req *q);
int api_ledger_list(http_req *q);
int api_ledger_adjust(http_req *q);
int api_payments_list(http_req *q);
int api_payments_record(http_req *q);
int api_payments_get(http_req *q);
int api_notify(http_req *q);
/* Frees the notification batch's event (server shutdown, before the loop goes). */
void api_pay_release(void);
int api_pay_orders_create(http_req *q);
int api_pay_orders_get(http_req *q);
int api_payments_refund(http_req *q);
int api_ledger_verify(http_req *q);

/* collection tasks and the ladder's record (api_dunning.c) */
int api_collection_tasks_list(http_req *q);
int api_collection_tasks_get(http_req *q);
int api_collection_tasks_update(http_req *q);
int api_customers_dunning(http_req *q);

#endif
