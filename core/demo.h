/* demo.h - deterministic made-up data for `bandbill demo` and the
 * benchmarks: a living broadband ISP in four districts of Hangzhou.
 *
 * Everything here is a pure function of (seed, index): customer number
 * `index` of a data set is the same person on every machine, and any
 * customer can be made without the ones before it (so threads can share
 * the work). Values that the schema keeps unique - ID-card numbers,
 * mobiles, device serials and MAC addresses - are not drawn at random but
 * taken through a keyed permutation of the index, so two indexes never
 * give the same value (no retry, no table of what was used).
 *
 * The values are valid by the rules the customer file applies: 18-digit
 * resident IDs with a Hangzhou region code, a birth date and the ISO 7064
 * MOD 11-2 check character; mainland mobiles of real operator prefixes;
 * unified social credit codes with their GB 11714 and GB 32100 check
 * characters; GPON serials with a known vendor prefix. The numbers are
 * made up: any resemblance to a real person's is chance.
 *
 * The PRNG is xoshiro256** seeded through splitmix64 (never rand(): its
 * sequence differs between C libraries). */
#ifndef BB_DEMO_H
#define BB_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

/* The seed of `bandbill demo` (and of the benchmarks). */
#define DEMO_SEED 20261127u
/* How many customers `bandbill demo` makes. */
#define DEMO_CUSTOMERS 2000
/* Indexes from here on are devices in stock (not at a customer); customer
 * indexes stay below it, and device MACs need every index below 2^24. */
#define DEMO_STOCK_BASE 15000000u
#define DEMO_MAX_INDEX 16000000u

/* ---- the PRNG ---- */
typedef struct demo_rng {
    uint64_t s[4];
} demo_rng;

/* One step of splitmix64 (advances *state). */
uint64_t demo_splitmix64(uint64_t *state);
void demo_rng_seed(demo_rng *r, uint64_t seed);
uint64_t demo_rng_next(demo_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint32_t demo_rng_below(demo_rng *r, uint32_t n);
/* 1 with probability percent/100. */
int demo_rng_percent(demo_rng *r, unsigned percent);

/* A keyed permutation of [0, n), n <= 2^62: distinct x < n give distinct
 * results < n (a 4-round Feistel network on the next even power of two,
 * walking the cycle until the value falls below n). */
uint64_t demo_permute(uint64_t x, uint64_t n, uint64_t key);

/* ---- check characters ---- */
/* ISO 7064 MOD 11-2 over the first 17 digits of a resident ID: '0'-'9' or 'X'. */
char demo_id_card_check(const char *first17);
/* GB 32100-2015 MOD 31 over the first 17 characters of a unified social
 * credit code; 0 when a character is outside its alphabet. */
char demo_tax_id_check(const char *first17);
/* GB 11714 check character of an organisation code's first 8 digits:
 * '0'-'9' or 'X'. */
char demo_org_code_check(const char *first8);

/* ---- single values (all pure functions of their arguments) ---- */
/* The resident ID of person `index`: a Hangzhou region code, a birth date
 * from 1950-01-01 to 2005-12-31 and a sequence whose parity is the sex
 * (odd: male). Distinct indexes give distinct numbers. */
void demo_id_card(uint64_t seed, uint64_t index, char out[19]);
/* A mainland mobile (11 digits, a real operator prefix); distinct indexes
 * give distinct numbers. */
void demo_mobile(uint64_t seed, uint64_t index, char out[12]);
/* An ONU serial, 4-letter vendor code and 8 hex digits (ZTEG1A2B3C4D), and
 * its MAC; vendor gets "ZTE" or "Huawei". Distinct indexes give distinct
 * serials and MACs. */
void demo_onu(uint64_t seed, uint64_t index, char serial[13], char mac[18], const char **vendor, const char **model);
/* A set-top box of the IPTV service: serial, MAC, vendor and model; never
 * equal to an ONU's serial or MAC. */
void demo_stb(uint64_t seed, uint64_t index, char serial[17], char mac[18], const char **vendor, const char **model);
/* A name for a field engineer ("王师傅" style is for customers: this is a
 * full name); n varies the choice. */
const char *demo_engineer(uint64_t n);

/* ---- a whole customer ---- */
typedef struct demo_customer {
    uint64_t index;
    int business;
    int male;
    int birth_year;
    char name[48];               /* the person (for a business, its contact) */
    char company[160];           /* business only */
    char tax_id[19];             /* business only */
    char id_card[19];
    char phone[12];
    char phone2[20];             /* "" or a landline as people write it: "0571-86421234" */
    char email[64];              /* "" or an address */
    const char *province, *city, *district, *street, *community;
    char building[8], unit[8], floor[8], room[8];
} demo_customer;

/* Customer `index` of the data set of `seed`. */
void demo_customer_make(uint64_t seed, uint64_t index, demo_customer *out);
/* The customer in the API's shape for customers_create (with the given
 * status and tags; tags may be NULL), in arena a. */
int demo_customer_jv(const demo_customer *c, const char *status, const char *const *tags, size_t ntags, jv_arena *a,
                     jv **out, err *e);

/* ---- the life of a demo customer ---- */
/* Plans, add-ons and their codes in the demo catalog (demo_catalog_json). */
enum { DEMO_PLAN_100, DEMO_PLAN_300, DEMO_PLAN_500, DEMO_PLAN_1000, DEMO_PLAN_500Y, DEMO_PLANS };
enum { DEMO_ADDON_IP = 1, DEMO_ADDON_IPTV = 2, DEMO_ADDON_BOOST = 4 };
extern const char *const demo_plan_codes[DEMO_PLANS];

typedef enum {
    DEMO_ACTIVE,
    DEMO_PROSPECT,    /* signed up, installation booked: a pending subscription */
    DEMO_OVERDUE,
    DEMO_SUSPENDED,
    DEMO_CLOSED
} demo_status;

/* What happens to customer `index`: status, plan, add-ons, dates (as days
 * before "today") and the extras. Deterministic like the rest. */
typedef struct demo_story {
    demo_status status;
    int plan;                    /* DEMO_PLAN_* */
    int addons;                  /* DEMO_ADDON_* bits (they fit the plan) */
    int start_days_ago;          /* the subscription's start (prospects: days ahead) */
    int upgraded_days_ago;       /* > 0: moved up from a cheaper plan then (monthly plans only) */
    int addon_later_days_ago;    /* > 0: IPTV added then instead of at the start */
    int event_days_ago;          /* suspended / closed (and suspended before closing) this many days ago */
    int downgrade_scheduled;     /* asks for a cheaper plan from the next period */
    int own_onu;                 /* brought their own ONU: no deposit */
    int lost_onu;                /* closed without returning the ONU */
    int repair_visit;            /* a pending repair-visit charge */
    int relocation;              /* a pending relocation charge */
    int vip, staff;
} demo_story;

void demo_story_make(uint64_t seed, uint64_t index, int business, demo_story *out);

/* ---- the catalog ---- */
/* The demo catalog as a JSON list of {product, later?}: product in the
 * shape of catalog_create ({code, kind, name, version: {...}}), later a
 * list of versions for catalog_add_version (a price cut). Effective dates
 * are counted back from `today` so that every subscription of the demo
 * finds a price in force on its start date. */
int demo_catalog_json(const char *today, jv_arena *a, jv **out, err *e);

/* ---- loading the demo through the modules ---- */
struct vault;
struct ruleset;
struct audit_who;

typedef struct demo_env {
    db *d;
    const struct vault *v;
    struct ruleset *rs;
    uint64_t seed;
    const char *today;                /* YYYY-MM-DD: dates of the story count back from it */
    const char *by;                   /* who creates it: "cli:alice" */
    const char *code_prefix;          /* of customer codes */
    const uint8_t *audit_key;         /* customer.create and customer.status records; NULL: none */
    const struct audit_who *who;
} demo_env;

typedef struct demo_counts {
    int64_t customers, by_status[5];  /* demo_status order */
    int64_t products, accounts, devices, installations, deposits, subscriptions, changes, charges, stock;
} demo_counts;

/* 1 in *present if customer 0 of the data set (found by its phone's
 * keyed hash) is in the database: the demo was loaded before. */
int demo_present(db *d, const struct vault *v, uint64_t seed, int *present, err *e);
/* Creates the products of the demo catalog that do not exist yet (as
 * drafts, with their past-dated versions, then active), through
 * catalog_create, catalog_add_version and catalog_set_status. Inside the
 * caller's transaction. */
int demo_catalog_load(const demo_env *env, demo_counts *n, err *e);
/* Customer `index` with the whole story of demo_story_make, through the
 * module functions (customers, accounts, devices, deposits, subscriptions,
 * changes, charges), so every validation and rule applies. Inside the
 * caller's transaction; an error names the step. */
int demo_customer_load(const demo_env *env, uint64_t index, demo_counts *n, err *e);
/* A device in the warehouse: stock number k (ONUs, and every fourth a
 * set-top box). */
int demo_stock_load(const demo_env *env, uint64_t k, demo_counts *n, err *e);
/* Puts the postpaid monthly subscriptions where an ISP that bills on the
 * 1st has them: billed through the end of the month before last, the next
 * bill on the 1st of this month. One `bill run --period <last month>` then
 * bills one month (plus what a first bill takes: pending charges, deposits),
 * instead of catching up every month since the start. Subscriptions that
 * started last month or later keep their first bill date. Inside the
 * caller's transaction; *moved gets how many were moved. */
int demo_billing_position(const demo_env *env, int64_t *moved, err *e);

#endif
