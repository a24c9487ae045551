/* catalog.h - products defined without code (the "form engine").
 *
 * A product (plan, add-on, one-time fee, deposit, promotion) has a code, a
 * name, a status (draft -> active -> retired) and effective-dated versions:
 * price in fen (tax-inclusive by default), tax category, the Lua rule that
 * prices it ("tariffs.flat") with that rule's parameters, kind-specific
 * attributes, and where and to whom it is sold. A new price is a new version
 * from a date on; nothing is ever rewritten, so a bill for a past period
 * uses the version in force then.
 *
 * Each pricing rule declares the schema of its parameters in its module's
 * `schemas` table (see docs/RULES.md); parameters are validated against it
 * and the schema is served to the console so it can draw the form. */
#ifndef BB_CATALOG_H
#define BB_CATALOG_H

#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"
#include "rules.h"

typedef struct product {
    int64_t id;
    char code[49];
    char kind[16];      /* plan, addon, fee, deposit, promotion */
    char name[128];
    char status[16];    /* draft, active, retired */
} product;

typedef struct product_version {
    int64_t id;
    int64_t product_id;
    int version;
    char effective_from[11];
    int64_t price;              /* fen */
    int price_includes_tax;
    char tax_category[32];
    char rule[96];
    const jv *params;           /* in the caller's arena */
    const jv *attrs;
    const jv *regions;
    const jv *tags;
    char status[16];            /* the product's status (draft, active, retired) */
} product_version;

int catalog_product(db *d, const char *code, product *out, err *e);
int catalog_product_by_id(db *d, int64_t id, product *out, err *e);
/* The version in force on `date` (YYYY-MM-DD): the latest effective_from
 * <= date. ERR_NOTFOUND when the product did not exist yet. */
int catalog_version_at(db *d, int64_t product_id, const char *date, jv_arena *a, product_version *out, err *e);
/* The version as an API object. */
jv *catalog_version_jv(jv_arena *a, const product_version *v);

/* ---- implemented in catalog.c by the catalog module ---- */

/* Validates params against the schema the rule declares (module.schemas
 * [function]); ERR_INVALID names the parameter. */
int catalog_check_params(ruleset *rs, const char *rule, const jv *params, err *e);
/* Creates a product with its first version from an API object:
 *   {code, kind, name, status?, version: {effective_from, price,
 *    price_includes_tax?, tax_category, rule, params?, attrs?, regions?, tags?}} */
int catalog_create(db *d, ruleset *rs, const jv *in, const char *by, int64_t *id, err *e);
/* Adds a version from a date on (after the latest one). */
int catalog_add_version(db *d, ruleset *rs, int64_t product_id, const jv *in, const char *by, err *e);
int catalog_set_status(db *d, int64_t product_id, const char *status, err *e);
/* 1 if the version may be sold to a customer with these tags at this
 * address (an object with province, city, district, ...): the product is
 * active and its regions and tags allow it. */
int catalog_available(const product_version *v, const jv *address, const jv *tags);

#endif
