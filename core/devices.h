/* devices.h - customer premises equipment (ONU, set-top box, router), where
 * it is installed, and the refundable deposits taken for it.
 *
 * Serials and MAC addresses are stored normalised so that a technician
 * typing "zteg 1234 5678" finds the ONU labelled ZTEG12345678 and a MAC
 * read off a label in any of the usual notations finds the same device.
 *
 * An installation puts a device at a customer (and optionally on one of
 * the customer's PPPoE accounts) from a date on; removing it closes the
 * record with a reason, so a device's history is every place it has been.
 * A device is installed in at most one place at a time: the schema's
 * partial unique index enforces it, this module reports where it is.
 *
 * Device status: stock (new) -> installed -> returned (back in stock, may be
 * installed again) | lost | retired (written off when a service closes).
 *
 * A deposit is money held, not revenue: it is taken for one device and
 * one deposit product, and settled once (returned, kept or forfeited). At
 * most one deposit per device is held at a time. */
#ifndef BB_DEVICES_H
#define BB_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "json.h"

#define DEVICE_SERIAL_MIN 6
#define DEVICE_SERIAL_MAX 32
#define DEVICE_SERIAL_BUF (DEVICE_SERIAL_MAX + 1)
#define DEVICE_MAC_BUF 18
#define DEVICE_VENDOR_BUF 48
#define DEVICE_MODEL_MAX 64
#define DEVICE_ADDRESS_MAX 512
#define DEVICE_ENGINEER_MAX 64
#define DEVICE_NOTE_MAX 500

typedef struct device {
    int64_t id;
    char kind[8];                    /* onu, stb, router */
    char serial[DEVICE_SERIAL_BUF];
    char vendor[DEVICE_VENDOR_BUF];
    char mac[DEVICE_MAC_BUF];        /* "" when none */
    char model[DEVICE_MODEL_MAX + 1];
    char status[16];                 /* stock, installed, returned, lost, retired */
    char created_at[25];
} device;

typedef struct deposit {
    int64_t id;
    int64_t customer_id;
    int64_t device_id;
    char product[48];
    int64_t amount;                  /* fen */
    char status[16];                 /* held, returned, kept, forfeited */
    char taken_on[11];
    char settled_on[11];             /* "" while held */
    char settled_by[96];
    char note[DEVICE_NOTE_MAX * 2 + 2];
} deposit;

/* ---- normalisation ---- */
/* 1 for onu, stb, router. */
int devices_kind_valid(const char *kind);
/* The vendor a 4-letter GPON vendor code stands for (ZTEG -> "ZTE"), or
 * NULL when it is not one bandbill knows. */
const char *devices_vendor_of(const char *code4);
/* Normalises a serial of a device of `kind`: spaces and dashes dropped,
 * upper case. An ONU serial is a 4-letter vendor code and 8 hex digits
 * (ZTEG12345678), also accepted in its all-hex form (5A54454712345678 ->
 * ZTEG12345678); a set-top box or router serial is that or 6-32 letters and
 * digits. `vendor` (may be NULL) gets the vendor of a known prefix, else "".
 * ERR_INVALID (tag invalid_serial, field "serial") otherwise. */
int devices_normalize_serial(const char *kind, const char *in, char out[DEVICE_SERIAL_BUF],
                             char vendor[DEVICE_VENDOR_BUF], err *e);
/* Normalises a MAC address written aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF,
 * aabb.ccdd.eeff or aabbccddeeff to lower-case aa:bb:cc:dd:ee:ff. A
 * broadcast, multicast or all-zero address is no device's: ERR_INVALID
 * (tag invalid_mac, field "mac"). */
int devices_normalize_mac(const char *in, char out[DEVICE_MAC_BUF], err *e);

/* ---- devices ---- */
/* Registers a device in stock. serial and mac are normalised here; vendor
 * (may be NULL) is used when the serial's prefix names none, and must
 * agree with it when it does. A serial or MAC already registered is
 * ERR_CONFLICT (tags serial_taken, mac_taken). */
int devices_create(db *d, const char *kind, const char *serial, const char *mac, const char *model, const char *vendor,
                   int64_t *id, err *e);
/* ---- bulk onboarding (imports, benchmarks) ----
 * devices_create is devices_prepare (no database: any thread) then the
 * write; devices_insert_installed registers a new device already installed
 * at a customer, the state devices_create then devices_install leave. */
typedef struct device_prepared {
    char kind[8];
    char serial[DEVICE_SERIAL_BUF];
    char vendor[DEVICE_VENDOR_BUF];
    char mac[DEVICE_MAC_BUF];        /* "" when none */
    char model[DEVICE_MODEL_MAX + 1];
} device_prepared;

/* Normalises and checks what devices_create takes (same errors). */
int devices_prepare(const char *kind, const char *serial, const char *mac, const char *model, const char *vendor,
                    device_prepared *out, err *e);

/* By serial (normalised here, any kind's format; id 0) or by id (serial NULL). */
int devices_get(db *d, const char *serial, int64_t id, device *out, err *e);
/* {id, kind, serial, vendor, mac, model, status, created_at, installation}
 * with the current installation (or null); with `full` also history (every
 * installation, newest first) and deposit (the held one, or null). */
int devices_to_jv(db *d, const device *dv, int full, jv_arena *a, jv **out, err *e);

/* ---- installations ---- */
typedef struct install_req {
    int64_t customer_id;
    int64_t account_id;              /* 0: none */
    const char *installed_on;        /* YYYY-MM-DD */
    const char *engineer;
    const char *address;             /* NULL or "": the customer's service address */
} install_req;

/* The customer's service address as one line ("" when there is none). */
int devices_service_address(db *d, int64_t customer_id, char *out, size_t n, err *e);
/* Installs a device in stock or returned at a customer. Where it is already
 * installed is ERR_CONFLICT (tag device_installed) naming the customer and
 * since when; a lost or retired device is ERR_CONFLICT (device_unavailable);
 * an account of another customer or a closed one is ERR_INVALID or
 * ERR_CONFLICT naming "account"; no address given and no service address
 * is ERR_INVALID naming "address". */
int devices_install(db *d, int64_t device_id, const install_req *r, int64_t *installation_id, err *e);
/* Registers a prepared device and installs it as devices_install would
 * (the same checks of the customer, account, date, engineer and address),
 * in two writes instead of four; a serial or MAC already registered is
 * ERR_CONFLICT (serial_taken, mac_taken) as with devices_create. fresh: the
 * caller created the customer and the account in this transaction
 * (customers_insert, accounts_insert), so their state is known - open,
 * the account the customer's - and is not read back. */
int devices_insert_installed(db *d, const device_prepared *dv, const install_req *r, int fresh, int64_t *device_id,
                             int64_t *installation_id, err *e);
/* Takes an installed device out on `removed_on` for `reason`: returned
 * (device -> returned), lost (-> lost), closed (-> retired), swap
 * (-> returned). ERR_CONFLICT (not_installed) when it is not installed;
 * ERR_INVALID for a date before the installation. */
int devices_remove(db *d, int64_t device_id, const char *reason, const char *removed_on, err *e);
/* Replaces the installed device old_id by new_id on `on`: the old
 * installation is closed with reason swap, the new device is installed at
 * the same customer, account and address (by `engineer`), and a deposit
 * held for the old device moves to the new one (*moved_deposit gets its
 * id, or 0). Runs inside the caller's transaction. */
int devices_swap(db *d, int64_t old_id, int64_t new_id, const char *on, const char *engineer, int64_t *installation_id,
                 int64_t *moved_deposit, err *e);
/* An installation as an API object. */
int devices_installation_jv(db *d, int64_t installation_id, jv_arena *a, jv **out, err *e);

/* ---- deposits ---- */
/* Takes a deposit for a device (not lost or retired, not installed at
 * another customer, without a held deposit) and a product of kind
 * "deposit" that is active. amount < 0 means the product's price in force
 * on taken_on (catalog_version_at). */
int deposits_take(db *d, int64_t customer_id, int64_t device_id, const char *product_code, int64_t amount,
                  const char *taken_on, const char *note, int64_t *id, err *e);
/* For bulk onboarding: the deposit product `code` is a deposit, active,
 * and *price is its price in force on `on` (the checks of deposits_take
 * that hold for a whole load, made once). */
int deposits_product_check(db *d, const char *code, const char *on, int64_t *price, err *e);
/* For bulk onboarding: a deposit of `amount` fen for device_id (dv), which
 * the caller registered and installed at this customer in the same
 * transaction with devices_insert_installed (so it is neither lost, nor
 * elsewhere, nor under a deposit: the unique index refuses a second one),
 * for a product checked with deposits_product_check. */
int deposits_insert_new(db *d, int64_t customer_id, const device_prepared *dv, int64_t device_id, const char *product_code,
                        int64_t amount, const char *taken_on, const char *note, int64_t *id, err *e);
int deposits_get(db *d, int64_t id, deposit *out, err *e);
/* Settles a held deposit: status returned, kept or forfeited, on a date not
 * before it was taken, by `by`; a note is appended to the deposit's note.
 * When an issued invoice billed the deposit, the matching ledger entries
 * are posted in the same transaction (ledger_deposit_settled: returned
 * gives the amount back to the customer account, kept or forfeited take it
 * off the deposit account). ERR_CONFLICT (already_settled) when it is not
 * held. Nests inside the caller's transaction (or makes its own). */
int deposits_settle(db *d, int64_t id, const char *status, const char *settled_on, const char *by, const char *note,
                    err *e);
/* {id, customer, device, product, amount, status, taken_on, settled_on,
 * settled_by, note} */
int deposits_to_jv(db *d, const deposit *dp, jv_arena *a, jv **out, err *e);

#endif
