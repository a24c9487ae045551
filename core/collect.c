/* collect.c - collection tasks as staff work them (see collect.h). */
#include "collect.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "date.h"
#include "page.h"

#define TASK_COLS                                                                                                       \
    "t.id, c.code, i.number, i.gross - i.paid - i.credited - i.written_off, i.due_date, t.priority, t.status, "       \
    "t.assigned_to, t.promised_until, t.outcome, t.created_at, t.updated_at, i.status"

static int one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(v, *list)) return 1;
    return 0;
}

static const char *const STATUSES[] = {"open", "done", NULL};
static const char *const PRIORITIES[] = {"low", "high", NULL};
static const char *const OUTCOMES[] = {"contacted", "no_answer", "promised", "disputed", "paid", "other", NULL};

/* Sets key to the column's text, or null when the column is NULL. */
static int set_text_or_null(jv_arena *a, jv *o, const char *key, db_stmt *s, int col)
{
    return jv_obj_set(a, o, key, db_col_is_null(s, col) ? jv_null(a) : jv_str(a, db_col_text(s, col)));
}

static int task_object(db_stmt *s, jv_arena *a, jv **out)
{
    jv *o = jv_obj(a);
    if (!o) return -1;
    int bad = jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "customer", db_col_text(s, 1)) ||
              jv_obj_set_str(a, o, "invoice", db_col_text(s, 2)) || jv_obj_set_int(a, o, "balance_due", db_col_int(s, 3)) ||
              set_text_or_null(a, o, "due_date", s, 4) || jv_obj_set_str(a, o, "priority", db_col_text(s, 5)) ||
              jv_obj_set_str(a, o, "status", db_col_text(s, 6)) || set_text_or_null(a, o, "assigned_to", s, 7) ||
              set_text_or_null(a, o, "promised_until", s, 8) || set_text_or_null(a, o, "outcome", s, 9) ||
              jv_obj_set_str(a, o, "created_at", db_col_text(s, 10)) || jv_obj_set_str(a, o, "updated_at", db_col_text(s, 11)) ||
              jv_obj_set_str(a, o, "invoice_status", db_col_text(s, 12));
    if (bad) return -1;
    *out = o;
    return 0;
}

static int task_row(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e)
{
    (void)ud;
    (void)d;
    return task_object(s, a, out) ? ERR_NOMEM_RET(e) : 0;
}

int collect_list(db *d, const collect_filter *f, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                 size_t nnext, err *e)
{
    int64_t before;
    if (page_start(cursor, limit, &before, e)) return e->code;
    if (f->status && !one_of(f->status, STATUSES))
        return err_field(e, ERR_INVALID, "invalid_parameter", "status", "unknown status '%s' (open, done)", f->status);
    if (f->priority && !one_of(f->priority, PRIORITIES))
        return err_field(e, ERR_INVALID, "invalid_parameter", "priority", "unknown priority '%s' (low, high)", f->priority);
    db_stmt *s = db_prepare(d,
                            "SELECT " TASK_COLS " FROM collection_tasks t JOIN customers c ON c.id = t.customer_id "
                            "JOIN invoices i ON i.id = t.invoice_id "
                            "WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.priority = ?2) "
                            "AND (?3 IS NULL OR (?3 = '' AND t.assigned_to IS NULL) OR t.assigned_to = ?3) "
                            "AND (?4 = 0 OR t.customer_id = ?4) AND (?5 = 0 OR t.id < ?5) ORDER BY t.id DESC LIMIT ?6",
                            e);
    if (!s) return e->code;
    db_bind_text(s, 1, f->status);
    db_bind_text(s, 2, f->priority);
    db_bind_text(s, 3, f->assigned_to);
    db_bind_int(s, 4, f->customer_id);
    db_bind_int(s, 5, before);
    db_bind_int(s, 6, limit + 1);
    return page_collect(d, s, limit, task_row, NULL, a, list, next, nnext, e);
}

/* One row of dunning_actions as an API object. */
static int action_object(void *ud, db *d, db_stmt *s, jv_arena *a, jv **out, err *e)
{
    (void)ud;
    (void)d;
    jv *o = jv_obj(a), *acts = NULL;
    if (!o) return ERR_NOMEM_RET(e);
    err pe;
    /* written by dunning.c as JSON; a row that does not parse is shown as it is */
    if (json_parse(db_col_text(s, 4), db_col_bytes(s, 4), NULL, a, &acts, &pe)) acts = jv_str(a, db_col_text(s, 4));
    if (!acts || jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "invoice", db_col_text(s, 1)) ||
        jv_obj_set_str(a, o, "stage", db_col_text(s, 2)) || jv_obj_set_str(a, o, "result", db_col_text(s, 3)) ||
        jv_obj_set(a, o, "actions", acts) || jv_obj_set_str(a, o, "rules_version", db_col_text(s, 5)) ||
        jv_obj_set_str(a, o, "acted_on", db_col_text(s, 6)) || jv_obj_set_str(a, o, "at", db_col_text(s, 7)))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

int collect_get(db *d, int64_t id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT " TASK_COLS ", t.invoice_id FROM collection_tasks t JOIN customers c ON c.id = t.customer_id "
                            "JOIN invoices i ON i.id = t.invoice_id WHERE t.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    jv *o = NULL;
    int64_t invoice_id = 0;
    if (rc == DB_ROW) {
        invoice_id = db_col_int(s, 13);
        rc = task_object(s, a, &o) ? ERR_NOMEM_RET(e) : 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "task_not_found", "id", "no collection task %lld", (long long)id);
    }
    db_done(s);
    if (rc) return rc;

    jv *notes = jv_arr(a), *ladder = jv_arr(a);
    if (!notes || !ladder) return ERR_NOMEM_RET(e);
    s = db_prepare(d, "SELECT at, by, changes, outcome, note FROM collection_task_notes WHERE task_id = ? ORDER BY id", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *n = jv_obj(a), *ch = NULL;
        err pe;
        if (json_parse(db_col_text(s, 2), db_col_bytes(s, 2), NULL, a, &ch, &pe)) ch = jv_obj(a);
        if (!n || !ch || jv_obj_set_str(a, n, "at", db_col_text(s, 0)) || jv_obj_set_str(a, n, "by", db_col_text(s, 1)) ||
            jv_obj_set(a, n, "changes", ch) || set_text_or_null(a, n, "outcome", s, 3) || set_text_or_null(a, n, "note", s, 4) ||
            jv_arr_push(a, notes, n)) {
            rc = ERR_NOMEM_RET(e);
            break;
        }
    }
    db_done(s);
    if (rc < 0) return rc;
    s = db_prepare(d,
                   "SELECT a.id, i.number, a.stage, a.status, a.actions, a.rules_version, a.acted_on, a.at "
                   "FROM dunning_actions a JOIN invoices i ON i.id = a.invoice_id WHERE a.invoice_id = ? ORDER BY a.id",
                   e);
    if (!s) return e->code;
    db_bind_int(s, 1, invoice_id);
    while ((rc = db_step(d, s, e)) == DB_ROW) {
        jv *x;
        if ((rc = action_object(NULL, d, s, a, &x, e)) || (rc = jv_arr_push(a, ladder, x) ? ERR_NOMEM_RET(e) : 0)) break;
    }
    db_done(s);
    if (rc < 0) return rc;
    if (jv_obj_set(a, o, "notes", notes) || jv_obj_set(a, o, "ladder", ladder)) return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

/* The task's current assignee, status and promise, for the checks. */
typedef struct task_now {
    char status[8], assigned[64];
    int found;
} task_now;

static int task_read(db *d, int64_t id, task_now *t, err *e)
{
    memset(t, 0, sizeof *t);
    db_stmt *s = db_prepare(d, "SELECT status, coalesce(assigned_to, '') FROM collection_tasks WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        t->found = 1;
        snprintf(t->status, sizeof t->status, "%s", db_col_text(s, 0));
        snprintf(t->assigned, sizeof t->assigned, "%s", db_col_text(s, 1));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = 0;
    }
    db_done(s);
    return rc;
}

static int check_change(db *d, const collect_change *ch, const task_now *t, const char *today, err *e)
{
    if (!ch->assigned_to && !ch->status && !ch->outcome && !ch->note && !ch->promised_until)
        return err_field(e, ERR_INVALID, "missing_field", "note",
                         "nothing to change: give assigned_to, status, outcome, note or promised_until");
    if (ch->assigned_to && ch->assigned_to[0]) {
        int64_t active = 0;
        int rc = db_get_int(d, e, &active, "SELECT status = 'active' FROM staff_users WHERE username = ?", "s", ch->assigned_to);
        if (rc == ERR_NOTFOUND)
            return err_field(e, ERR_INVALID, "unknown_user", "assigned_to", "no staff user '%s'", ch->assigned_to);
        if (rc) return rc;
        if (!active)
            return err_field(e, ERR_INVALID, "user_disabled", "assigned_to", "staff user '%s' is disabled", ch->assigned_to);
    }
    if (ch->status && !one_of(ch->status, STATUSES))
        return err_field(e, ERR_INVALID, "invalid_field", "status", "status is open or done, not '%s'", ch->status);
    if (ch->outcome && !one_of(ch->outcome, OUTCOMES))
        return err_field(e, ERR_INVALID, "invalid_field", "outcome",
                         "outcome is contacted, no_answer, promised, disputed, paid or other, not '%s'", ch->outcome);
    if (ch->note && (!ch->note[0] || strlen(ch->note) > 2000))
        return err_field(e, ERR_INVALID, "invalid_field", "note", "a note is 1 to 2000 bytes");
    if (ch->promised_until && ch->promised_until[0]) {
        int32_t day, now;
        err pe;
        if (date_parse(ch->promised_until, strlen(ch->promised_until), &day, &pe))
            return err_field(e, ERR_INVALID, "invalid_date", "promised_until", "promised_until is a date YYYY-MM-DD, not '%s'",
                             ch->promised_until);
        if (!date_parse(today, strlen(today), &now, &pe) && day < now)
            return err_field(e, ERR_INVALID, "invalid_date", "promised_until", "a promise to pay is for today or later, not %s",
                             ch->promised_until);
    }
    /* a promise is an outcome: recorded as one unless the caller says otherwise */
    const char *status = ch->status ? ch->status : t->status;
    if (!strcmp(status, "done") && strcmp(t->status, "done") && !ch->outcome)
        return err_field(e, ERR_INVALID, "missing_field", "outcome", "closing a task needs its outcome");
    return 0;
}

int collect_update(db *d, int64_t id, const collect_change *ch, const char *by, const char *today, err *e)
{
    if (!db_in_tx(d)) return err_set(e, ERR_INTERNAL, "collect_update needs the caller's transaction");
    task_now t;
    int rc = task_read(d, id, &t, e);
    if (rc) return rc;
    if (!t.found) return err_field(e, ERR_NOTFOUND, "task_not_found", "id", "no collection task %lld", (long long)id);
    if ((rc = check_change(d, ch, &t, today, e))) return rc;
    const char *outcome = ch->outcome;
    if (!outcome && ch->promised_until && ch->promised_until[0]) outcome = "promised";

    jw w;
    if (jw_init(&w, 0)) return ERR_NOMEM_RET(e);
    jw_obj_open(&w);
    if (ch->assigned_to) {
        jw_kv_str(&w, "assigned_to", ch->assigned_to[0] ? ch->assigned_to : NULL);
    }
    if (ch->status) jw_kv_str(&w, "status", ch->status);
    if (outcome) jw_kv_str(&w, "outcome", outcome);
    if (ch->promised_until) {
        jw_kv_str(&w, "promised_until", ch->promised_until[0] ? ch->promised_until : NULL);
    }
    jw_obj_close(&w);
    const char *changes = jw_finish(&w, NULL);
    if (!changes) {
        jw_free(&w);
        return ERR_NOMEM_RET(e);
    }
    char now[25];
    db_now(now);
    /* each column keeps its value unless this update names it */
    rc = db_run(d, e,
                "UPDATE collection_tasks SET "
                "assigned_to = CASE WHEN ?1 IS NULL THEN assigned_to WHEN ?1 = '' THEN NULL ELSE ?1 END, "
                "status = coalesce(?2, status), outcome = coalesce(?3, outcome), "
                "promised_until = CASE WHEN ?4 IS NULL THEN promised_until WHEN ?4 = '' THEN NULL ELSE ?4 END, "
                "updated_at = ?5 WHERE id = ?6",
                "sssssi", ch->assigned_to, ch->status, outcome, ch->promised_until, now, id);
    if (!rc)
        rc = db_run(d, e, "INSERT INTO collection_task_notes (task_id, at, by, changes, outcome, note) VALUES (?, ?, ?, ?, ?, ?)",
                    "isssss", id, now, by, changes, outcome, ch->note);
    jw_free(&w);
    return rc;
}

int collect_actions(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                    size_t nnext, err *e)
{
    int64_t before;
    if (page_start(cursor, limit, &before, e)) return e->code;
    db_stmt *s = db_prepare(d,
                            "SELECT a.id, i.number, a.stage, a.status, a.actions, a.rules_version, a.acted_on, a.at "
                            "FROM dunning_actions a JOIN invoices i ON i.id = a.invoice_id "
                            "WHERE a.customer_id = ? AND (? = 0 OR a.id < ?) ORDER BY a.id DESC LIMIT ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    db_bind_int(s, 2, before);
    db_bind_int(s, 3, before);
    db_bind_int(s, 4, limit + 1);
    return page_collect(d, s, limit, action_object, NULL, a, list, next, nnext, e);
}
