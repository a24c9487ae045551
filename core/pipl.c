/* pipl.c - export and erasure of one person's data. */
#include "pipl.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "customers.h"
#include "notify.h"

/* Runs a query with one integer parameter and appends each row as an object
 * whose keys are the column names given (NULL columns become null). */
static int rows(db *d, const char *sql, int64_t id, const char *const *cols, int ncols, jv_arena *a, jv *list, err *e)
{
    db_stmt *s = db_prepare(d, sql, e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc;
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *o = jv_obj(a);
        for (int i = 0; o && i < ncols; i++)
            jv_obj_set(a, o, cols[i], db_col_is_null(s, i) ? jv_null(a) : jv_strn(a, db_col_text(s, i), db_col_bytes(s, i)));
        if (!o || jv_arr_push(a, list, o)) {
            db_done(s);
            return ERR_NOMEM_RET(e);
        }
    }
    return rc < 0 ? rc : 0;
}

static int section(db *d, jv *out, const char *name, const char *sql, int64_t id, const char *const *cols, int ncols,
                   jv_arena *a, err *e)
{
    jv *list = jv_arr(a);
    if (!list) return ERR_NOMEM_RET(e);
    int rc = rows(d, sql, id, cols, ncols, a, list, e);
    if (!rc && jv_obj_set(a, out, name, list)) rc = ERR_NOMEM_RET(e);
    return rc;
}

#define N(x) ((int)(sizeof(x) / sizeof *(x)))

int pipl_export(db *d, const vault *v, int64_t id, jv_arena *a, jv **out, err *e)
{
    jv *o = jv_obj(a), *profile;
    if (!o) return ERR_NOMEM_RET(e);
    int rc = customers_get(d, v, id, a, &profile, e);
    if (rc) return rc;
    char now[25];
    db_now(now);
    jv_obj_set_str(a, o, "exported_at", now);
    jv_obj_set(a, o, "customer", profile);
    /* the WeChat openid the customer's template messages go to, if any */
    buf openid = {0};
    int found = 0;
    rc = notify_get_wechat(d, v, id, &openid, &found, e);
    if (!rc && found && profile->kind == JV_OBJ && jv_obj_set_str(a, profile, "wechat_openid", buf_cstr(&openid)))
        rc = ERR_NOMEM_RET(e);
    if (openid.data) memset(openid.data, 0, openid.len);
    buf_free(&openid);
    if (rc) return rc;

    static const char *const acc[] = {"username", "status", "created_at", "password_changed_at"};
    rc = section(d, o, "service_accounts",
                 "SELECT username, status, created_at, password_changed_at FROM service_accounts WHERE customer_id = ? ORDER BY id",
                 id, acc, N(acc), a, e);
    static const char *const ins[] = {"serial", "kind", "model", "installed_on", "engineer", "address", "removed_on", "removal_reason"};
    if (!rc)
        rc = section(d, o, "installations",
                     "SELECT dv.serial, dv.kind, dv.model, i.installed_on, i.engineer, i.address, i.removed_on, i.removal_reason "
                     "FROM installations i JOIN devices dv ON dv.id = i.device_id WHERE i.customer_id = ? ORDER BY i.id",
                     id, ins, N(ins), a, e);
    static const char *const dep[] = {"serial", "product", "amount", "status", "taken_on", "settled_on"};
    if (!rc)
        rc = section(d, o, "deposits",
                     "SELECT dv.serial, dp.product, dp.amount, dp.status, dp.taken_on, dp.settled_on "
                     "FROM deposits dp JOIN devices dv ON dv.id = dp.device_id WHERE dp.customer_id = ? ORDER BY dp.id",
                     id, dep, N(dep), a, e);
    static const char *const sub[] = {"id", "plan", "status", "billing", "period", "start_date", "contract_end", "end_date"};
    if (!rc)
        rc = section(d, o, "subscriptions",
                     "SELECT s.id, p.code, s.status, s.billing, s.period, s.start_date, s.contract_end, s.end_date "
                     "FROM subscriptions s JOIN products p ON p.id = s.product_id WHERE s.customer_id = ? ORDER BY s.id",
                     id, sub, N(sub), a, e);
    static const char *const chg[] = {"description", "quantity", "unit_price", "created_at", "billed_on", "cancelled_at"};
    if (!rc)
        rc = section(d, o, "one_time_charges",
                     "SELECT description, quantity, unit_price, created_at, billed_on, cancelled_at FROM pending_charges "
                     "WHERE customer_id = ? ORDER BY id",
                     id, chg, N(chg), a, e);
    static const char *const ver[] = {"purpose", "created_at", "used_at"};
    if (!rc)
        rc = section(d, o, "verification_codes",
                     "SELECT purpose, created_at, used_at FROM verification_codes WHERE customer_id = ? ORDER BY id", id, ver,
                     N(ver), a, e);
    static const char *const msg[] = {"event", "channel", "created_at", "status", "sent_at"};
    if (!rc)
        rc = section(d, o, "messages",
                     "SELECT event, channel, created_at, status, sent_at FROM outbox WHERE customer_id = ? ORDER BY id", id,
                     msg, N(msg), a, e);
    /* what was done with the record, as the audit trail tells it */
    char code[CUSTOMER_CODE_MAX];
    if (!rc) rc = customers_code_by_id(d, id, code, e);
    if (!rc) {
        jv *list = jv_arr(a);
        db_stmt *s = db_prepare(d,
                                "SELECT at, actor, action, diff FROM audit_log WHERE object_type = 'customer' AND object_id = ? "
                                "ORDER BY id",
                                e);
        if (!s) return e->code;
        db_bind_text(s, 1, code);
        while ((rc = db_step(d, s, e)) == DB_ROW) {
            jv *r = jv_obj(a), *diff = NULL;
            jv_obj_set_str(a, r, "at", db_col_text(s, 0));
            jv_obj_set_str(a, r, "by", db_col_text(s, 1));
            jv_obj_set_str(a, r, "action", db_col_text(s, 2));
            err pe;
            if (!db_col_is_null(s, 3) && json_parse(db_col_text(s, 3), db_col_bytes(s, 3), NULL, a, &diff, &pe) == 0)
                jv_obj_set(a, r, "changes", diff);
            jv_arr_push(a, list, r);
        }
        rc = rc < 0 ? rc : 0;
        if (!rc) jv_obj_set(a, o, "history", list);
    }
    if (!rc) *out = o;
    return rc;
}

int pipl_erase(db *d, int64_t id, jv_arena *a, jv **summary, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT status, erased_at FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_set(e, ERR_NOTFOUND, "no such customer");
    }
    int closed = !strcmp(db_col_text(s, 0), "closed"), erased = !db_col_is_null(s, 1);
    db_done(s);
    if (erased) return err_set(e, ERR_CONFLICT, "this customer's personal data was already erased");
    if (!closed)
        return err_field(e, ERR_CONFLICT, "not_closed", "status",
                         "only a closed customer can be erased: close the account first (its bills stay)");
    char now[25];
    db_now(now);
    rc = db_run(d, e,
                "UPDATE customers SET name = '(erased)', id_card_enc = NULL, id_card_idx = NULL, phone_enc = NULL, "
                "phone_idx = NULL, phone_verified_at = NULL, phone2_enc = NULL, phone2_idx = NULL, email_enc = NULL, "
                "notes = NULL, erased_at = ?, updated_at = ? WHERE id = ?",
                "ssi", now, now, id);
    /* the district stays: coverage and churn reports count by place */
    if (!rc)
        rc = db_run(d, e,
                    "UPDATE addresses SET street = '', community = '', building = '', unit = '', floor = '', room = '', "
                    "gis_code = NULL WHERE customer_id = ?",
                    "i", id);
    if (!rc) rc = db_run(d, e, "DELETE FROM customer_tags WHERE customer_id = ?", "i", id);
    if (!rc) rc = db_run(d, e, "DELETE FROM verification_codes WHERE customer_id = ?", "i", id);
    if (!rc) rc = db_run(d, e, "DELETE FROM customer_wechat WHERE customer_id = ?", "i", id);
    if (!rc) rc = db_run(d, e, "UPDATE outbox SET recipient_enc = NULL, payload = '{}' WHERE customer_id = ?", "i", id);
    if (!rc) rc = db_run(d, e, "UPDATE installations SET address = '(erased)' WHERE customer_id = ?", "i", id);
    if (!rc) rc = db_run(d, e, "UPDATE deposits SET note = NULL WHERE customer_id = ?", "i", id);
    if (rc) return rc;
    jv *sm = jv_obj(a);
    jv_obj_set_str(a, sm, "erased", "name, id_card, phones, email, WeChat openid, notes, detailed address, tags, verification codes, "
                                    "message recipients, installation addresses");
    jv_obj_set_str(a, sm, "kept", "customer code, district, subscriptions, charges, invoices, payments, ledger, audit trail");
    *summary = sm;
    return 0;
}
