/* cmd_customers.c - `bandbill customer add|show|find|edit`.
 *
 * The CLI acts as the local administrator: it shows what the admin role may
 * see (in clear, unless the admin's field policy says otherwise), and every
 * change and every view of personal data in clear is recorded in the audit
 * trail as the operating-system user, like changes over the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "customers.h"
#include "privacy.h"
#include "vault.h"

#define JSON_FILE_MAX (1u << 20)

static int open_both(cli *c, db **d, vault **v, err *e)
{
    int rc = cli_open_db(c, d, e);
    if (rc) return rc;
    rc = cli_open_vault(c, v, e);
    if (rc) db_close(*d);
    return rc;
}

static int finish(db *d, vault *v, int rc)
{
    if (rc && db_in_tx(d)) db_rollback(d);
    db_close(d);
    vault_close(v);
    return rc;
}

static int read_json_file(const char *path, jv_arena *a, jv **out, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, ERR_IO, "cannot open %s", path);
    buf b = {0};
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > JSON_FILE_MAX) rc = err_set(e, ERR_LIMIT, "%s is larger than %u bytes", path, JSON_FILE_MAX);
        else if (buf_append(&b, chunk, n)) rc = ERR_NOMEM_RET(e);
    }
    if (!rc && ferror(f)) rc = err_set(e, ERR_IO, "cannot read %s", path);
    fclose(f);
    if (!rc && json_parse(buf_cstr(&b), b.len, NULL, a, out, e)) rc = err_prefix(e, "%s", path);
    buf_free(&b);
    return rc;
}

/* Options that carry a customer field, and the field they set. */
static const char *const flag_fields[][2] = {
    {"type", "type"},   {"name", "name"},     {"company", "company_name"}, {"tax-id", "tax_id"}, {"id-card", "id_card"},
    {"phone", "phone"}, {"phone2", "phone2"}, {"email", "email"},          {"notes", "notes"},   {NULL, NULL},
};
static const char *const address_flags[] = {"province", "city", "district", "street", "community",
                                            "building", "unit", "floor", "room", NULL};

/* The customer (or the patch) the options describe, in the API's shape.
 * When editing, an empty value clears an optional field. *given counts the
 * fields set. */
static int from_flags(cli *c, jv_arena *a, int editing, jv **out, int *given, err *e)
{
    *given = 0;
    jv *o = jv_obj(a), *addr = jv_obj(a);
    if (!o || !addr) return ERR_NOMEM_RET(e);
    for (int i = 0; flag_fields[i][0]; i++) {
        const char *v = cli_opt_value(c, flag_fields[i][0]);
        if (!v) continue;
        if (jv_obj_set(a, o, flag_fields[i][1], editing && !v[0] ? jv_null(a) : jv_str(a, v))) return ERR_NOMEM_RET(e);
        (*given)++;
    }
    for (int i = 0; address_flags[i]; i++) {
        const char *v = cli_opt_value(c, address_flags[i]);
        if (!v) continue;
        if (jv_obj_set(a, addr, address_flags[i], editing && !v[0] ? jv_null(a) : jv_str(a, v))) return ERR_NOMEM_RET(e);
    }
    if (addr->u.obj.n) {
        if (jv_obj_set(a, o, "address", addr)) return ERR_NOMEM_RET(e);
        (*given)++;
    }
    const char *tags = cli_opt_value(c, "tags");
    if (tags) {
        jv *list = jv_arr(a);
        if (!list) return ERR_NOMEM_RET(e);
        for (const char *p = tags; *p;) {
            size_t n = strcspn(p, ",");
            size_t s = 0;
            while (s < n && p[s] == ' ') s++;
            size_t end = n;
            while (end > s && p[end - 1] == ' ') end--;
            if (end > s && jv_arr_push(a, list, jv_strn(a, p + s, end - s))) return ERR_NOMEM_RET(e);
            p += n;
            if (*p == ',') p++;
        }
        if (jv_obj_set(a, o, "tags", list)) return ERR_NOMEM_RET(e);
        (*given)++;
    }
    *out = o;
    return 0;
}

/* The input: --json-file, or the options (not both: which would win is
 * anybody's guess). */
static int customer_input(cli *c, jv_arena *a, int editing, jv **in, int *given, err *e)
{
    const char *file = cli_opt_value(c, "json-file");
    int rc = from_flags(c, a, editing, in, given, e);
    if (rc) return rc;
    if (file) {
        if (*given) return err_set(e, ERR_USAGE, "give the customer either as --json-file or as options, not both");
        if ((rc = read_json_file(file, a, in, e))) return rc;
        if ((*in)->kind != JV_OBJ) return err_set(e, ERR_INVALID, "%s must hold a JSON object", file);
        *given = (int)(*in)->u.obj.n;
    }
    return 0;
}

/* Applies the admin's field policy, records the view of what is in clear,
 * and returns the object to print. */
static int admin_view(cli *c, db *d, vault *v, jv_arena *a, jv *obj, const char *ids, err *e)
{
    buf clear = {0};
    int rc = privacy_filter(d, a, "admin", "customer", obj, &clear, e);
    if (!rc && clear.len) {
        jv *detail = jv_obj(a);
        if (!detail || jv_obj_set_str(a, detail, "fields", buf_cstr(&clear)) || jv_obj_set_str(a, detail, "ids", ids))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "field.view", .object_type = "customer", .object_id = ids, .detail = detail};
        if (!rc) rc = db_begin(d, e);
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        if (!rc) rc = db_commit(d, e);
    }
    buf_free(&clear);
    return rc;
}

static int print_json(const jv *o, err *e)
{
    jw w;
    if (jw_init(&w, 1)) return ERR_NOMEM_RET(e);
    jw_jv(&w, o);
    return cli_print_json(&w, e);
}

static void address_line(const jv *ad, buf *out)
{
    static const char *const parts[] = {"province", "city", "district", "street", "community", "building", "unit", "floor", "room", NULL};
    for (int i = 0; ad && ad->kind == JV_OBJ && parts[i]; i++) {
        const char *p = jv_get_str(ad, parts[i]);
        if (!p || !p[0]) continue;
        if (out->len) buf_putc(out, ' ');
        buf_puts(out, p);
    }
}

static void print_customer(const jv *o)
{
    static const char *const plain[][2] = {
        {"code", "code"},         {"type", "type"},       {"status", "status"},       {"name", "name"},
        {"company_name", "company"}, {"tax_id", "tax id"}, {"id_card", "ID card"},    {"phone", "phone"},
        {"phone2", "phone 2"},    {"email", "e-mail"},    {"notes", "notes"},         {"created_at", "created"},
        {"created_by", "created by"}, {"updated_at", "updated"}, {NULL, NULL},
    };
    for (int i = 0; plain[i][0]; i++) {
        const char *v = jv_get_str(o, plain[i][0]);
        if (!v) continue;
        printf("%-12s %s", plain[i][1], v);
        if (!strcmp(plain[i][0], "phone")) {
            const char *at = jv_get_str(o, "phone_verified_at");
            printf(at ? " (verified %s)" : " (not verified)", at);
        }
        putchar('\n');
    }
    static const char *const addrs[][2] = {{"address", "address"}, {"billing_address", "billing"}, {NULL, NULL}};
    for (int i = 0; addrs[i][0]; i++) {
        buf b = {0};
        address_line(jv_get(o, addrs[i][0]), &b);
        if (b.len) printf("%-12s %s\n", addrs[i][1], buf_cstr(&b));
        buf_free(&b);
    }
    const jv *tags = jv_get(o, "tags");
    if (tags && jv_len(tags)) {
        printf("%-12s", "tags");
        for (size_t i = 0; i < jv_len(tags); i++) printf(" %s", jv_at(tags, i)->u.str.s);
        putchar('\n');
    }
}

/* ------------------------------------------------------------------ add */

int cmd_customer_add(cli *c, err *e)
{
    if (cli_opt_value(c, "status")) return err_set(e, ERR_USAGE, "--status is for customer edit; a new customer is a prospect");
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *in, *after = NULL;
    int given = 0;
    int rc = customer_input(c, &a, 0, &in, &given, e);
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    db *d;
    vault *v;
    if ((rc = open_both(c, &d, &v, e))) {
        jv_arena_free(&a);
        return rc;
    }
    char by[96];
    cli_actor(by, sizeof by);
    int64_t id = 0;
    rc = db_begin(d, e);
    if (!rc) rc = customers_create(d, v, c->cfg.customer_prefix, in, by, &id, e);
    if (!rc) rc = customers_get(d, v, id, &a, &after, e);
    const char *code = after ? jv_get_str(after, "code") : NULL;
    audit_event ev = {.action = "customer.create", .object_type = "customer", .object_id = code, .after = after};
    if (!rc) rc = cli_audit(c, d, v, &ev, e);
    if (!rc) rc = db_commit(d, e);
    if (!rc && c->json) rc = admin_view(c, d, v, &a, after, code, e);
    rc = finish(d, v, rc);
    if (!rc) {
        if (c->json) rc = print_json(after, e);
        else printf("customer %s created\n", code);
    }
    jv_arena_free(&a);
    return rc;
}

/* ----------------------------------------------------------------- show */

int cmd_customer_show(cli *c, err *e)
{
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    int64_t id;
    jv *o = NULL;
    char code[CUSTOMER_CODE_MAX];
    rc = customers_id_by_code(d, c->argv[0], &id, e);
    if (!rc) rc = customers_code_by_id(d, id, code, e);
    if (!rc) rc = customers_get(d, v, id, &a, &o, e);
    if (!rc) rc = admin_view(c, d, v, &a, o, code, e);
    rc = finish(d, v, rc);
    if (!rc) {
        if (c->json) rc = print_json(o, e);
        else print_customer(o);
    }
    jv_arena_free(&a);
    return rc;
}

/* ----------------------------------------------------------------- find */

int cmd_customer_find(cli *c, err *e)
{
    customer_query cq;
    memset(&cq, 0, sizeof cq);
    cq.q = c->argc ? c->argv[0] : NULL;
    cq.phone = cli_opt_value(c, "phone");
    cq.name = cli_opt_value(c, "name");
    cq.pppoe = cli_opt_value(c, "pppoe");
    cq.serial = cli_opt_value(c, "serial");
    cq.community = cli_opt_value(c, "community");
    cq.building = cli_opt_value(c, "building");
    cq.status = cli_opt_value(c, "status");
    cq.tag = cli_opt_value(c, "tag");
    int64_t lim;
    int lrc = cli_opt_limit(c, 20, 500, &lim, e);
    if (lrc) return lrc;
    cq.limit = lim;
    db *d;
    vault *v;
    int rc = open_both(c, &d, &v, e);
    if (rc) return rc;
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *list = NULL;
    char next[CUSTOMERS_CURSOR_MAX];
    rc = customers_search(d, v, &cq, &a, &list, next, NULL, e);
    /* one view record for the page, naming the customers shown */
    buf ids = {0}, clear = {0};
    for (size_t i = 0; !rc && i < jv_len(list); i++) {
        jv *o = (jv *)jv_at(list, i);
        buf one = {0};
        rc = privacy_filter(d, &a, "admin", "customer", o, &one, e);
        if (!rc && one.len) {
            if (ids.len) buf_putc(&ids, ',');
            buf_puts(&ids, jv_get_str(o, "code"));
            if (!clear.len) buf_puts(&clear, buf_cstr(&one));
        }
        buf_free(&one);
    }
    if (!rc && ids.len) {
        jv *detail = jv_obj(&a);
        if (!detail || jv_obj_set_str(&a, detail, "fields", buf_cstr(&clear)) || jv_obj_set_str(&a, detail, "ids", buf_cstr(&ids)))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "field.view", .object_type = "customer", .object_id = ids.len < 200 ? buf_cstr(&ids) : NULL,
                          .detail = detail};
        if (!rc) rc = db_begin(d, e);
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
        if (!rc) rc = db_commit(d, e);
    }
    buf_free(&ids);
    buf_free(&clear);
    rc = finish(d, v, rc);
    if (!rc && c->json) {
        jw w;
        jw_init(&w, 1);
        jw_jv(&w, list);
        rc = cli_print_json(&w, e);
    } else if (!rc) {
        printf("%-12s %-10s %-16s %-14s %s\n", "CODE", "STATUS", "NAME", "PHONE", "ADDRESS");
        for (size_t i = 0; i < jv_len(list); i++) {
            const jv *o = jv_at(list, i);
            buf addr = {0};
            address_line(jv_get(o, "address"), &addr);
            const char *ph = jv_get_str(o, "phone");
            char name[96];
            printf("%-12s %-10s %s %-14s %s\n", jv_get_str(o, "code"), jv_get_str(o, "status"),
                   cli_fit(jv_get_str(o, "name") ? jv_get_str(o, "name") : "", 16, name, sizeof name), ph ? ph : "-", buf_cstr(&addr));
            buf_free(&addr);
        }
        if (next[0]) printf("(more than %lld: narrow the search or raise --limit)\n", (long long)cq.limit);
    }
    jv_arena_free(&a);
    return rc;
}

/* ----------------------------------------------------------------- edit */

int cmd_customer_edit(cli *c, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    jv *patch = NULL;
    int given = 0;
    const char *status = cli_opt_value(c, "status");
    int rc = customer_input(c, &a, 1, &patch, &given, e);
    if (!rc && !given && !status)
        rc = err_set(e, ERR_USAGE, "nothing to change: give the fields to change as options or --json-file");
    if (rc) {
        jv_arena_free(&a);
        return rc;
    }
    db *d;
    vault *v;
    if ((rc = open_both(c, &d, &v, e))) {
        jv_arena_free(&a);
        return rc;
    }
    int64_t id;
    char code[CUSTOMER_CODE_MAX];
    jv *before = NULL, *after = NULL;
    rc = customers_id_by_code(d, c->argv[0], &id, e);
    if (!rc) rc = customers_code_by_id(d, id, code, e);
    if (!rc) rc = db_begin(d, e);
    if (!rc) rc = customers_get(d, v, id, &a, &before, e);
    if (!rc && given) {
        rc = customers_update(d, v, id, patch, NULL, NULL, e);
        jv *mid = NULL;
        if (!rc) rc = customers_get(d, v, id, &a, &mid, e);
        audit_event ev = {.action = "customer.update", .object_type = "customer", .object_id = code, .before = before, .after = mid};
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
    }
    if (!rc && status) {
        const char *from = jv_get_str(before, "status");
        rc = customers_set_status(d, id, status, e);
        jv *b = jv_obj(&a), *af = jv_obj(&a);
        if (!rc && (!b || !af || jv_obj_set_str(&a, b, "status", from) || jv_obj_set_str(&a, af, "status", status)))
            rc = ERR_NOMEM_RET(e);
        audit_event ev = {.action = "customer.status", .object_type = "customer", .object_id = code, .before = b, .after = af};
        if (!rc) rc = cli_audit(c, d, v, &ev, e);
    }
    if (!rc) rc = customers_get(d, v, id, &a, &after, e);
    if (!rc) rc = db_commit(d, e);
    if (!rc && c->json) rc = admin_view(c, d, v, &a, after, code, e);
    rc = finish(d, v, rc);
    if (!rc) {
        if (c->json) rc = print_json(after, e);
        else printf("customer %s updated\n", code);
    }
    jv_arena_free(&a);
    return rc;
}
