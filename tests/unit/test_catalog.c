/* test_catalog.c - the product catalog: rule parameters validated against
 * declared schemas (every type, bound and error, on a synthetic module and
 * on the starter rules), malformed schemas, attributes per product kind,
 * product creation with nothing written on any error, effective-dated
 * versions (ordering, inheritance, the day a new price starts, past dates
 * only for drafts), status transitions, and availability by region prefix
 * and customer tags. Runs on a migrated temporary database with the
 * starter rules of BB_SOURCE_DIR "/rules". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "date.h"
#include "db.h"
#include "json.h"
#include "migrate.h"
#include "rules.h"

/* A module whose schemas use every type and bound, and some broken ones. */
static const char FORMS_LUA[] =
    "local M = {}\n"
    "M.schemas = {\n"
    "  every = {\n"
    "    amount = { type = 'money', min = 0, max = 100000, order = 1, label = { zh = '金额', en = 'Amount' } },\n"
    "    count = { type = 'integer', min = 1, max = 12, order = 2, help = 'months' },\n"
    "    pct = { type = 'percent', min = '0.5', max = 50, order = 3 },\n"
    "    note = { type = 'string', min = 2, max = 4, required = false },\n"
    "    flag = { type = 'boolean', default = false },\n"
    "    day = { type = 'date', min = '2026-01-01', max = '2026-12-31', required = false },\n"
    "    mode = { type = 'enum', values = { 'a', 'b' }, default = 'a' },\n"
    "    plan = { type = 'code', kind = 'plan', required = false },\n"
    "    plans = { type = 'codes', max = 2, required = false },\n"
    "  },\n"
    "  empty = {},\n"
    "  bad_type = { x = { type = 'money2' } },\n"
    "  bad_key = { x = { type = 'money', requried = true } },\n"
    "  bad_enum = { x = { type = 'enum' } },\n"
    "  bad_default = { x = { type = 'integer', min = 1, default = 0 } },\n"
    "  bad_bound = { x = { type = 'boolean', min = 1 } },\n"
    "  bad_minmax = { x = { type = 'integer', min = 5, max = 1 } },\n"
    "  bad_name = { ['Bad-Name'] = { type = 'integer' } },\n"
    "  bad_label = { x = { type = 'integer', label = { fr = 'x' } } },\n"
    "  orphan = { x = { type = 'money' } },\n"
    "}\n"
    "local function f() return {} end\n"
    "for _, n in ipairs({ 'every', 'empty', 'bad_type', 'bad_key', 'bad_enum', 'bad_default', 'bad_bound',\n"
    "                     'bad_minmax', 'bad_name', 'bad_label', 'noschema' }) do M[n] = f end\n"
    "return M\n";
/* a function in a schema table cannot be read as data */
static const char FNSCHEMA_LUA[] = "local M = {}\nM.schemas = { p = { x = { type = 'money', check = function() end } } }\n"
                                   "function M.p() return {} end\nreturn M\n";
static const char TAX_LUA[] = "local M = {}\nM.rates = { internet = 6, deposit = 0 }\nreturn M\n";

static rules_snapshot *g_snap, *g_forms_snap;
static ruleset *g_rs, *g_forms;

typedef struct fixture {
    char dir[64];
    char path[128];
    db *d;
    jv_arena a;
    ruleset *rs;
} fixture;

static int group_setup(void **state)
{
    err e;
    err_clear(&e);
    if (rules_snapshot_read(BB_SOURCE_DIR "/rules", &g_snap, &e) ||
        ruleset_load(g_snap, &lhost_default_limits, 0, &g_rs, NULL, &e)) {
        print_error("starter rules: %s\n", e.msg);
        return -1;
    }
    rule_file files[] = {{(char *)"forms.lua", (char *)FORMS_LUA, sizeof FORMS_LUA - 1},
                         {(char *)"fnschema.lua", (char *)FNSCHEMA_LUA, sizeof FNSCHEMA_LUA - 1},
                         {(char *)"tax.lua", (char *)TAX_LUA, sizeof TAX_LUA - 1}};
    if (rules_snapshot_from("forms", files, 3, &g_forms_snap, &e) ||
        ruleset_load(g_forms_snap, &lhost_default_limits, 0, &g_forms, NULL, &e)) {
        print_error("forms rules: %s\n", e.msg);
        return -1;
    }
    (void)state;
    return 0;
}

static int group_teardown(void **state)
{
    ruleset_unref(g_rs);
    ruleset_unref(g_forms);
    rules_snapshot_unref(g_snap);
    rules_snapshot_unref(g_forms_snap);
    (void)state;
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/bb_test_catalog_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    jv_arena_init(&f->a, 0);
    f->rs = g_rs;
    err e;
    err_clear(&e);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d, &e) || migrate_apply(f->d, NULL, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    jv_arena_free(&f->a);
    char p[160];
    static const char *const files[] = {"test.db", "test.db-wal", "test.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static jv *P(fixture *f, const char *json)
{
    jv *v = NULL;
    err e;
    err_clear(&e);
    int rc = json_parse(json, strlen(json), NULL, &f->a, &v, &e);
    if (rc) print_error("json_parse(%s): %s\n", json, e.msg);
    assert_int_equal(rc, 0);
    return v;
}

/* Asserts a failure with this code, field and tag. */
static void expect_err_at(int rc, const err *e, int code, const char *field, const char *tag, const char *what, int line)
{
    if (rc != code || strcmp(e->field, field) || (tag && strcmp(err_tag(e), tag))) {
        print_error("line %d (%s): got rc %d field '%s' tag '%s' (%s); expected rc %d field '%s' tag '%s'\n", line, what, rc,
                    e->field, err_tag(e), e->msg, code, field, tag ? tag : "*");
        fail();
    }
}
#define EXPECT_ERR(rc, e, code, field, tag) expect_err_at((rc), (e), (code), (field), (tag), #rc, __LINE__)

static void expect_ok_at(int rc, const err *e, const char *what, int line)
{
    if (rc) {
        print_error("line %d (%s): rc %d field '%s': %s\n", line, what, rc, e->field, e->msg);
        fail();
    }
}
#define EXPECT_OK(rc, e) expect_ok_at((rc), (e), #rc, __LINE__)

static int params(ruleset *rs, fixture *f, const char *rule, const char *json, err *e)
{
    err_clear(e);
    return catalog_check_params(rs, rule, P(f, json), e);
}

static int create(fixture *f, const char *json, int64_t *id, err *e)
{
    err_clear(e);
    int64_t dummy;
    return catalog_create(f->d, f->rs, P(f, json), "test", id ? id : &dummy, e);
}

static int add_version(fixture *f, int64_t id, const char *json, err *e)
{
    err_clear(e);
    return catalog_add_version(f->d, f->rs, id, P(f, json), "test", e);
}

static int64_t count(fixture *f, const char *table)
{
    int64_t n = -1;
    err e;
    if (!strcmp(table, "products")) assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM products", ""), 0);
    else assert_int_equal(db_get_int(f->d, &e, &n, "SELECT count(*) FROM product_versions", ""), 0);
    return n;
}

static void day_offset(int delta, char out[11]) { date_format(date_of_time(time(NULL)) + delta, out); }

static const char *PLAN_ATTRS = "{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}";

/* A plan JSON with the given code, status and start date. */
static const char *plan_json(fixture *f, const char *code, const char *status, const char *from)
{
    char *s = jv_alloc(&f->a, 1024);
    assert_non_null(s);
    snprintf(s, 1024,
             "{\"code\":\"%s\",\"kind\":\"plan\",\"name\":\"光纤 %s\",\"status\":\"%s\",\"version\":{\"effective_from\":\"%s\","
             "\"price\":12900,\"tax_category\":\"internet\",\"rule\":\"tariffs.monthly\",\"attrs\":%s}}",
             code, code, status, from, PLAN_ATTRS);
    return s;
}

static int64_t make_plan(fixture *f, const char *code, const char *status, const char *from)
{
    int64_t id = 0;
    err e;
    EXPECT_OK(create(f, plan_json(f, code, status, from), &id, &e), &e);
    assert_true(id > 0);
    return id;
}

/* -------------------------------------------- parameters: every type */

static void test_params_every_type_valid(void **state)
{
    fixture *f = *state;
    err e;
    EXPECT_OK(params(g_forms, f, "forms.every",
                     "{\"amount\":100000,\"count\":12,\"pct\":\"12.5\",\"note\":\"abcd\",\"flag\":true,\"day\":\"2026-12-31\","
                     "\"mode\":\"b\",\"plan\":\"P1\",\"plans\":[\"A1\",\"B-2_X\"]}",
                     &e),
              &e);
    /* lower bounds, defaults and optional fields left out */
    EXPECT_OK(params(g_forms, f, "forms.every", "{\"amount\":0,\"count\":1,\"pct\":\"0.5\"}", &e), &e);
    EXPECT_OK(params(g_forms, f, "forms.every", "{\"amount\":0,\"count\":1,\"pct\":50}", &e), &e);
    /* string bounds count characters, not bytes: 4 characters, 12 bytes */
    EXPECT_OK(params(g_forms, f, "forms.every", "{\"amount\":1,\"count\":1,\"pct\":1,\"note\":\"四个汉字\"}", &e), &e);
    /* null is a form's empty field: fine where optional */
    EXPECT_OK(params(g_forms, f, "forms.every", "{\"amount\":1,\"count\":1,\"pct\":1,\"note\":null,\"plans\":[]}", &e), &e);
    /* six decimals are accepted, as bandbill.money.percent does */
    EXPECT_OK(params(g_forms, f, "forms.every", "{\"amount\":1,\"count\":1,\"pct\":\"12.123456\"}", &e), &e);
    EXPECT_OK(params(g_forms, f, "forms.empty", "{}", &e), &e);
}

static void test_params_every_error(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *json, *field, *tag;
    } cases[] = {
        {"{\"count\":1,\"pct\":1}", "params.amount", "missing_field"},
        {"{\"amount\":null,\"count\":1,\"pct\":1}", "params.amount", "missing_field"},
        {"{\"amount\":1.5,\"count\":1,\"pct\":1}", "params.amount", "invalid_money"},
        {"{\"amount\":100.0,\"count\":1,\"pct\":1}", "params.amount", "invalid_money"},
        {"{\"amount\":\"100\",\"count\":1,\"pct\":1}", "params.amount", "invalid_field"},
        {"{\"amount\":-1,\"count\":1,\"pct\":1}", "params.amount", "out_of_range"},
        {"{\"amount\":100001,\"count\":1,\"pct\":1}", "params.amount", "out_of_range"},
        {"{\"amount\":1,\"count\":0,\"pct\":1}", "params.count", "out_of_range"},
        {"{\"amount\":1,\"count\":13,\"pct\":1}", "params.count", "out_of_range"},
        {"{\"amount\":1,\"count\":2.5,\"pct\":1}", "params.count", "invalid_field"},
        {"{\"amount\":1,\"count\":true,\"pct\":1}", "params.count", "invalid_field"},
        {"{\"amount\":1,\"count\":1}", "params.pct", "missing_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"0.4\"}", "params.pct", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":0}", "params.pct", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":51}", "params.pct", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"50.000001\"}", "params.pct", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":-5}", "params.pct", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"8.1234567\"}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"abc\"}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":\".5\"}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"5.\"}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":\"1000\"}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":8.5}", "params.pct", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"note\":\"a\"}", "params.note", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"note\":\"五个汉字啊\"}", "params.note", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"note\":12}", "params.note", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"flag\":\"yes\"}", "params.flag", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"flag\":1}", "params.flag", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"day\":\"2026-02-30\"}", "params.day", "invalid_date"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"day\":\"2026/06/01\"}", "params.day", "invalid_date"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"day\":\"2025-12-31\"}", "params.day", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"day\":\"2027-01-01\"}", "params.day", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"mode\":\"c\"}", "params.mode", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"mode\":1}", "params.mode", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"mode\":\"b\\u0000x\"}", "params.mode", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"note\":\"ab\\u0000\"}", "params.note", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plan\":\"p1\"}", "params.plan", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plan\":\"X\"}", "params.plan", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plan\":[\"P1\"]}", "params.plan", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plans\":\"A1\"}", "params.plans", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plans\":[\"A1\",\"A1\"]}", "params.plans[1]", "duplicate"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plans\":[\"A1\",\"B1\",\"C1\"]}", "params.plans", "out_of_range"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"plans\":[\"ok\"]}", "params.plans[0]", "invalid_field"},
        {"{\"amount\":1,\"count\":1,\"pct\":1,\"zzz\":1}", "params.zzz", "unknown_field"},
        {"[1]", "params", "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err e;
        int rc = params(g_forms, f, "forms.every", cases[i].json, &e);
        expect_err_at(rc, &e, ERR_INVALID, cases[i].field, cases[i].tag, cases[i].json, (int)i);
    }
    err e;
    EXPECT_ERR(params(g_forms, f, "forms.empty", "{\"x\":1}", &e), &e, ERR_INVALID, "params.x", "unknown_field");
}

static void test_params_malformed_schemas(void **state)
{
    fixture *f = *state;
    static const char *const broken[] = {"forms.bad_type",   "forms.bad_key",  "forms.bad_enum",
                                         "forms.bad_default", "forms.bad_bound", "forms.bad_minmax",
                                         "forms.bad_name",   "forms.bad_label"};
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        err e;
        int rc = params(g_forms, f, broken[i], "{}", &e);
        expect_err_at(rc, &e, ERR_RULE, "", "invalid_schema", broken[i], (int)i);
        /* the message points at the schema and the field at fault */
        assert_non_null(strstr(e.msg, "forms.schemas."));
    }
    err e;
    assert_int_equal(params(g_forms, f, "forms.bad_key", "{}", &e), ERR_RULE);
    assert_non_null(strstr(e.msg, "requried"));
    /* a schema without its function, a function without a schema */
    EXPECT_ERR(params(g_forms, f, "fnschema.p", "{}", &e), &e, ERR_RULE, "", "invalid_schema");
    EXPECT_ERR(params(g_forms, f, "forms.orphan", "{}", &e), &e, ERR_INVALID, "rule", "unknown_rule");
    EXPECT_ERR(params(g_forms, f, "forms.noschema", "{}", &e), &e, ERR_INVALID, "rule", "rule_without_schema");
    EXPECT_ERR(params(g_forms, f, "forms.nothing", "{}", &e), &e, ERR_INVALID, "rule", "unknown_rule");
    EXPECT_ERR(params(g_forms, f, "nothing.every", "{}", &e), &e, ERR_INVALID, "rule", "unknown_rule");
    EXPECT_ERR(params(g_forms, f, "notarule", "{}", &e), &e, ERR_INVALID, "rule", "invalid_field");
    EXPECT_ERR(params(g_forms, f, "forms..every", "{}", &e), &e, ERR_INVALID, "rule", "invalid_field");
    EXPECT_ERR(params(g_forms, f, "forms.every()", "{}", &e), &e, ERR_INVALID, "rule", "invalid_field");
}

/* ------------------------------------------ parameters: starter rules */

static void test_params_starter_rules(void **state)
{
    fixture *f = *state;
    err e;
    EXPECT_OK(params(g_rs, f, "tariffs.flat", "{\"price\":12900}", &e), &e);
    EXPECT_ERR(params(g_rs, f, "tariffs.flat", "{}", &e), &e, ERR_INVALID, "params.price", "missing_field");
    EXPECT_ERR(params(g_rs, f, "tariffs.flat", "{\"price\":129.0}", &e), &e, ERR_INVALID, "params.price", "invalid_money");
    EXPECT_ERR(params(g_rs, f, "tariffs.flat", "{\"price\":-1}", &e), &e, ERR_INVALID, "params.price", "out_of_range");
    EXPECT_ERR(params(g_rs, f, "tariffs.flat", "{\"price\":1,\"period\":\"month\"}", &e), &e, ERR_INVALID, "params.period",
               "unknown_field");

    EXPECT_OK(params(g_rs, f, "tariffs.monthly", "{\"price\":9900}", &e), &e);
    EXPECT_OK(params(g_rs, f, "tariffs.monthly", "{\"price\":9900,\"proration\":\"none\",\"rounding\":\"half_even\"}", &e), &e);
    EXPECT_ERR(params(g_rs, f, "tariffs.monthly", "{\"price\":9900,\"proration\":\"weekly\"}", &e), &e, ERR_INVALID,
               "params.proration", "invalid_field");
    EXPECT_ERR(params(g_rs, f, "tariffs.monthly", "{\"price\":9900,\"rounding\":\"floor\"}", &e), &e, ERR_INVALID,
               "params.rounding", "invalid_field");

    EXPECT_OK(params(g_rs, f, "promotions.percent_off", "{\"percent\":20}", &e), &e);
    EXPECT_OK(params(g_rs, f, "promotions.percent_off", "{\"percent\":\"8.5\",\"months\":6}", &e), &e);
    EXPECT_ERR(params(g_rs, f, "promotions.percent_off", "{\"percent\":0}", &e), &e, ERR_INVALID, "params.percent", "out_of_range");
    EXPECT_ERR(params(g_rs, f, "promotions.percent_off", "{\"percent\":101}", &e), &e, ERR_INVALID, "params.percent", "out_of_range");
    EXPECT_ERR(params(g_rs, f, "promotions.percent_off", "{\"percent\":20,\"months\":0}", &e), &e, ERR_INVALID, "params.months",
               "out_of_range");
    EXPECT_ERR(params(g_rs, f, "promotions.percent_off", "{\"months\":6}", &e), &e, ERR_INVALID, "params.percent", "missing_field");
    EXPECT_OK(params(g_rs, f, "promotions.first_year", "{\"percent\":15}", &e), &e);
    EXPECT_ERR(params(g_rs, f, "promotions.first_year", "{\"percent\":15,\"months\":12}", &e), &e, ERR_INVALID, "params.months",
               "unknown_field");
    EXPECT_OK(params(g_rs, f, "promotions.fixed_off", "{\"amount\":1000}", &e), &e);
    EXPECT_ERR(params(g_rs, f, "promotions.fixed_off", "{\"amount\":0}", &e), &e, ERR_INVALID, "params.amount", "out_of_range");
    EXPECT_ERR(params(g_rs, f, "promotions.fixed_off", "{\"amount\":10.5}", &e), &e, ERR_INVALID, "params.amount", "invalid_money");
    /* tax.split prices nothing: it has no schema */
    EXPECT_ERR(params(g_rs, f, "tax.split", "{}", &e), &e, ERR_INVALID, "rule", "rule_without_schema");
}

/* Every schema of the starter rules is well formed and has its function. */
static void test_starter_schemas_well_formed(void **state)
{
    fixture *f = *state;
    int seen = 0;
    for (size_t i = 0; i < lhost_module_count(g_rs->host); i++) {
        const char *module = lhost_module_name(g_rs->host, i);
        jv *schemas;
        err e;
        if (lhost_get_field(g_rs->host, module, "schemas", &f->a, &schemas, &e)) continue;
        assert_int_equal(schemas->kind, JV_OBJ);
        for (size_t k = 0; k < schemas->u.obj.n; k++) {
            char rule[160];
            snprintf(rule, sizeof rule, "%s.%s", module, schemas->u.obj.m[k].key);
            int rc = params(g_rs, f, rule, "{}", &e);
            /* {} may lack required parameters; anything else is a bug */
            if (rc && strcmp(e.tag, "missing_field")) {
                print_error("%s: %s\n", rule, e.msg);
                fail();
            }
            seen++;
        }
    }
    /* flat, monthly, percent_off, first_year, fixed_off at least */
    assert_true(seen >= 5);
}

/* ------------------------------------------------------------ creating */

static void test_create_plan_stores_defaults(void **state)
{
    fixture *f = *state;
    int64_t id = make_plan(f, "FTTH200", "draft", "2026-01-01");
    product p;
    err e;
    EXPECT_OK(catalog_product(f->d, "FTTH200", &p, &e), &e);
    assert_int_equal(p.id, id);
    assert_string_equal(p.kind, "plan");
    assert_string_equal(p.status, "draft");
    assert_string_equal(p.name, "光纤 FTTH200");
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, "2026-01-01", &f->a, &v, &e), &e);
    assert_int_equal(v.version, 1);
    assert_int_equal(v.price, 12900);
    assert_int_equal(v.price_includes_tax, 1);
    assert_string_equal(v.tax_category, "internet");
    assert_string_equal(v.rule, "tariffs.monthly");
    /* defaults are stored with the version; the price is its own column */
    assert_true(jv_equal(v.params, P(f, "{\"proration\":\"daily\",\"rounding\":\"half_up\"}")));
    assert_true(jv_equal(v.attrs, P(f, "{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\","
                                       "\"min_contract_months\":0,\"contract_lock\":false}")));
    assert_true(jv_equal(v.regions, P(f, "[]")));
    assert_true(jv_equal(v.tags, P(f, "[]")));
    jv *o = catalog_version_jv(&f->a, &v);
    assert_non_null(o);
    assert_int_equal(jv_get(o, "price")->u.i, 12900);
    assert_string_equal(jv_get(o, "effective_from")->u.str.s, "2026-01-01");
    assert_true(jv_get(o, "price_includes_tax")->u.b);
}

static void test_create_default_date_is_today(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id;
    EXPECT_OK(create(f, "{\"code\":\"INSTALL\",\"kind\":\"fee\",\"name\":\"安装费\",\"version\":{\"price\":20000,"
                        "\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\",\"price_includes_tax\":false,"
                        "\"attrs\":{\"purpose\":\"installation\"}}}",
                     &id, &e),
              &e);
    char t[11];
    day_offset(0, t);
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, t, &f->a, &v, &e), &e);
    assert_string_equal(v.effective_from, t);
    assert_int_equal(v.price_includes_tax, 0);
    assert_true(jv_equal(v.params, P(f, "{}")));   /* flat's only parameter is the price */
}

static void test_create_errors_write_nothing(void **state)
{
    fixture *f = *state;
    make_plan(f, "EXISTS", "draft", "2026-01-01");
    static const struct {
        const char *json, *field, *tag;
        int code;
    } cases[] = {
        {"[]", "", "invalid_body", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"colour\":\"red\",\"version\":{}}", "colour", "unknown_field", ERR_INVALID},
        {"{\"kind\":\"fee\",\"name\":\"x\",\"version\":{}}", "code", "missing_field", ERR_INVALID},
        {"{\"code\":\"ab\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{}}", "code", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{}}", "code", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A B\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{}}", "code", "invalid_field", ERR_INVALID},
        {"{\"code\":\"ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHI\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{}}", "code",
         "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"name\":\"x\",\"version\":{}}", "kind", "missing_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"bundle\",\"name\":\"x\",\"version\":{}}", "kind", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"version\":{}}", "name", "missing_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\" x\",\"version\":{}}", "name", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"\",\"version\":{}}", "name", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"status\":\"retired\",\"version\":{}}", "status", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\"}", "version", "missing_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"colour\":1}}", "version.colour", "unknown_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100}}", "version.tax_category", "missing_field",
         ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"tax_category\":\"internet\"}}", "version.price",
         "missing_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":129.5,\"tax_category\":\"internet\"}}",
         "version.price", "invalid_money", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":-100,\"tax_category\":\"internet\"}}",
         "version.price", "out_of_range", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"snacks\",\"rule\":\"tariffs.flat\"}}",
         "version.tax_category", "unknown_tax_category", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\"}}",
         "version.rule", "missing_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"internet\\u0000x\"}}",
         "version.tax_category", "unknown_tax_category", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\\u0000x\"}}",
         "version.rule", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.nope\"}}",
         "version.rule", "unknown_rule", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tax.split\"}}",
         "version.rule", "rule_without_schema", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"params\":{\"price\":100},\"attrs\":{\"purpose\":\"other\"}}}",
         "version.params.price", "unknown_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"plan\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"internet\",\"rule\":\"tariffs.monthly\","
         "\"params\":{\"proration\":\"weekly\"},\"attrs\":{\"download_mbps\":1,\"upload_mbps\":1,\"period\":\"month\",\"billing\":\"prepaid\"}}}",
         "version.params.proration", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"params\":[1,2],\"attrs\":{\"purpose\":\"other\"}}}",
         "version.params", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"effective_from\":\"2026-02-30\",\"price\":100}}",
         "version.effective_from", "invalid_date", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"},\"regions\":[\"浙江省//西湖区\"]}}",
         "version.regions[0]", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"},\"regions\":[\"浙江省\",\"/浙江省\"]}}",
         "version.regions[1]", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"},\"regions\":\"浙江省\"}}",
         "version.regions", "invalid_field", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"},\"tags\":[\"vip\",\"vip\"]}}",
         "version.tags[1]", "duplicate", ERR_INVALID},
        {"{\"code\":\"A1\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"},\"tags\":[\"\"]}}",
         "version.tags[0]", "invalid_field", ERR_INVALID},
        {"{\"code\":\"EXISTS\",\"kind\":\"fee\",\"name\":\"x\",\"version\":{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\","
         "\"attrs\":{\"purpose\":\"other\"}}}",
         "code", "exists", ERR_CONFLICT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err e;
        int rc = create(f, cases[i].json, NULL, &e);
        expect_err_at(rc, &e, cases[i].code, cases[i].field, cases[i].tag, cases[i].json, (int)i);
        assert_int_equal(count(f, "products"), 1);
        assert_int_equal(count(f, "product_versions"), 1);
        assert_false(db_in_tx(f->d));
    }
    /* 48 characters is the longest code */
    err e;
    EXPECT_OK(create(f, "{\"code\":\"ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGH\",\"kind\":\"fee\",\"name\":\"x\",\"version\":"
                        "{\"price\":100,\"tax_category\":\"installation\",\"rule\":\"tariffs.flat\",\"attrs\":{\"purpose\":\"other\"}}}",
                     NULL, &e),
              &e);
}

static void test_create_inside_callers_transaction(void **state)
{
    fixture *f = *state;
    err e;
    /* the API wraps create and its audit record in one transaction: a
     * rollback of the caller's transaction takes the product away */
    assert_int_equal(db_begin(f->d, &e), 0);
    make_plan(f, "ROLLED", "draft", "2026-01-01");
    db_rollback(f->d);
    assert_int_equal(count(f, "products"), 0);
    assert_int_equal(count(f, "product_versions"), 0);
}

/* --------------------------------------------------- attributes by kind */

static const char *with_attrs(fixture *f, const char *code, const char *kind, const char *rule, const char *params_json,
                              const char *attrs)
{
    char *s = jv_alloc(&f->a, 2048);
    assert_non_null(s);
    snprintf(s, 2048,
             "{\"code\":\"%s\",\"kind\":\"%s\",\"name\":\"x\",\"version\":{\"price\":0,\"tax_category\":\"internet\","
             "\"rule\":\"%s\",\"params\":%s,\"attrs\":%s}}",
             code, kind, rule, params_json, attrs);
    return s;
}

static void test_attrs_plan(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *attrs, *field, *tag;
    } cases[] = {
        {"{\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}", "version.attrs.download_mbps", "missing_field"},
        {"{\"download_mbps\":0,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}", "version.attrs.download_mbps",
         "out_of_range"},
        {"{\"download_mbps\":100001,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}",
         "version.attrs.download_mbps", "out_of_range"},
        {"{\"download_mbps\":\"200\",\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\"}",
         "version.attrs.download_mbps", "invalid_field"},
        {"{\"download_mbps\":200,\"period\":\"month\",\"billing\":\"postpaid\"}", "version.attrs.upload_mbps", "missing_field"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"week\",\"billing\":\"postpaid\"}", "version.attrs.period",
         "invalid_field"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\"}", "version.attrs.billing", "missing_field"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"credit\"}", "version.attrs.billing",
         "invalid_field"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":121}",
         "version.attrs.min_contract_months", "out_of_range"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"min_contract_months\":-1}",
         "version.attrs.min_contract_months", "out_of_range"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"early_termination_percent\":101}",
         "version.attrs.early_termination_percent", "out_of_range"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"contract_lock\":\"yes\"}",
         "version.attrs.contract_lock", "invalid_field"},
        {"{\"download_mbps\":200,\"upload_mbps\":50,\"period\":\"month\",\"billing\":\"postpaid\",\"colour\":\"red\"}",
         "version.attrs.colour", "unknown_field"},
        {"[]", "version.attrs", "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err e;
        int rc = create(f, with_attrs(f, "P1", "plan", "tariffs.monthly", "{}", cases[i].attrs), NULL, &e);
        expect_err_at(rc, &e, ERR_INVALID, cases[i].field, cases[i].tag, cases[i].attrs, (int)i);
    }
    err e;
    int64_t id;
    EXPECT_OK(create(f, with_attrs(f, "P1", "plan", "tariffs.monthly", "{}",
                                   "{\"download_mbps\":1000,\"upload_mbps\":1000,\"period\":\"year\",\"billing\":\"prepaid\","
                                   "\"min_contract_months\":12,\"early_termination_percent\":30,\"contract_lock\":true}"),
                     &id, &e),
              &e);
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, "9999-12-31", &f->a, &v, &e), &e);
    assert_int_equal(jv_get(v.attrs, "early_termination_percent")->u.i, 30);
    assert_true(jv_get(v.attrs, "contract_lock")->u.b);
}

static void test_attrs_addon_fee_deposit(void **state)
{
    fixture *f = *state;
    make_plan(f, "PLAN1", "active", "2099-01-01");
    err e;
    int64_t id;
    /* fits must name existing plans */
    EXPECT_ERR(create(f, with_attrs(f, "IP1", "addon", "tariffs.flat", "{}", "{\"fits\":[\"NOPE\"]}"), NULL, &e), &e,
               ERR_INVALID, "version.attrs.fits[0]", "unknown_product");
    EXPECT_ERR(create(f, with_attrs(f, "IP1", "addon", "tariffs.flat", "{}", "{\"fits\":[\"PLAN1\",\"PLAN1\"]}"), NULL, &e), &e,
               ERR_INVALID, "version.attrs.fits[1]", "duplicate");
    EXPECT_OK(create(f, with_attrs(f, "INSTALL", "fee", "tariffs.flat", "{}", "{\"purpose\":\"installation\"}"), NULL, &e), &e);
    EXPECT_ERR(create(f, with_attrs(f, "IP1", "addon", "tariffs.flat", "{}", "{\"fits\":[\"INSTALL\"]}"), NULL, &e), &e,
               ERR_INVALID, "version.attrs.fits[0]", "invalid_field");
    assert_non_null(strstr(e.msg, "INSTALL is a fee, not a plan"));
    EXPECT_OK(create(f, with_attrs(f, "IP1", "addon", "tariffs.flat", "{}", "{\"fits\":[\"PLAN1\"]}"), &id, &e), &e);
    /* no fits: every plan, stored as [] */
    EXPECT_OK(create(f, with_attrs(f, "IPTV", "addon", "tariffs.flat", "{}", "{}"), &id, &e), &e);
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, "9999-12-31", &f->a, &v, &e), &e);
    assert_true(jv_equal(v.attrs, P(f, "{\"fits\":[]}")));

    EXPECT_ERR(create(f, with_attrs(f, "REPAIR", "fee", "tariffs.flat", "{}", "{}"), NULL, &e), &e, ERR_INVALID,
               "version.attrs.purpose", "missing_field");
    EXPECT_ERR(create(f, with_attrs(f, "REPAIR", "fee", "tariffs.flat", "{}", "{\"purpose\":\"pizza\"}"), NULL, &e), &e,
               ERR_INVALID, "version.attrs.purpose", "invalid_field");
    EXPECT_ERR(create(f, with_attrs(f, "REPAIR", "fee", "tariffs.flat", "{}", "{\"purpose\":\"repair_visit\",\"fits\":[]}"), NULL,
                      &e),
               &e, ERR_INVALID, "version.attrs.fits", "unknown_field");
    EXPECT_OK(create(f, with_attrs(f, "REPAIR", "fee", "tariffs.flat", "{}", "{\"purpose\":\"repair_visit\"}"), NULL, &e), &e);

    EXPECT_ERR(create(f, with_attrs(f, "ONU", "deposit", "tariffs.flat", "{}", "{\"device\":\"tv\"}"), NULL, &e), &e, ERR_INVALID,
               "version.attrs.device", "invalid_field");
    EXPECT_ERR(create(f, with_attrs(f, "ONU", "deposit", "tariffs.flat", "{}", "{}"), NULL, &e), &e, ERR_INVALID,
               "version.attrs.device", "missing_field");
    EXPECT_OK(create(f, with_attrs(f, "ONU", "deposit", "tariffs.flat", "{}", "{\"device\":\"onu\"}"), &id, &e), &e);
    EXPECT_OK(catalog_version_at(f->d, id, "9999-12-31", &f->a, &v, &e), &e);
    assert_true(jv_equal(v.attrs, P(f, "{\"device\":\"onu\",\"refundable\":true}")));
}

static void test_attrs_promotion(void **state)
{
    fixture *f = *state;
    make_plan(f, "PLAN1", "draft", "2026-01-01");
    err e;
    EXPECT_OK(create(f, with_attrs(f, "IPTV", "addon", "tariffs.flat", "{}", "{}"), NULL, &e), &e);
    static const struct {
        const char *attrs, *field, *tag;
    } cases[] = {
        {"{\"applies_to\":\"plan\"}", "version.attrs.promo_type", "missing_field"},
        {"{\"promo_type\":\"first_year\"}", "version.attrs.applies_to", "missing_field"},
        {"{\"promo_type\":\"free_lunch\",\"applies_to\":\"plan\"}", "version.attrs.promo_type", "invalid_field"},
        {"{\"promo_type\":\"coupon\",\"applies_to\":\"plan\"}", "version.attrs.coupon", "missing_field"},
        {"{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"coupon\":\"SAVE10\"}", "version.attrs.coupon", "invalid_field"},
        {"{\"promo_type\":\"coupon\",\"applies_to\":\"plan\",\"coupon\":\"ABC\"}", "version.attrs.coupon", "out_of_range"},
        {"{\"promo_type\":\"bundle\",\"applies_to\":\"addon\"}", "version.attrs.requires", "missing_field"},
        {"{\"promo_type\":\"bundle\",\"applies_to\":\"addon\",\"requires\":[\"NOPE\"]}", "version.attrs.requires[0]",
         "unknown_product"},
        {"{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"products\":[\"IPTV\"]}", "version.attrs.products[0]",
         "invalid_field"},
        {"{\"promo_type\":\"loyalty\",\"applies_to\":\"any\",\"min_tenure_months\":601}", "version.attrs.min_tenure_months",
         "out_of_range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = create(f, with_attrs(f, "PROMO", "promotion", "promotions.first_year", "{\"percent\":15}", cases[i].attrs), NULL, &e);
        expect_err_at(rc, &e, ERR_INVALID, cases[i].field, cases[i].tag, cases[i].attrs, (int)i);
    }
    int64_t id;
    EXPECT_OK(create(f, with_attrs(f, "FIRSTYEAR", "promotion", "promotions.first_year", "{\"percent\":15}",
                                   "{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"products\":[\"PLAN1\"]}"),
                     &id, &e),
              &e);
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, "9999-12-31", &f->a, &v, &e), &e);
    assert_true(jv_equal(v.attrs, P(f, "{\"promo_type\":\"first_year\",\"applies_to\":\"plan\",\"products\":[\"PLAN1\"],"
                                       "\"requires\":[],\"min_tenure_months\":0,\"stackable\":false}")));
    assert_true(jv_equal(v.params, P(f, "{\"percent\":15}")));
    EXPECT_OK(create(f, with_attrs(f, "BUNDLE", "promotion", "promotions.fixed_off", "{\"amount\":1000}",
                                   "{\"promo_type\":\"bundle\",\"applies_to\":\"addon\",\"products\":[\"IPTV\"],\"requires\":[\"PLAN1\"]}"),
                     NULL, &e),
              &e);
    EXPECT_OK(create(f, with_attrs(f, "SAVE10", "promotion", "promotions.percent_off", "{\"percent\":\"10\",\"months\":3}",
                                   "{\"promo_type\":\"coupon\",\"applies_to\":\"any\",\"coupon\":\"SAVE10\"}"),
                     NULL, &e),
              &e);
}

/* ------------------------------------------------------------ versions */

static void test_versions_and_version_at(void **state)
{
    fixture *f = *state;
    /* a draft may be given a history that starts in the past */
    int64_t id = make_plan(f, "P100", "draft", "2026-01-01");
    err e;
    product_version v;
    EXPECT_ERR(catalog_version_at(f->d, id, "2025-12-31", &f->a, &v, &e), &e, ERR_NOTFOUND, "", NULL);
    EXPECT_OK(add_version(f, id, "{\"effective_from\":\"2026-03-01\",\"price\":13900}", &e), &e);
    EXPECT_OK(add_version(f, id, "{\"effective_from\":\"2026-06-15\",\"params\":{\"proration\":\"full\"},\"tags\":[\"vip\"]}", &e), &e);
    assert_int_equal(count(f, "product_versions"), 3);

    static const struct {
        const char *date;
        int version;
        int64_t price;
    } at[] = {
        {"2026-01-01", 1, 12900}, {"2026-02-28", 1, 12900}, {"2026-03-01", 2, 13900}, /* the day the new price starts */
        {"2026-06-14", 2, 13900}, {"2026-06-15", 3, 13900}, {"2099-12-31", 3, 13900},
    };
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        EXPECT_OK(catalog_version_at(f->d, id, at[i].date, &f->a, &v, &e), &e);
        if (v.version != at[i].version || v.price != at[i].price) {
            print_error("%s: version %d price %lld\n", at[i].date, v.version, (long long)v.price);
            fail();
        }
    }
    /* what a version leaves out it inherits from the latest one */
    EXPECT_OK(catalog_version_at(f->d, id, "2026-03-01", &f->a, &v, &e), &e);
    assert_string_equal(v.rule, "tariffs.monthly");
    assert_string_equal(v.tax_category, "internet");
    assert_true(jv_equal(v.params, P(f, "{\"proration\":\"daily\",\"rounding\":\"half_up\"}")));
    assert_int_equal(jv_get(v.attrs, "download_mbps")->u.i, 200);
    assert_true(jv_equal(v.tags, P(f, "[]")));
    EXPECT_OK(catalog_version_at(f->d, id, "2026-06-15", &f->a, &v, &e), &e);
    assert_true(jv_equal(v.params, P(f, "{\"proration\":\"full\",\"rounding\":\"half_up\"}")));
    assert_true(jv_equal(v.tags, P(f, "[\"vip\"]")));

    /* never before or on the latest start: history is not rewritten */
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2026-06-15\",\"price\":1}", &e), &e, ERR_CONFLICT, "effective_from",
               "effective_from_not_after_latest");
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2026-02-01\",\"price\":1}", &e), &e, ERR_CONFLICT, "effective_from",
               "effective_from_not_after_latest");
    EXPECT_ERR(add_version(f, id, "{\"price\":1}", &e), &e, ERR_INVALID, "effective_from", "missing_field");
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"price\":1.5}", &e), &e, ERR_INVALID, "price", "invalid_money");
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"params\":{\"proration\":\"x\"}}", &e), &e, ERR_INVALID,
               "params.proration", "invalid_field");
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"attrs\":{\"download_mbps\":1}}", &e), &e, ERR_INVALID,
               "attrs.upload_mbps", "missing_field");
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"version\":9}", &e), &e, ERR_INVALID, "version",
               "unknown_field");
    /* a new rule with the old rule's parameters: they are checked anew */
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"rule\":\"tariffs.flat\"}", &e), &e, ERR_INVALID,
               "params.proration", "unknown_field");
    assert_int_equal(count(f, "product_versions"), 3);
    EXPECT_OK(add_version(f, id, "{\"effective_from\":\"2027-01-01\",\"rule\":\"tariffs.flat\",\"params\":{}}", &e), &e);
    EXPECT_OK(catalog_version_at(f->d, id, "2027-01-01", &f->a, &v, &e), &e);
    assert_int_equal(v.version, 4);
    assert_string_equal(v.rule, "tariffs.flat");
    EXPECT_ERR(catalog_add_version(f->d, f->rs, 9999, P(f, "{\"effective_from\":\"2027-02-01\"}"), "t", &e), &e, ERR_NOTFOUND,
               "product", "not_found");
}

static void test_versions_past_only_for_drafts(void **state)
{
    fixture *f = *state;
    char past[11], yesterday[11], t[11], soon[11], later[11];
    day_offset(-30, past);
    day_offset(-1, yesterday);
    day_offset(0, t);
    day_offset(10, soon);
    day_offset(11, later);
    err e;
    /* an active product cannot be born with a past price */
    EXPECT_ERR(create(f, plan_json(f, "LIVE", "active", yesterday), NULL, &e), &e, ERR_INVALID, "version.effective_from",
               "effective_from_in_past");
    assert_int_equal(count(f, "products"), 0);
    int64_t id = make_plan(f, "LIVE", "draft", past);
    EXPECT_OK(catalog_set_status(f->d, id, "active", &e), &e);
    EXPECT_ERR(add_version(f, id, "{\"effective_from\":\"tomorrow\"}", &e), &e, ERR_INVALID, "effective_from", "invalid_date");
    char json[128];
    snprintf(json, sizeof json, "{\"effective_from\":\"%s\",\"price\":100}", yesterday);
    EXPECT_ERR(add_version(f, id, json, &e), &e, ERR_INVALID, "effective_from", "effective_from_in_past");
    snprintf(json, sizeof json, "{\"effective_from\":\"%s\",\"price\":13900}", soon);
    EXPECT_OK(add_version(f, id, json, &e), &e);
    /* a new price from a future date leaves today's price alone */
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, t, &f->a, &v, &e), &e);
    assert_int_equal(v.price, 12900);
    EXPECT_OK(catalog_version_at(f->d, id, soon, &f->a, &v, &e), &e);
    assert_int_equal(v.price, 13900);
    /* a price from today on is allowed, and after the latest one only */
    snprintf(json, sizeof json, "{\"effective_from\":\"%s\",\"price\":100}", t);
    EXPECT_ERR(add_version(f, id, json, &e), &e, ERR_CONFLICT, "effective_from", "effective_from_not_after_latest");
    snprintf(json, sizeof json, "{\"effective_from\":\"%s\",\"price\":14900}", later);
    EXPECT_OK(add_version(f, id, json, &e), &e);

    int64_t id2 = make_plan(f, "TODAY", "active", t);
    EXPECT_OK(catalog_version_at(f->d, id2, t, &f->a, &v, &e), &e);
    assert_int_equal(v.version, 1);
    snprintf(json, sizeof json, "{\"effective_from\":\"%s\",\"price\":1}", t);
    EXPECT_ERR(add_version(f, id2, json, &e), &e, ERR_CONFLICT, "effective_from", "effective_from_not_after_latest");
}

/* --------------------------------------------------------------- status */

static void test_status_transitions(void **state)
{
    fixture *f = *state;
    int64_t a = make_plan(f, "A1", "draft", "2026-01-01"), b = make_plan(f, "B1", "draft", "2026-01-01");
    err e;
    product p;
    EXPECT_ERR(catalog_set_status(f->d, a, "sold_out", &e), &e, ERR_INVALID, "status", "invalid_field");
    EXPECT_ERR(catalog_set_status(f->d, a, NULL, &e), &e, ERR_INVALID, "status", "invalid_field");
    EXPECT_OK(catalog_set_status(f->d, a, "draft", &e), &e);   /* no change */
    EXPECT_OK(catalog_set_status(f->d, a, "active", &e), &e);
    EXPECT_OK(catalog_set_status(f->d, a, "active", &e), &e);
    EXPECT_ERR(catalog_set_status(f->d, a, "draft", &e), &e, ERR_CONFLICT, "status", "invalid_transition");
    EXPECT_OK(catalog_set_status(f->d, a, "retired", &e), &e);
    EXPECT_ERR(catalog_set_status(f->d, a, "active", &e), &e, ERR_CONFLICT, "status", "invalid_transition");
    EXPECT_ERR(catalog_set_status(f->d, a, "draft", &e), &e, ERR_CONFLICT, "status", "invalid_transition");
    EXPECT_OK(catalog_product(f->d, "A1", &p, &e), &e);
    assert_string_equal(p.status, "retired");
    /* a draft may be discarded */
    EXPECT_OK(catalog_set_status(f->d, b, "retired", &e), &e);
    EXPECT_OK(catalog_product(f->d, "B1", &p, &e), &e);
    assert_string_equal(p.status, "retired");
    EXPECT_ERR(catalog_set_status(f->d, 9999, "active", &e), &e, ERR_NOTFOUND, "product", "not_found");
    /* a retired product keeps its versions for its subscribers */
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, a, "2026-05-01", &f->a, &v, &e), &e);
    assert_int_equal(v.price, 12900);
}

/* --------------------------------------------------------- availability */

static product_version version_with(fixture *f, const char *regions, const char *tags)
{
    product_version v;
    memset(&v, 0, sizeof v);
    snprintf(v.status, sizeof v.status, "active");
    v.regions = P(f, regions);
    v.tags = P(f, tags);
    return v;
}

static void test_available_regions(void **state)
{
    fixture *f = *state;
    const jv *addr = P(f, "{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\",\"street\":\"文三路\","
                          "\"community\":\"\",\"building\":\"3幢\",\"unit\":\"\",\"floor\":\"\",\"room\":\"101\"}");
    static const struct {
        const char *regions;
        int ok;
    } cases[] = {
        {"[]", 1},
        {"[\"浙江省\"]", 1},
        {"[\"浙江省/杭州市\"]", 1},
        {"[\"浙江省/杭州市/西湖区\"]", 1},
        {"[\"浙江省/杭州市/西湖区/文三路\"]", 1},
        {"[\"浙江省/杭州市/滨江区\"]", 0},
        {"[\"浙江省/杭州\"]", 0},           /* whole parts, not a string prefix */
        {"[\"浙江\"]", 0},
        {"[\"江苏省\"]", 0},
        {"[\"江苏省\",\"浙江省/杭州市\"]", 1},
        {"[\"浙江省/杭州市/西湖区/文三路/x\"]", 0},  /* the address has no community */
        {"[\"浙江省/杭州市/西湖区/文三路//3幢\"]", 0},
        {"[\"杭州市\"]", 0},                /* prefixes start at the province */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        product_version v = version_with(f, cases[i].regions, "[]");
        if (catalog_available(&v, addr, P(f, "[]")) != cases[i].ok) {
            print_error("regions %s: expected %d\n", cases[i].regions, cases[i].ok);
            fail();
        }
    }
    /* no address on file: only products sold everywhere */
    product_version v = version_with(f, "[\"浙江省\"]", "[]");
    assert_false(catalog_available(&v, NULL, NULL));
    assert_false(catalog_available(&v, P(f, "null"), NULL));
    v = version_with(f, "[]", "[]");
    assert_true(catalog_available(&v, NULL, NULL));
    assert_false(catalog_available(NULL, addr, NULL));
}

static void test_available_tags(void **state)
{
    fixture *f = *state;
    const jv *addr = P(f, "{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\"}");
    product_version v = version_with(f, "[]", "[\"new_user\"]");
    assert_false(catalog_available(&v, addr, P(f, "[]")));
    assert_false(catalog_available(&v, addr, NULL));
    assert_false(catalog_available(&v, addr, P(f, "[\"vip\"]")));
    assert_false(catalog_available(&v, addr, P(f, "[\"new_user_2\"]")));
    assert_true(catalog_available(&v, addr, P(f, "[\"vip\",\"new_user\"]")));
    /* any one of the product's tags */
    v = version_with(f, "[]", "[\"student\",\"senior\"]");
    assert_true(catalog_available(&v, addr, P(f, "[\"senior\"]")));
    /* region and tags must both hold */
    v = version_with(f, "[\"浙江省/宁波市\"]", "[\"vip\"]");
    assert_false(catalog_available(&v, addr, P(f, "[\"vip\"]")));
    v = version_with(f, "[\"浙江省/杭州市\"]", "[\"vip\"]");
    assert_true(catalog_available(&v, addr, P(f, "[\"vip\"]")));
    assert_false(catalog_available(&v, addr, P(f, "[]")));
}

/* Availability as stored: regions and tags read back from the database. */
static void test_available_from_db(void **state)
{
    fixture *f = *state;
    err e;
    int64_t id;
    EXPECT_OK(create(f, "{\"code\":\"XIHU-NEW\",\"kind\":\"plan\",\"name\":\"西湖新用户\",\"version\":{\"effective_from\":\"2026-01-01\","
                        "\"price\":9900,\"tax_category\":\"internet\",\"rule\":\"tariffs.monthly\",\"attrs\":{\"download_mbps\":100,"
                        "\"upload_mbps\":20,\"period\":\"month\",\"billing\":\"prepaid\"},\"regions\":[\"浙江省/杭州市/西湖区\"],"
                        "\"tags\":[\"new_user\"]}}",
                     &id, &e),
              &e);
    /* past terms are entered on a draft, which is then put on sale */
    EXPECT_OK(catalog_set_status(f->d, id, "active", &e), &e);
    product_version v;
    EXPECT_OK(catalog_version_at(f->d, id, "2026-02-01", &f->a, &v, &e), &e);
    const jv *xihu = P(f, "{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"西湖区\"}");
    const jv *binjiang = P(f, "{\"province\":\"浙江省\",\"city\":\"杭州市\",\"district\":\"滨江区\"}");
    assert_true(catalog_available(&v, xihu, P(f, "[\"new_user\"]")));
    assert_false(catalog_available(&v, binjiang, P(f, "[\"new_user\"]")));
    assert_false(catalog_available(&v, xihu, P(f, "[]")));
    /* a retired product keeps its subscribers but is sold to nobody */
    EXPECT_OK(catalog_set_status(f->d, id, "retired", &e), &e);
    EXPECT_OK(catalog_version_at(f->d, id, "2026-02-01", &f->a, &v, &e), &e);
    assert_false(catalog_available(&v, xihu, P(f, "[\"new_user\"]")));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_params_every_type_valid),
        T(test_params_every_error),
        T(test_params_malformed_schemas),
        T(test_params_starter_rules),
        T(test_starter_schemas_well_formed),
        T(test_create_plan_stores_defaults),
        T(test_create_default_date_is_today),
        T(test_create_errors_write_nothing),
        T(test_create_inside_callers_transaction),
        T(test_attrs_plan),
        T(test_attrs_addon_fee_deposit),
        T(test_attrs_promotion),
        T(test_versions_and_version_at),
        T(test_versions_past_only_for_drafts),
        T(test_status_transitions),
        T(test_available_regions),
        T(test_available_tags),
        T(test_available_from_db),
    };
    return cmocka_run_group_tests_name("catalog", tests, group_setup, group_teardown);
}
