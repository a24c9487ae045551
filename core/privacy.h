/* privacy.h - sensitive personal data: which fields are sensitive, how they
 * are masked, and what each role may see.
 *
 * Every response that carries a resource passes through privacy_filter(),
 * given the caller's role and the resource type, so no handler can forget
 * it; the CLI uses the same filter. Per role and field the level is data
 * (table field_policies, editable by an admin): hidden (the field is
 * dropped), masked (138****8000), or clear. Seeing a field in clear is
 * itself recorded in the audit trail by the caller. */
#ifndef BB_PRIVACY_H
#define BB_PRIVACY_H

#include <stddef.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"

typedef enum { VIS_HIDDEN = 0, VIS_MASKED = 1, VIS_CLEAR = 2 } visibility;

typedef enum {
    MASK_PHONE,     /* 13812348000 -> 138****8000 */
    MASK_IDCARD,    /* 110101199001011234 -> 1101**********1234 */
    MASK_NAME,      /* 张三丰 -> 张** ; Alice -> A**** */
    MASK_EMAIL,     /* zhang.san@example.com -> z********@example.com */
    MASK_ADDRESS,   /* an address object: parts below the district become "*" */
    MASK_SECRET,    /* any secret -> "******" */
    MASK_ACCOUNT,   /* 6222021234567890 -> ************7890 */
    MASK_TEXT       /* free text that may name anyone: "(14 characters)" */
} mask_kind;

typedef struct sensitive_field {
    const char *resource;   /* "customer", "user", ... */
    const char *field;      /* top-level field name in the resource's JSON */
    mask_kind kind;
} sensitive_field;

/* The registry of sensitive fields; subsystems add theirs in privacy.c. */
extern const sensitive_field privacy_fields[];
extern const int privacy_fields_count;

const char *visibility_name(visibility v);
int visibility_parse(const char *s, visibility *out);

/* Appends the masked form of a text value. */
void privacy_mask_text(mask_kind kind, const char *in, size_t n, buf *out);

/* A copy of obj (in arena a) with every sensitive field of `resource`
 * masked, whoever asks: for the audit trail and logs. NULL on no memory. */
jv *privacy_masked_copy(jv_arena *a, const char *resource, const jv *obj);

/* What `role` may see of resource.field (VIS_CLEAR for fields that are not
 * sensitive). Policies are read from the database once and cached;
 * privacy_reload() drops the cache after an edit. */
visibility privacy_level(db *d, const char *role, const char *resource, const char *field);
void privacy_reload(void);

/* Applies the role's levels to obj (a resource object) in place: hidden
 * fields are removed, masked ones replaced. The names of sensitive fields
 * left in clear (and not empty) are appended to `clear` (comma-separated,
 * may be NULL) so the caller can record the view. */
int privacy_filter(db *d, jv_arena *a, const char *role, const char *resource, jv *obj, buf *clear, err *e);

#endif
