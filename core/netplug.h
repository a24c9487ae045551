/* netplug.h - the interface between bandbill and a network plugin: the
 * piece that makes the network enforce each PPPoE account's state (the
 * shipped one keeps FreeRADIUS's SQL tables and talks RFC 5176 to the
 * NASes: plugins/radius).
 *
 * A network plugin is a shared object in the plugins folder that exports
 * one function:
 *
 *     const netplug_plugin *bandbill_netplug(const netplug_host *host);
 *
 * The core calls it once after dlopen, checks `abi`, opens the plugin with
 * its settings and from then on calls `apply` with the desired record of
 * every account whose state may have changed (or of every account, for a
 * resync). One handle is used by one thread at a time; a plugin keeps no
 * global state besides the host pointer. Unlike a payment channel, a
 * network plugin does its own I/O (its database, the NASes): that is its
 * job. It never reads or writes bandbill's database and never decides a
 * state: the core says what each line should be, the plugin makes the
 * network say so and reports what it found and did.
 *
 * This header is the whole contract (docs/PLUGINS.md explains it); it
 * includes nothing from the core, so a plugin builds against it alone. */
#ifndef BB_NETPLUG_H
#define BB_NETPLUG_H

#include <stddef.h>
#include <stdint.h>

#define NETPLUG_ABI 1

typedef struct netplug_kv {
    const char *key;
    const char *value;
} netplug_kv;

/* A NAS that holds sessions: config nas.NAME.address / .secret / .coa_port. */
typedef struct netplug_nas {
    const char *name;
    const char *address;        /* IPv4, dotted */
    const char *secret;         /* the RADIUS shared secret */
    int coa_port;               /* RFC 5176 port, 3799 by default */
} netplug_nas;

/* The plugin's settings (config section [radius] for the radius plugin,
 * without the section name) and the NASes. */
typedef struct netplug_settings {
    const netplug_kv *items;
    size_t n;
    const netplug_nas *nas;
    size_t nnas;
} netplug_settings;

typedef enum netplug_state {
    NETPLUG_ACTIVE = 1,         /* the password and the rate */
    NETPLUG_THROTTLED = 2,      /* the password and the (throttle) rate */
    NETPLUG_SUSPENDED = 3,      /* refused, or a walled garden */
    NETPLUG_CLOSED = 4,         /* nothing: every trace removed */
} netplug_state;

/* What one account should be on the network. */
typedef struct netplug_record {
    const char *username;
    const char *password;       /* in clear; NULL when closed */
    netplug_state state;
    int64_t down_kbps;          /* the rate to enforce, kbit/s, the customer's download and upload; */
    int64_t up_kbps;            /*   0 and 0: no rate limit (the NAS's own default applies) */
    const char *old_username;   /* the name the account had when last applied, if it changed since: removed */
} netplug_record;

/* What apply did with one record. */
enum { NETPLUG_NO_ACTION = 0, NETPLUG_COA = 1, NETPLUG_DISCONNECT = 2 };

typedef struct netplug_outcome {
    int changed;                /* its entries differed from the record (and were rewritten, unless a dry run) */
    int action;                 /* what live sessions were sent: NETPLUG_NO_ACTION, NETPLUG_COA or NETPLUG_DISCONNECT */
    int sessions;               /* live sessions found */
    int acked;                  /* sessions whose NAS acknowledged */
    int naked;                  /* sessions whose NAS refused (NAK) */
    int timed_out;              /* sessions whose NAS never answered (after every retry) */
    int failed;                 /* sessions that could not be asked (no NAS configured for them, a send error) */
    char error[256];            /* the first session problem, with its reason, or "" */
} netplug_outcome;

/* One difference between a record and what the network holds. Values
 * that are secrets (a password) are never put in have/want. */
typedef struct netplug_drift {
    const char *username;       /* "" for entries of no user (a group's) */
    char kind[16];              /* "missing", "extra", "wrong", "session" (a live session that should not be) */
    char where[80];             /* "radcheck", "radreply", "radusergroup", "radgroupreply:GROUP", "radacct" */
    char attribute[64];
    char have[192];
    char want[192];
} netplug_drift;

typedef struct netplug_error {
    char check[32];             /* "settings", "database", ... */
    char field[64];             /* the setting concerned, or "" */
    char message[256];
} netplug_error;

/* apply's flags. */
#define NETPLUG_DRY_RUN 1       /* compare and report drift only: write nothing, send nothing */
#define NETPLUG_RESYNC 2        /* also act on live sessions that contradict a record whose entries were right */

/* Services of the host, safe to call from any thread. */
typedef struct netplug_host {
    int abi;
    /* A line in bandbill's log: level 0 debug, 1 info, 2 warn, 3 error;
     * event a short machine name ("radius_nas_timeout"). */
    void (*log)(int level, const char *event, const char *message);
    /* Cryptographically strong random bytes; 0, or -1. */
    int (*random)(void *out, size_t n);
} netplug_host;

typedef struct netplug_plugin {
    int abi;                    /* NETPLUG_ABI */
    const char *name;           /* "radius": its config section */
    const char *title;
    /* The settings it takes, NULL-terminated. */
    const char *const *settings;
    /* Reads and checks the settings, opens what it keeps (creating its
     * tables when they are missing). 0, or -1 with err (check "settings",
     * field the setting). */
    int (*open)(const netplug_settings *s, void **handle, netplug_error *err);
    void (*close)(void *handle);
    /* Makes the network hold what the n records say. Entries are written
     * before any live session is touched (a user cut off cannot sign in
     * again on the old rights), in short transactions. Every difference
     * found is passed to drift() (may be NULL). Returns 0 once the entries
     * are written (session problems are reported in out[i], they do not
     * fail the call), or -1 with err when they could not be (nothing is
     * then half-written: the core retries the same records). out has n
     * elements. */
    int (*apply)(void *handle, const netplug_record *recs, size_t n, int flags, netplug_outcome *out,
                 void (*drift)(void *arg, const netplug_drift *d), void *arg, netplug_error *err);
    /* Calls fn with every user name its entries hold (to find names no
     * account has any more); fn returns 0 to go on. 0, or -1 with err. */
    int (*users)(void *handle, int (*fn)(void *arg, const char *username), void *arg, netplug_error *err);
} netplug_plugin;

typedef const netplug_plugin *(*netplug_entry_fn)(const netplug_host *host);
#define NETPLUG_ENTRY "bandbill_netplug"

#endif
