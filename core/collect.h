/* collect.h - collection tasks as staff work them.
 *
 * The ladder (dunning.c) opens a task when a bill goes overdue and raises
 * its priority at suspension; staff then list tasks, take or assign them,
 * and record what came of each contact: an outcome, a note, a promise to
 * pay (which pauses the ladder for that bill until the promised date, as
 * rules/dunning.lua reads it), and close them. Every update is kept as a
 * note (append-only); the task row holds the current state. */
#ifndef BB_COLLECT_H
#define BB_COLLECT_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

/* Filters of a list; NULL / 0 for any. */
typedef struct collect_filter {
    const char *status;        /* open | done */
    const char *priority;      /* low | high */
    const char *assigned_to;   /* a staff user name; "" for unassigned tasks */
    int64_t customer_id;
} collect_filter;

/* What an update sets; NULL leaves a field as it is. */
typedef struct collect_change {
    const char *assigned_to;     /* a staff user name; "" takes the task from whoever has it */
    const char *status;          /* open | done */
    const char *outcome;         /* contacted, no_answer, promised, disputed, paid, other */
    const char *note;            /* free text, 1-2000 bytes */
    const char *promised_until;  /* YYYY-MM-DD from today on; "" withdraws the promise */
} collect_change;

/* A page of tasks, newest first, as API objects in arena a (cursor: the
 * opaque value a previous page gave, or NULL; next gets the next one or
 * ""). Bad filters: ERR_INVALID naming the parameter. */
int collect_list(db *d, const collect_filter *f, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                 size_t nnext, err *e);

/* One task with its notes and the ladder's actions on its bill.
 * ERR_NOT_FOUND (task_not_found) when there is none. */
int collect_get(db *d, int64_t id, jv_arena *a, jv **out, err *e);

/* Applies ch to task id inside the caller's transaction, as user `by`
 * on business day `today`, and appends the note. Refused (ERR_INVALID,
 * naming the field) when nothing is set, a user is unknown or disabled,
 * a value is not one of its kind, a promise is in the past, or a task is
 * closed without an outcome. */
int collect_update(db *d, int64_t id, const collect_change *ch, const char *by, const char *today, err *e);

/* The ladder's record for one customer, newest first: each (bill, stage)
 * with what it did, when, under which rule-set version, and whether it
 * acted or was passed over. */
int collect_actions(db *d, int64_t customer_id, const char *cursor, int64_t limit, jv_arena *a, jv **list, char *next,
                    size_t nnext, err *e);

#endif
