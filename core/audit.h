/* audit.h - the tamper-evident audit trail.
 *
 * Every state-changing request and every view of sensitive data in clear
 * appends one record: who, their role, when, from where, the request id,
 * the action, the object, and a before/after diff with sensitive values
 * masked. Records are append-only (the schema refuses UPDATE and DELETE)
 * and chained: each carries
 *
 *     hash = hex HMAC-SHA256(audit key, prev_hash "\n" canonical record)
 *
 * where prev_hash is the previous record's hash ("" for the first) and the
 * canonical record is the JSON object of the record's fields (keys sorted,
 * no spaces) without hash and prev_hash. Changing, removing or reordering
 * any record breaks the chain from there on; without the key (which lives
 * in the key file, not the database) nobody can forge a consistent chain.
 *
 * A record is written inside the caller's transaction, so it commits or
 * rolls back with the change it records. */
#ifndef BB_AUDIT_H
#define BB_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "err.h"
#include "json.h"

typedef struct audit_who {
    const char *actor;       /* "user:alice", "token:billing-bot", "local:root", "system" */
    const char *role;        /* "admin", ..., or "system" */
    const char *source;      /* client address, "cli", "socket", "scheduler" */
    const char *request_id;  /* may be NULL */
    const char *at;          /* when it happened (stored form); NULL: now */
} audit_who;

typedef struct audit_event {
    const char *action;      /* "user.create", "customer.update", "field.view", "auth.login_failed" */
    const char *object_type; /* "user", "customer", ... or NULL */
    const char *object_id;   /* may be NULL */
    const jv *before;        /* state before (an object), or NULL */
    const jv *after;         /* state after, or NULL */
    const jv *detail;        /* anything else worth keeping (an object), or NULL */
} audit_event;

/* Appends one record. Must be called inside a transaction (ERR_INTERNAL
 * otherwise). Sensitive fields of before/after/detail (see privacy.h) are
 * masked in the stored diff; only fields that changed are kept. */
int audit_append(db *d, const uint8_t key[32], const audit_who *who, const audit_event *ev, err *e);

typedef struct audit_check {
    int64_t records;         /* records checked */
    int64_t first_bad_id;    /* 0 when the chain is intact */
    char why[256];           /* what is wrong with the first bad record */
} audit_check;

/* Recomputes the chain from the first record. Returns 0 when it could be
 * checked (intact or not: see out->first_bad_id). */
int audit_verify(db *d, const uint8_t key[32], audit_check *out, err *e);

/* ---- anchors ----
 * The chain shows a changed or removed record, but not the newest records
 * cut off the end. An anchor - the latest record's id and hash, with an
 * HMAC, written to a file outside the database (and to the log) every
 * minute and at shutdown - makes that visible too. */

/* Writes the anchor for the newest record to `path` (atomically), unless
 * the anchor already there names a record that is gone or differs
 * (ERR_CONFLICT: the evidence stays until someone looks). */
int audit_anchor_write(db *d, const uint8_t key[32], const char *path, err *e);
/* Checks the database against the anchor at `path` (a missing file is
 * fine: there is nothing to compare). Fills out like audit_verify when the
 * records the anchor names are gone or differ. */
int audit_anchor_check(db *d, const uint8_t key[32], const char *path, audit_check *out, err *e);

/* Writes the records with from <= at < to (UTC instants as stored; either
 * may be NULL for open-ended) as JSON lines, each with its id, hash and
 * prev_hash, so a regulator can re-check the chain. *count gets how many. */
int audit_export(db *d, const char *from, const char *to, FILE *out, int64_t *count, err *e);

#endif
