/* devices.c - devices, their installations, and deposits taken for them. */
#include "devices.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "catalog.h"
#include "customers.h"
#include "date.h"
#include "ledger.h"

/* ------------------------------------------------------- normalisation */

int devices_kind_valid(const char *kind)
{
    return kind && (!strcmp(kind, "onu") || !strcmp(kind, "stb") || !strcmp(kind, "router"));
}

/* GPON vendor ids (the first four characters of an ONU serial) that
 * installers meet; others are still valid serials, just with no vendor. */
static const struct {
    const char *code, *vendor;
} vendors[] = {
    {"ZTEG", "ZTE"},       {"HWTC", "Huawei"},   {"ALCL", "Nokia/Alcatel"}, {"FHTT", "FiberHome"},
    {"GPON", "generic"},   {"UBNT", "Ubiquiti"}, {"TPLG", "TP-Link"},       {"ZNTS", "Zhone"},
    {"CIOT", "CIG"},       {"YHTC", "Youhua"},   {"SCOM", "Sercomm"},       {"DLNK", "D-Link"},
};

const char *devices_vendor_of(const char *code4)
{
    if (!code4) return NULL;
    for (size_t i = 0; i < sizeof vendors / sizeof *vendors; i++)
        if (!strncmp(code4, vendors[i].code, 4)) return vendors[i].vendor;
    return NULL;
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* 4 upper-case letters and 8 hex digits */
static int gpon_form(const char *s, size_t n)
{
    if (n != 12) return 0;
    for (int i = 0; i < 4; i++)
        if (s[i] < 'A' || s[i] > 'Z') return 0;
    for (int i = 4; i < 12; i++)
        if (!is_hex(s[i])) return 0;
    return 1;
}

/* OLTs print an ONU serial as 16 hex digits, the vendor id in ASCII hex:
 * 5A544547 12345678 is ZTEG12345678. Rewrites s in place when it is one. */
static size_t from_hex_form(char *s, size_t n)
{
    if (n != 16) return n;
    for (size_t i = 0; i < 16; i++)
        if (!is_hex(s[i])) return n;
    char letters[4];
    for (int i = 0; i < 4; i++) {
        int c = hexval(s[2 * i]) * 16 + hexval(s[2 * i + 1]);
        if (c < 'A' || c > 'Z') return n;
        letters[i] = (char)c;
    }
    memcpy(s, letters, 4);
    memmove(s + 4, s + 8, 8);
    s[12] = '\0';
    return 12;
}

/* Upper case without spaces and dashes into out; 0 or the length is over. */
static int squeeze(const char *in, char *out, size_t cap, size_t *n)
{
    size_t k = 0;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '-') continue;
        if (k + 1 >= cap) return -1;
        out[k++] = (char)toupper((unsigned char)*p);
    }
    out[k] = '\0';
    *n = k;
    return 0;
}

int devices_normalize_serial(const char *kind, const char *in, char out[DEVICE_SERIAL_BUF],
                             char vendor[DEVICE_VENDOR_BUF], err *e)
{
    if (vendor) vendor[0] = '\0';
    if (!devices_kind_valid(kind))
        return err_field(e, ERR_INVALID, "invalid_kind", "kind", "a device kind is onu, stb or router");
    char s[DEVICE_SERIAL_MAX * 2 + 1];
    size_t n;
    if (!in || squeeze(in, s, sizeof s, &n) || n > DEVICE_SERIAL_MAX * 2 - 1)
        return err_field(e, ERR_INVALID, "invalid_serial", "serial", "a serial has at most %d characters", DEVICE_SERIAL_MAX);
    if (!n) return err_field(e, ERR_INVALID, "invalid_serial", "serial", "the serial is empty");
    int onu = !strcmp(kind, "onu");
    if (onu) n = from_hex_form(s, n);
    if (gpon_form(s, n)) {
        const char *v = devices_vendor_of(s);
        if (vendor && v) snprintf(vendor, DEVICE_VENDOR_BUF, "%s", v);
        memcpy(out, s, n + 1);
        return 0;
    }
    if (onu)
        return err_field(e, ERR_INVALID, "invalid_serial", "serial",
                         "'%s' is not an ONU serial: a 4-letter vendor code and 8 hex digits, like ZTEG12345678", in);
    if (n < DEVICE_SERIAL_MIN || n > DEVICE_SERIAL_MAX)
        return err_field(e, ERR_INVALID, "invalid_serial", "serial", "a serial has %d to %d letters and digits, not %zu",
                         DEVICE_SERIAL_MIN, DEVICE_SERIAL_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return err_field(e, ERR_INVALID, "invalid_serial", "serial",
                             "a serial is letters and digits only ('%s' is not)", in);
    memcpy(out, s, n + 1);
    return 0;
}

int devices_normalize_mac(const char *in, char out[DEVICE_MAC_BUF], err *e)
{
    if (!in) in = "";
    while (*in == ' ' || *in == '\t') in++;
    size_t n = strlen(in);
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t')) n--;
    char hex[13];
    size_t k = 0;
    int ok = 1;
    if (n == 17 && (in[2] == ':' || in[2] == '-')) {
        /* six pairs with one separator used throughout */
        for (size_t i = 0; i < 17 && ok; i++) {
            if (i % 3 == 2) ok = in[i] == in[2];
            else if ((ok = is_hex(in[i]))) hex[k++] = in[i];
        }
    } else if (n == 14 && in[4] == '.' && in[9] == '.') {
        /* Cisco's three groups of four */
        for (size_t i = 0; i < 14 && ok; i++) {
            if (i == 4 || i == 9) continue;
            if ((ok = is_hex(in[i]))) hex[k++] = in[i];
        }
    } else if (n == 12) {
        for (size_t i = 0; i < 12 && ok; i++)
            if ((ok = is_hex(in[i]))) hex[k++] = in[i];
    } else {
        ok = 0;
    }
    if (!ok || k != 12)
        return err_field(e, ERR_INVALID, "invalid_mac", "mac",
                         "'%.*s' is not a MAC address (aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or aabbccddeeff)",
                         (int)(n > 40 ? 40 : n), in);
    int zero = 1;
    for (int i = 0; i < 12; i++) zero &= hex[i] == '0';
    if (zero) return err_field(e, ERR_INVALID, "invalid_mac", "mac", "00:00:00:00:00:00 is no device's MAC address");
    /* the lowest bit of the first octet marks group addresses (broadcast
     * included): no device has one as its own */
    if (hexval(hex[1]) & 1)
        return err_field(e, ERR_INVALID, "invalid_mac", "mac", "'%.*s' is a multicast or broadcast address, not a device's",
                         (int)n, in);
    for (int i = 0, o = 0; i < 12; i += 2) {
        out[o++] = (char)tolower((unsigned char)hex[i]);
        out[o++] = (char)tolower((unsigned char)hex[i + 1]);
        out[o++] = i < 10 ? ':' : '\0';
    }
    return 0;
}

/* ------------------------------------------------------------- helpers */

static int check_date(const char *s, const char *field, err *e)
{
    int32_t days;
    err pe;
    if (!s || date_parse(s, strlen(s), &days, &pe))
        return err_field(e, ERR_INVALID, "invalid_date", field, "%s must be a date YYYY-MM-DD", field);
    return 0;
}

static int text_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ') return 1;
    return 0;
}

static int customer_status(db *d, int64_t customer_id, char out[16], err *e)
{
    db_stmt *s = db_prepare(d, "SELECT status FROM customers WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        snprintf(out, 16, "%s", db_col_text(s, 0));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "customer", "no customer with id %lld", (long long)customer_id);
    }
    db_done(s);
    return rc;
}

/* The open installation of a device: its id, customer, account, date and
 * address (*inst = 0 when there is none). */
typedef struct open_inst {
    int64_t id, customer_id, account_id;
    char installed_on[11];
    char address[DEVICE_ADDRESS_MAX + 1];
} open_inst;

static int current_installation(db *d, int64_t device_id, open_inst *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, service_account_id, installed_on, address FROM installations "
                            "WHERE device_id = ? AND removed_on IS NULL",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, device_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        out->customer_id = db_col_int(s, 1);
        out->account_id = db_col_is_null(s, 2) ? 0 : db_col_int(s, 2);
        snprintf(out->installed_on, sizeof out->installed_on, "%s", db_col_text(s, 3));
        snprintf(out->address, sizeof out->address, "%s", db_col_text(s, 4));
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

static int held_deposit(db *d, int64_t device_id, int64_t *id, err *e)
{
    int rc = db_get_int(d, e, id, "SELECT id FROM deposits WHERE device_id = ? AND status = 'held'", "i", device_id);
    if (rc == ERR_NOTFOUND) {
        *id = 0;
        return 0;
    }
    return rc;
}

static int installed_where(db *d, const device *dv, const open_inst *oi, err *e)
{
    char code[CUSTOMER_CODE_MAX] = "?";
    err ce;
    customers_code_by_id(d, oi->customer_id, code, &ce);
    return err_field(e, ERR_CONFLICT, "device_installed", "serial",
                     "device %s is installed at customer %s since %s (installation %lld): remove it or swap it first",
                     dv->serial, code, oi->installed_on, (long long)oi->id);
}

/* ------------------------------------------------------------- devices */

int devices_prepare(const char *kind, const char *serial_in, const char *mac_in, const char *model, const char *vendor_in,
                    device_prepared *out, err *e)
{
    memset(out, 0, sizeof *out);
    int rc = devices_normalize_serial(kind, serial_in, out->serial, out->vendor, e);
    if (rc) return rc;
    if (mac_in && mac_in[0] && (rc = devices_normalize_mac(mac_in, out->mac, e))) return rc;
    if (model && (strlen(model) > DEVICE_MODEL_MAX || (model[0] && !text_ok(model, DEVICE_MODEL_MAX))))
        return err_field(e, ERR_INVALID, "invalid_field", "model", "a model is at most %d characters of text", DEVICE_MODEL_MAX);
    if (vendor_in && vendor_in[0]) {
        if (!text_ok(vendor_in, DEVICE_VENDOR_BUF - 1))
            return err_field(e, ERR_INVALID, "invalid_field", "vendor", "a vendor is at most %d characters of text",
                             DEVICE_VENDOR_BUF - 1);
        /* the prefix is printed by the device itself: it wins over a typo */
        if (out->vendor[0] && strcmp(out->vendor, vendor_in))
            return err_field(e, ERR_INVALID, "vendor_mismatch", "vendor", "serial %s is a %s device, not %s", out->serial,
                             out->vendor, vendor_in);
        snprintf(out->vendor, sizeof out->vendor, "%s", vendor_in);
    }
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    snprintf(out->model, sizeof out->model, "%s", model ? model : "");
    return 0;
}

/* Why a serial or MAC cannot be registered: the device that has it. 0 when
 * neither is taken. */
static int registered_conflict(db *d, const device_prepared *dv, err *e)
{
    device other;
    err ge;
    if (devices_get(d, dv->serial, 0, &other, &ge) == 0)
        return err_field(e, ERR_CONFLICT, "serial_taken", "serial", "device %s is already registered (%s, %s)", dv->serial,
                         other.kind, other.status);
    if (!dv->mac[0]) return 0;
    db_stmt *s = db_prepare(d, "SELECT serial FROM devices WHERE mac = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, dv->mac);
    int rc = db_step(d, s, e);
    char holder[DEVICE_SERIAL_BUF] = "";
    if (rc == DB_ROW) snprintf(holder, sizeof holder, "%s", db_col_text(s, 0));
    db_done(s);
    if (rc < 0) return rc;
    if (holder[0]) return err_field(e, ERR_CONFLICT, "mac_taken", "mac", "MAC %s belongs to device %s", dv->mac, holder);
    return 0;
}

int devices_create(db *d, const char *kind, const char *serial_in, const char *mac_in, const char *model,
                   const char *vendor_in, int64_t *id, err *e)
{
    device_prepared dv;
    int rc = devices_prepare(kind, serial_in, mac_in, model, vendor_in, &dv, e);
    if (rc) return rc;
    if ((rc = registered_conflict(d, &dv, e))) return rc;
    char now[25];
    db_now(now);
    rc = db_run(d, e,
                "INSERT INTO devices (kind, serial, vendor, mac, model, status, created_at) VALUES (?, ?, ?, ?, ?, 'stock', ?)",
                "ssssss", dv.kind, dv.serial, dv.vendor, dv.mac[0] ? dv.mac : NULL, dv.model, now);
    if (rc == ERR_CONFLICT)
        return err_field(e, ERR_CONFLICT, "device_exists", "serial", "device %s or its MAC is already registered", dv.serial);
    if (!rc && id) *id = db_last_id(d);
    return rc;
}

static int read_device(db *d, db_stmt *s, device *out, err *e)
{
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        snprintf(out->kind, sizeof out->kind, "%s", db_col_text(s, 1));
        snprintf(out->serial, sizeof out->serial, "%s", db_col_text(s, 2));
        snprintf(out->vendor, sizeof out->vendor, "%s", db_col_text(s, 3));
        snprintf(out->mac, sizeof out->mac, "%s", db_col_text(s, 4));
        snprintf(out->model, sizeof out->model, "%s", db_col_text(s, 5));
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 6));
        snprintf(out->created_at, sizeof out->created_at, "%s", db_col_text(s, 7));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = ERR_NOTFOUND;
    }
    db_done(s);
    return rc;
}

static int device_by_serial(db *d, const char *serial, device *out, err *e)
{
    db_stmt *s = db_prepare(d, "SELECT id, kind, serial, vendor, mac, model, status, created_at FROM devices WHERE serial = ?", e);
    if (!s) return e->code;
    db_bind_text(s, 1, serial);
    return read_device(d, s, out, e);
}

int devices_get(db *d, const char *serial, int64_t id, device *out, err *e)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (serial) {
        /* as typed, then as an ONU serial in its all-hex form */
        char s[DEVICE_SERIAL_MAX * 2 + 1];
        size_t n;
        if (squeeze(serial, s, sizeof s, &n) || n > DEVICE_SERIAL_MAX * 2 - 1)
            return err_field(e, ERR_NOTFOUND, "not_found", "serial", "no device %.40s", serial);
        rc = device_by_serial(d, s, out, e);
        if (rc == ERR_NOTFOUND && from_hex_form(s, n) == 12) rc = device_by_serial(d, s, out, e);
        if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "serial", "no device %s", s);
        return rc;
    }
    db_stmt *s = db_prepare(d, "SELECT id, kind, serial, vendor, mac, model, status, created_at FROM devices WHERE id = ?", e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    rc = read_device(d, s, out, e);
    if (rc == ERR_NOTFOUND) return err_field(e, ERR_NOTFOUND, "not_found", "device", "no device with id %lld", (long long)id);
    return rc;
}

int devices_installation_jv(db *d, int64_t installation_id, jv_arena *a, jv **out, err *e)
{
    db_stmt *s = db_prepare(d,
                            "SELECT i.id, v.serial, v.kind, i.customer_id, i.service_account_id, i.installed_on, i.engineer, "
                            "i.address, i.removed_on, i.removal_reason, i.created_at "
                            "FROM installations i JOIN devices v ON v.id = i.device_id WHERE i.id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, installation_id);
    int rc = db_step(d, s, e);
    if (rc != DB_ROW) {
        db_done(s);
        return rc < 0 ? rc : err_set(e, ERR_NOTFOUND, "no installation %lld", (long long)installation_id);
    }
    jv *o = jv_obj_sized(a, 11);
    int64_t customer_id = db_col_int(s, 3), account_id = db_col_is_null(s, 4) ? 0 : db_col_int(s, 4);
    int bad = !o || jv_obj_set_int(a, o, "id", db_col_int(s, 0)) || jv_obj_set_str(a, o, "device", db_col_text(s, 1)) ||
              jv_obj_set_str(a, o, "kind", db_col_text(s, 2)) || jv_obj_set_str(a, o, "installed_on", db_col_text(s, 5)) ||
              jv_obj_set_str(a, o, "engineer", db_col_text(s, 6)) || jv_obj_set_str(a, o, "address", db_col_text(s, 7)) ||
              jv_obj_set(a, o, "removed_on", db_col_is_null(s, 8) ? jv_null(a) : jv_str(a, db_col_text(s, 8))) ||
              jv_obj_set(a, o, "removal_reason", db_col_is_null(s, 9) ? jv_null(a) : jv_str(a, db_col_text(s, 9))) ||
              jv_obj_set_str(a, o, "created_at", db_col_text(s, 10));
    db_done(s);
    if (bad) return ERR_NOMEM_RET(e);
    char code[CUSTOMER_CODE_MAX];
    if ((rc = customers_code_by_id(d, customer_id, code, e))) return rc;
    if (jv_obj_set_str(a, o, "customer", code)) return ERR_NOMEM_RET(e);
    jv *acc = NULL;
    if (account_id) {
        account ac;
        if ((rc = accounts_get(d, NULL, account_id, &ac, e))) return rc;
        acc = jv_str(a, ac.username);
    } else {
        acc = jv_null(a);
    }
    if (!acc || jv_obj_set(a, o, "account", acc)) return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}

/* History beyond this many installations is not shown inline. */
#define HISTORY_MAX 100

int devices_to_jv(db *d, const device *dv, int full, jv_arena *a, jv **out, err *e)
{
    jv *o = jv_obj_sized(a, 11);
    if (!o || jv_obj_set_int(a, o, "id", dv->id) || jv_obj_set_str(a, o, "kind", dv->kind) ||
        jv_obj_set_str(a, o, "serial", dv->serial) || jv_obj_set_str(a, o, "vendor", dv->vendor) ||
        jv_obj_set(a, o, "mac", dv->mac[0] ? jv_str(a, dv->mac) : jv_null(a)) ||
        jv_obj_set_str(a, o, "model", dv->model) || jv_obj_set_str(a, o, "status", dv->status) ||
        jv_obj_set_str(a, o, "created_at", dv->created_at))
        return ERR_NOMEM_RET(e);
    open_inst oi;
    int rc = current_installation(d, dv->id, &oi, e);
    if (rc) return rc;
    jv *cur = NULL;
    if (oi.id && (rc = devices_installation_jv(d, oi.id, a, &cur, e))) return rc;
    if (!oi.id && !(cur = jv_null(a))) return ERR_NOMEM_RET(e);
    if (jv_obj_set(a, o, "installation", cur)) return ERR_NOMEM_RET(e);
    if (full) {
        int64_t ids[HISTORY_MAX];
        int n = 0;
        db_stmt *s = db_prepare(d, "SELECT id FROM installations WHERE device_id = ? ORDER BY id DESC LIMIT 100", e);
        if (!s) return e->code;
        db_bind_int(s, 1, dv->id);
        while (n < HISTORY_MAX && (rc = db_step(d, s, e)) == DB_ROW) ids[n++] = db_col_int(s, 0);
        db_done(s);
        if (rc < 0) return rc;
        jv *hist = jv_arr_sized(a, (size_t)n);
        if (!hist) return ERR_NOMEM_RET(e);
        for (int i = 0; i < n; i++) {
            jv *h;
            if ((rc = devices_installation_jv(d, ids[i], a, &h, e))) return rc;
            if (jv_arr_push(a, hist, h)) return ERR_NOMEM_RET(e);
        }
        if (jv_obj_set(a, o, "history", hist)) return ERR_NOMEM_RET(e);
        int64_t dep_id;
        if ((rc = held_deposit(d, dv->id, &dep_id, e))) return rc;
        jv *dep = NULL;
        if (dep_id) {
            deposit dp;
            if ((rc = deposits_get(d, dep_id, &dp, e)) || (rc = deposits_to_jv(d, &dp, a, &dep, e))) return rc;
        } else if (!(dep = jv_null(a))) {
            return ERR_NOMEM_RET(e);
        }
        if (jv_obj_set(a, o, "deposit", dep)) return ERR_NOMEM_RET(e);
    }
    *out = o;
    return 0;
}

/* ------------------------------------------------------- installations */

int devices_service_address(db *d, int64_t customer_id, char *out, size_t n, err *e)
{
    out[0] = '\0';
    db_stmt *s = db_prepare(d,
                            "SELECT province, city, district, street, community, building, unit, floor, room "
                            "FROM addresses WHERE customer_id = ? AND kind = 'service'",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, customer_id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        size_t len = 0;
        for (int i = 0; i < 9; i++) {
            const char *part = db_col_text(s, i);
            if (!part[0]) continue;
            int w = snprintf(out + len, n - len, "%s%s", len ? " " : "", part);
            if (w < 0 || (size_t)w >= n - len) break;
            len += (size_t)w;
        }
    }
    db_done(s);
    return rc < 0 ? rc : 0;
}

/* The checks of an installation that are about where it goes (the
 * customer, the account, the date, the engineer) and the address it is
 * recorded at, in address. */
static int check_place(db *d, const install_req *r, int fresh, char address[DEVICE_ADDRESS_MAX + 1], err *e)
{
    char cst[16];
    int rc = fresh ? 0 : customer_status(d, r->customer_id, cst, e);
    if (rc) return rc;
    if (!fresh && !strcmp(cst, "closed"))
        return err_field(e, ERR_CONFLICT, "customer_closed", "customer", "the customer is closed: nothing is installed there");
    if (r->account_id && !fresh) {
        account acc;
        if ((rc = accounts_get(d, NULL, r->account_id, &acc, e))) return rc;
        if (acc.customer_id != r->customer_id)
            return err_field(e, ERR_INVALID, "account_mismatch", "account", "PPPoE account '%s' belongs to another customer",
                             acc.username);
        if (!strcmp(acc.status, "closed"))
            return err_field(e, ERR_CONFLICT, "account_closed", "account", "PPPoE account '%s' is closed", acc.username);
    }
    if ((rc = check_date(r->installed_on, "installed_on", e))) return rc;
    if (!text_ok(r->engineer, DEVICE_ENGINEER_MAX))
        return err_field(e, ERR_INVALID, "invalid_field", "engineer", "the engineer is a name of at most %d characters",
                         DEVICE_ENGINEER_MAX);
    if (r->address && r->address[0]) {
        if (!text_ok(r->address, DEVICE_ADDRESS_MAX))
            return err_field(e, ERR_INVALID, "invalid_field", "address", "an address is at most %d characters of text",
                             DEVICE_ADDRESS_MAX);
        snprintf(address, DEVICE_ADDRESS_MAX + 1, "%s", r->address);
        return 0;
    }
    if ((rc = devices_service_address(d, r->customer_id, address, DEVICE_ADDRESS_MAX + 1, e))) return rc;
    if (!address[0])
        return err_field(e, ERR_INVALID, "missing_field", "address", "the customer has no service address: give the install address");
    return 0;
}

static int insert_installation(db *d, int64_t device_id, const install_req *r, const char *address, err *e)
{
    char now[25];
    db_now(now);
    if (r->account_id)
        return db_run(d, e,
                      "INSERT INTO installations (device_id, customer_id, service_account_id, installed_on, engineer, address, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      "iiissss", device_id, r->customer_id, r->account_id, r->installed_on, r->engineer, address, now);
    return db_run(d, e,
                  "INSERT INTO installations (device_id, customer_id, service_account_id, installed_on, engineer, address, "
                  "created_at) VALUES (?, ?, NULL, ?, ?, ?, ?)",
                  "iissss", device_id, r->customer_id, r->installed_on, r->engineer, address, now);
}

int devices_install(db *d, int64_t device_id, const install_req *r, int64_t *installation_id, err *e)
{
    device dv;
    int rc = devices_get(d, NULL, device_id, &dv, e);
    if (rc) return rc;
    open_inst oi;
    if ((rc = current_installation(d, device_id, &oi, e))) return rc;
    if (oi.id) return installed_where(d, &dv, &oi, e);
    if (strcmp(dv.status, "stock") && strcmp(dv.status, "returned"))
        return err_field(e, ERR_CONFLICT, "device_unavailable", "serial", "device %s is %s and cannot be installed", dv.serial,
                         dv.status);
    char address[DEVICE_ADDRESS_MAX + 1];
    if ((rc = check_place(d, r, 0, address, e))) return rc;
    rc = insert_installation(d, device_id, r, address, e);
    if (rc == ERR_CONFLICT) {
        /* somebody else installed it in between: say where */
        err ce;
        if (current_installation(d, device_id, &oi, &ce) == 0 && oi.id) return installed_where(d, &dv, &oi, e);
        return err_field(e, ERR_CONFLICT, "device_installed", "serial", "device %s is installed elsewhere", dv.serial);
    }
    if (rc) return rc;
    if (installation_id) *installation_id = db_last_id(d);
    return db_run(d, e, "UPDATE devices SET status = 'installed' WHERE id = ?", "i", device_id);
}

int devices_insert_installed(db *d, const device_prepared *dv, const install_req *r, int fresh, int64_t *device_id,
                             int64_t *installation_id, err *e)
{
    char address[DEVICE_ADDRESS_MAX + 1];
    int rc = check_place(d, r, fresh, address, e);
    if (rc) return rc;
    char now[25];
    db_now(now);
    /* registered and installed in one: the state devices_create then
     * devices_install leave, without passing through stock */
    rc = db_run(d, e,
                "INSERT INTO devices (kind, serial, vendor, mac, model, status, created_at) VALUES (?, ?, ?, ?, ?, 'installed', ?)",
                "ssssss", dv->kind, dv->serial, dv->vendor, dv->mac[0] ? dv->mac : NULL, dv->model, now);
    if (rc == ERR_CONFLICT) {
        err ce;
        if (registered_conflict(d, dv, &ce)) {
            *e = ce;
            return e->code;
        }
        return err_field(e, ERR_CONFLICT, "device_exists", "serial", "device %s or its MAC is already registered", dv->serial);
    }
    if (rc) return rc;
    int64_t id = db_last_id(d);
    if ((rc = insert_installation(d, id, r, address, e))) return rc;
    if (installation_id) *installation_id = db_last_id(d);
    if (device_id) *device_id = id;
    return 0;
}

static const char *status_after_removal(const char *reason)
{
    if (!reason) return NULL;
    if (!strcmp(reason, "returned") || !strcmp(reason, "swap")) return "returned";
    if (!strcmp(reason, "lost")) return "lost";
    /* the service closed and the device stays where it is or is written
     * off: it does not come back to stock */
    if (!strcmp(reason, "closed")) return "retired";
    return NULL;
}

int devices_remove(db *d, int64_t device_id, const char *reason, const char *removed_on, err *e)
{
    const char *next = status_after_removal(reason);
    if (!next)
        return err_field(e, ERR_INVALID, "invalid_field", "reason", "the reason is returned, lost, closed or swap");
    device dv;
    int rc = devices_get(d, NULL, device_id, &dv, e);
    if (rc) return rc;
    open_inst oi;
    if ((rc = current_installation(d, device_id, &oi, e))) return rc;
    if (!oi.id)
        return err_field(e, ERR_CONFLICT, "not_installed", "serial", "device %s is not installed (it is %s)", dv.serial,
                         dv.status);
    if ((rc = check_date(removed_on, "removed_on", e))) return rc;
    /* dates as YYYY-MM-DD compare as text */
    if (strcmp(removed_on, oi.installed_on) < 0)
        return err_field(e, ERR_INVALID, "invalid_date", "removed_on", "device %s was installed on %s, after %s", dv.serial,
                         oi.installed_on, removed_on);
    rc = db_run(d, e, "UPDATE installations SET removed_on = ?, removal_reason = ? WHERE id = ?", "ssi", removed_on, reason,
                oi.id);
    if (!rc) rc = db_run(d, e, "UPDATE devices SET status = ? WHERE id = ?", "si", next, device_id);
    return rc;
}

int devices_swap(db *d, int64_t old_id, int64_t new_id, const char *on, const char *engineer, int64_t *installation_id,
                 int64_t *moved_deposit, err *e)
{
    if (moved_deposit) *moved_deposit = 0;
    if (old_id == new_id)
        return err_field(e, ERR_INVALID, "invalid_field", "new_serial", "a device cannot replace itself");
    device old, nw;
    int rc = devices_get(d, NULL, old_id, &old, e);
    if (!rc) rc = devices_get(d, NULL, new_id, &nw, e);
    if (rc) return rc;
    open_inst oi;
    if ((rc = current_installation(d, old_id, &oi, e))) return rc;
    if (!oi.id)
        return err_field(e, ERR_CONFLICT, "not_installed", "serial", "device %s is not installed (it is %s): nothing to swap",
                         old.serial, old.status);
    if (strcmp(old.kind, nw.kind))
        return err_field(e, ERR_INVALID, "kind_mismatch", "new_serial", "a %s (%s) cannot replace a %s (%s)", nw.kind,
                         nw.serial, old.kind, old.serial);
    if ((rc = devices_remove(d, old_id, "swap", on, e))) return rc;
    install_req r = {.customer_id = oi.customer_id, .account_id = oi.account_id, .installed_on = on, .engineer = engineer,
                     .address = oi.address};
    if ((rc = devices_install(d, new_id, &r, installation_id, e))) {
        /* the error is about the replacement, whatever it says */
        if (!strcmp(e->field, "serial")) snprintf(e->field, sizeof e->field, "new_serial");
        return rc;
    }
    /* the customer still holds a device of ours: the deposit follows it */
    int64_t dep_id, new_dep;
    if ((rc = held_deposit(d, old_id, &dep_id, e)) || (rc = held_deposit(d, new_id, &new_dep, e))) return rc;
    if (!dep_id) return 0;
    deposit dp;
    if ((rc = deposits_get(d, dep_id, &dp, e))) return rc;
    if (dp.customer_id != oi.customer_id) return 0;
    if (new_dep)
        return err_field(e, ERR_CONFLICT, "deposit_held", "new_serial",
                         "device %s already has a held deposit (%lld); the deposit %lld of %s cannot move to it", nw.serial,
                         (long long)new_dep, (long long)dep_id, old.serial);
    char note[sizeof dp.note];
    snprintf(note, sizeof note, "%s%smoved from %s to %s on %s (swap)", dp.note, dp.note[0] ? "\n" : "", old.serial,
             nw.serial, on);
    rc = db_run(d, e, "UPDATE deposits SET device_id = ?, note = ? WHERE id = ?", "isi", new_id, note, dep_id);
    if (!rc && moved_deposit) *moved_deposit = dep_id;
    return rc;
}

/* ------------------------------------------------------------ deposits */

static const char *const settle_states[] = {"returned", "kept", "forfeited"};

/* The deposit product: it exists, is a deposit and is active. */
static int deposit_product(db *d, const char *product_code, product *p, err *e)
{
    int rc = catalog_product(d, product_code ? product_code : "", p, e);
    if (rc) return rc;
    if (strcmp(p->kind, "deposit"))
        return err_field(e, ERR_INVALID, "not_a_deposit", "product", "product %s is a %s, not a deposit", p->code, p->kind);
    if (strcmp(p->status, "active"))
        return err_field(e, ERR_CONFLICT, "product_not_active", "product", "deposit product %s is %s, not active", p->code,
                         p->status);
    return 0;
}

/* The price of deposit product p in force on `on`. */
static int deposit_price(db *d, const product *p, const char *on, int64_t *amount, err *e)
{
    jv_arena a;
    jv_arena_init(&a, 0);
    product_version pv;
    int rc = catalog_version_at(d, p->id, on, &a, &pv, e);
    jv_arena_free(&a);
    if (rc == ERR_NOTFOUND)
        return err_field(e, ERR_CONFLICT, "no_price", "product", "deposit product %s has no price in force on %s: give the amount",
                         p->code, on);
    if (rc) return rc;
    *amount = pv.price;
    if (*amount < 0) return err_field(e, ERR_CONFLICT, "no_price", "product", "deposit product %s has a negative price", p->code);
    return 0;
}

int deposits_product_check(db *d, const char *product_code, const char *on, int64_t *price, err *e)
{
    product p;
    int rc = deposit_product(d, product_code, &p, e);
    if (!rc) rc = check_date(on, "taken_on", e);
    if (!rc) rc = deposit_price(d, &p, on, price, e);
    return rc;
}

static int insert_deposit(db *d, int64_t customer_id, int64_t device_id, const char *code, int64_t amount, const char *taken_on,
                          const char *note, const char *serial, int64_t *id, err *e)
{
    int rc = db_run(d, e,
                    "INSERT INTO deposits (customer_id, device_id, product, amount, status, taken_on, note) "
                    "VALUES (?, ?, ?, ?, 'held', ?, ?)",
                    "iisiss", customer_id, device_id, code, amount, taken_on, note && note[0] ? note : NULL);
    if (rc == ERR_CONFLICT)
        return err_field(e, ERR_CONFLICT, "deposit_held", "device", "device %s already has a held deposit", serial);
    if (!rc && id) *id = db_last_id(d);
    return rc;
}

int deposits_take(db *d, int64_t customer_id, int64_t device_id, const char *product_code, int64_t amount,
                  const char *taken_on, const char *note, int64_t *id, err *e)
{
    product p;
    int rc = deposit_product(d, product_code, &p, e);
    if (rc) return rc;
    if ((rc = check_date(taken_on, "taken_on", e))) return rc;
    if (note && note[0] && !text_ok(note, DEVICE_NOTE_MAX))
        return err_field(e, ERR_INVALID, "invalid_field", "note", "a note is at most %d characters of text", DEVICE_NOTE_MAX);
    char cst[16];
    if ((rc = customer_status(d, customer_id, cst, e))) return rc;
    if (!strcmp(cst, "closed"))
        return err_field(e, ERR_CONFLICT, "customer_closed", "customer", "the customer is closed: no deposit is taken");
    if (amount < 0 && (rc = deposit_price(d, &p, taken_on, &amount, e))) return rc;
    device dv;
    if ((rc = devices_get(d, NULL, device_id, &dv, e))) return rc;
    if (!strcmp(dv.status, "lost") || !strcmp(dv.status, "retired"))
        return err_field(e, ERR_CONFLICT, "device_unavailable", "device", "device %s is %s: no deposit is taken for it",
                         dv.serial, dv.status);
    open_inst oi;
    if ((rc = current_installation(d, device_id, &oi, e))) return rc;
    if (oi.id && oi.customer_id != customer_id) {
        char code[CUSTOMER_CODE_MAX] = "?";
        err ce;
        customers_code_by_id(d, oi.customer_id, code, &ce);
        return err_field(e, ERR_CONFLICT, "device_elsewhere", "device", "device %s is installed at another customer (%s)",
                         dv.serial, code);
    }
    int64_t held;
    if ((rc = held_deposit(d, device_id, &held, e))) return rc;
    if (held)
        return err_field(e, ERR_CONFLICT, "deposit_held", "device", "device %s already has a held deposit (%lld)", dv.serial,
                         (long long)held);
    return insert_deposit(d, customer_id, device_id, p.code, amount, taken_on, note, dv.serial, id, e);
}

int deposits_insert_new(db *d, int64_t customer_id, const device_prepared *dv, int64_t device_id, const char *product_code,
                        int64_t amount, const char *taken_on, const char *note, int64_t *id, err *e)
{
    int rc = check_date(taken_on, "taken_on", e);
    if (rc) return rc;
    if (note && note[0] && !text_ok(note, DEVICE_NOTE_MAX))
        return err_field(e, ERR_INVALID, "invalid_field", "note", "a note is at most %d characters of text", DEVICE_NOTE_MAX);
    if (amount < 0) return err_field(e, ERR_INVALID, "invalid_field", "amount", "a deposit is zero or more fen");
    return insert_deposit(d, customer_id, device_id, product_code, amount, taken_on, note, dv->serial, id, e);
}

int deposits_get(db *d, int64_t id, deposit *out, err *e)
{
    memset(out, 0, sizeof *out);
    db_stmt *s = db_prepare(d,
                            "SELECT id, customer_id, device_id, product, amount, status, taken_on, settled_on, settled_by, note "
                            "FROM deposits WHERE id = ?",
                            e);
    if (!s) return e->code;
    db_bind_int(s, 1, id);
    int rc = db_step(d, s, e);
    if (rc == DB_ROW) {
        out->id = db_col_int(s, 0);
        out->customer_id = db_col_int(s, 1);
        out->device_id = db_col_int(s, 2);
        snprintf(out->product, sizeof out->product, "%s", db_col_text(s, 3));
        out->amount = db_col_int(s, 4);
        snprintf(out->status, sizeof out->status, "%s", db_col_text(s, 5));
        snprintf(out->taken_on, sizeof out->taken_on, "%s", db_col_text(s, 6));
        snprintf(out->settled_on, sizeof out->settled_on, "%s", db_col_text(s, 7));
        snprintf(out->settled_by, sizeof out->settled_by, "%s", db_col_text(s, 8));
        snprintf(out->note, sizeof out->note, "%s", db_col_text(s, 9));
        rc = 0;
    } else if (rc == DB_DONE) {
        rc = err_field(e, ERR_NOTFOUND, "not_found", "id", "no deposit %lld", (long long)id);
    }
    db_done(s);
    return rc;
}

int deposits_settle(db *d, int64_t id, const char *status, const char *settled_on, const char *by, const char *note,
                    err *e)
{
    int known = 0;
    for (size_t i = 0; status && i < sizeof settle_states / sizeof *settle_states; i++) known |= !strcmp(status, settle_states[i]);
    if (!known) return err_field(e, ERR_INVALID, "invalid_field", "status", "a deposit is settled as returned, kept or forfeited");
    if (note && note[0] && !text_ok(note, DEVICE_NOTE_MAX))
        return err_field(e, ERR_INVALID, "invalid_field", "note", "a note is at most %d characters of text", DEVICE_NOTE_MAX);
    deposit dp;
    int rc = deposits_get(d, id, &dp, e);
    if (rc) return rc;
    if (strcmp(dp.status, "held"))
        return err_field(e, ERR_CONFLICT, "already_settled", "id", "deposit %lld was already settled: %s on %s by %s",
                         (long long)id, dp.status, dp.settled_on, dp.settled_by);
    if ((rc = check_date(settled_on, "settled_on", e))) return rc;
    if (strcmp(settled_on, dp.taken_on) < 0)
        return err_field(e, ERR_INVALID, "invalid_date", "settled_on", "deposit %lld was taken on %s, after %s", (long long)id,
                         dp.taken_on, settled_on);
    char text[sizeof dp.note];
    if (note && note[0]) snprintf(text, sizeof text, "%s%s%s", dp.note, dp.note[0] ? "\n" : "", note);
    else snprintf(text, sizeof text, "%s", dp.note);
    /* the settlement and its ledger entries stand or fall together: a
     * savepoint inside the caller's transaction, or one of its own */
    if ((rc = db_begin(d, e))) return rc;
    rc = db_run(d, e,
                "UPDATE deposits SET status = ?, settled_on = ?, settled_by = ?, note = ? WHERE id = ? AND status = 'held'",
                "ssssi", status, settled_on, by ? by : "", text[0] ? text : NULL, id);
    if (!rc && db_changes(d) != 1)
        rc = err_field(e, ERR_CONFLICT, "already_settled", "id", "deposit %lld was settled in the meantime", (long long)id);
    /* a deposit an invoice billed is on the ledger: its return goes back to
     * the customer's account, a kept or forfeited one leaves the deposit
     * account (ledger_deposit_settled posts nothing for an unbilled one) */
    if (!rc) rc = ledger_deposit_settled(d, id, status, settled_on, by, e);
    if (!rc) rc = db_commit(d, e);
    else db_rollback(d);
    return rc;
}

int deposits_to_jv(db *d, const deposit *dp, jv_arena *a, jv **out, err *e)
{
    char code[CUSTOMER_CODE_MAX];
    device dv;
    int rc = customers_code_by_id(d, dp->customer_id, code, e);
    if (!rc) rc = devices_get(d, NULL, dp->device_id, &dv, e);
    if (rc) return rc;
    jv *o = jv_obj_sized(a, 10);
    if (!o || jv_obj_set_int(a, o, "id", dp->id) || jv_obj_set_str(a, o, "customer", code) ||
        jv_obj_set_str(a, o, "device", dv.serial) || jv_obj_set_str(a, o, "product", dp->product) ||
        jv_obj_set_int(a, o, "amount", dp->amount) || jv_obj_set_str(a, o, "status", dp->status) ||
        jv_obj_set_str(a, o, "taken_on", dp->taken_on) ||
        jv_obj_set(a, o, "settled_on", dp->settled_on[0] ? jv_str(a, dp->settled_on) : jv_null(a)) ||
        jv_obj_set(a, o, "settled_by", dp->settled_by[0] ? jv_str(a, dp->settled_by) : jv_null(a)) ||
        jv_obj_set(a, o, "note", dp->note[0] ? jv_str(a, dp->note) : jv_null(a)))
        return ERR_NOMEM_RET(e);
    *out = o;
    return 0;
}
