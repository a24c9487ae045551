/* radius.c - the network plugin for FreeRADIUS: keeps the rows of
 * FreeRADIUS's SQL schema (radcheck, radreply, radusergroup, radgroupreply)
 * in the SQLite file FreeRADIUS reads, and tells the NASes about live
 * sessions with RFC 5176 CoA-Request and Disconnect-Request.
 *
 *   active, throttled  radcheck  Cleartext-Password := <password>
 *                      radreply  the rate (radius.rate_format)
 *   suspended          radcheck  Auth-Type := Reject                (radius.suspended = reject)
 *                      or the password and radusergroup <walled_garden_group>, whose
 *                      radgroupreply is radius.walled_garden_reply (walled_garden)
 *   closed             nothing
 *
 * Rows are written before any session is touched, so that a user cut off
 * cannot sign in again on the old rights. Sessions are found in radacct
 * (acctstoptime IS NULL): a rate change of a live session is a CoA-Request
 * with the new rate; a suspension, a closing, a move into or out of the
 * walled garden is a Disconnect-Request (the user's next sign-in gets the
 * new rights). A NAS that does not answer within the timeout is asked
 * again, up to radius.coa_retries times; what it never took is reported.
 * See docs/PLUGINS.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "netplug.h"
#include "radpkt.h"

static const netplug_host *H;

#define VENDOR_MIKROTIK 14988
#define VENDOR_HUAWEI 2011
#define VENDOR_H3C 25506
#define MAX_GROUP_REPLY 16
#define MAX_ROWS 32
#define WAVE 256
#define BUSY_TIMEOUT_MS 2000

enum { FMT_MIKROTIK, FMT_HUAWEI, FMT_H3C };
enum { SUSPEND_REJECT, SUSPEND_WALLED };

typedef struct row {
    char attr[64];              /* radusergroup: the group name */
    char op[3];
    char value[254];            /* radusergroup: the priority */
} row;

typedef struct rows {
    row check[MAX_ROWS], reply[MAX_ROWS], group[MAX_ROWS];
    int ncheck, nreply, ngroup;
    int overflow;
} rows;

typedef struct nas {
    char name[32];
    char address[16];
    struct sockaddr_in to;
    char secret[129];
} nas;

typedef struct handle {
    sqlite3 *db;
    char path[1024];
    int rate_format;
    int suspended;
    char group[65];
    row greply[MAX_GROUP_REPLY];
    int ngreply;
    int timeout_ms;
    int retries;
    int group_compared;         /* a dry run reports the group's drift once */
    nas *nases;
    size_t nnas;
} handle;

/* ------------------------------------------------------------ helpers */

__attribute__((format(printf, 4, 5))) static void say(netplug_error *e, const char *check, const char *field,
                                                      const char *fmt, ...)
{
    if (!e) return;
    snprintf(e->check, sizeof e->check, "%s", check);
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

static void logf_(int level, const char *event, const char *msg)
{
    if (H && H->log) H->log(level, event, msg);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *setting(const netplug_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].key, key)) return s->items[i].value;
    return NULL;
}

static int int_setting(const netplug_settings *s, const char *key, int dflt, int lo, int hi, int *out, netplug_error *e)
{
    const char *v = setting(s, key);
    if (!v || !v[0]) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        char range[64];
        snprintf(range, sizeof range, "%d to %d", lo, hi);
        say(e, "settings", key, "must be a whole number from %s, not '%s'", range, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int attr_name_ok(const char *s, size_t n)
{
    if (!n || n >= 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* "Attr := value, Attr = value": the walled garden's reply attributes. */
static int parse_reply(handle *h, const char *text, netplug_error *e)
{
    h->ngreply = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[320];
        if (n >= sizeof item) {
            say(e, "settings", "walled_garden_reply", "an attribute is too long: %.40s...", p);
            return -1;
        }
        memcpy(item, p, n);
        item[n] = 0;
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t')) item[--n] = 0;
        if (n) {
            size_t an = strcspn(item, " \t:+=");
            char *q = item + an;
            while (*q == ' ' || *q == '\t') q++;
            const char *op = !strncmp(q, ":=", 2) ? ":=" : !strncmp(q, "+=", 2) ? "+=" : *q == '=' ? "=" : NULL;
            if (!attr_name_ok(item, an) || !op) {
                say(e, "settings", "walled_garden_reply",
                    "expected 'Attribute := value' items separated by commas, got '%s'", item);
                return -1;
            }
            q += strlen(op);
            while (*q == ' ' || *q == '\t') q++;
            if (!*q || strlen(q) > 253) {
                say(e, "settings", "walled_garden_reply", "the value of '%s' must be 1 to 253 characters", item);
                return -1;
            }
            if (h->ngreply == MAX_GROUP_REPLY) {
                say(e, "settings", "walled_garden_reply", "at most 16 attributes");
                return -1;
            }
            row *r = &h->greply[h->ngreply++];
            snprintf(r->attr, sizeof r->attr, "%.*s", (int)an, item);
            snprintf(r->op, sizeof r->op, "%s", op);
            snprintf(r->value, sizeof r->value, "%s", q);
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* FreeRADIUS's own schema (mods-config/sql/main/sqlite/schema.sql of 3.2),
 * with IF NOT EXISTS on the indexes too, so that opening a file that has
 * it already changes nothing. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS radacct (radacctid INTEGER PRIMARY KEY AUTOINCREMENT, acctsessionid varchar(64) NOT NULL default '', "
    "acctuniqueid varchar(32) NOT NULL default '', username varchar(64) NOT NULL default '', realm varchar(64) default '', "
    "nasipaddress varchar(15) NOT NULL default '', nasportid varchar(32) default NULL, nasporttype varchar(32) default NULL, "
    "acctstarttime datetime NULL default NULL, acctupdatetime datetime NULL default NULL, acctstoptime datetime NULL default NULL, "
    "acctinterval int(12) default NULL, acctsessiontime int(12) default NULL, acctauthentic varchar(32) default NULL, "
    "connectinfo_start varchar(128) default NULL, connectinfo_stop varchar(128) default NULL, acctinputoctets bigint(20) default NULL, "
    "acctoutputoctets bigint(20) default NULL, calledstationid varchar(50) NOT NULL default '', "
    "callingstationid varchar(50) NOT NULL default '', acctterminatecause varchar(32) NOT NULL default '', "
    "servicetype varchar(32) default NULL, framedprotocol varchar(32) default NULL, framedipaddress varchar(15) NOT NULL default '', "
    "framedipv6address varchar(45) NOT NULL default '', framedipv6prefix varchar(45) NOT NULL default '', "
    "framedinterfaceid varchar(44) NOT NULL default '', delegatedipv6prefix varchar(45) NOT NULL default '', class varchar(64) default NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS acctuniqueid ON radacct(acctuniqueid);"
    "CREATE INDEX IF NOT EXISTS username ON radacct(username);"
    "CREATE INDEX IF NOT EXISTS framedipaddress ON radacct (framedipaddress);"
    "CREATE INDEX IF NOT EXISTS framedipv6address ON radacct (framedipv6address);"
    "CREATE INDEX IF NOT EXISTS framedipv6prefix ON radacct (framedipv6prefix);"
    "CREATE INDEX IF NOT EXISTS framedinterfaceid ON radacct (framedinterfaceid);"
    "CREATE INDEX IF NOT EXISTS delegatedipv6prefix ON radacct (delegatedipv6prefix);"
    "CREATE INDEX IF NOT EXISTS acctsessionid ON radacct(acctsessionid);"
    "CREATE INDEX IF NOT EXISTS acctsessiontime ON radacct(acctsessiontime);"
    "CREATE INDEX IF NOT EXISTS acctstarttime ON radacct(acctstarttime);"
    "CREATE INDEX IF NOT EXISTS acctinterval ON radacct(acctinterval);"
    "CREATE INDEX IF NOT EXISTS acctstoptime ON radacct(acctstoptime);"
    "CREATE INDEX IF NOT EXISTS nasipaddress ON radacct(nasipaddress);"
    "CREATE INDEX IF NOT EXISTS class ON radacct(class);"
    "CREATE TABLE IF NOT EXISTS radcheck (id INTEGER PRIMARY KEY AUTOINCREMENT, username varchar(64) NOT NULL default '', "
    "attribute varchar(64)  NOT NULL default '', op char(2) NOT NULL DEFAULT '==', value varchar(253) NOT NULL default '');"
    "CREATE INDEX IF NOT EXISTS check_username ON radcheck(username);"
    "CREATE TABLE IF NOT EXISTS radgroupcheck (id INTEGER PRIMARY KEY AUTOINCREMENT, groupname varchar(64) NOT NULL default '', "
    "attribute varchar(64)  NOT NULL default '', op char(2) NOT NULL DEFAULT '==', value varchar(253)  NOT NULL default '');"
    "CREATE INDEX IF NOT EXISTS check_groupname ON radgroupcheck(groupname);"
    "CREATE TABLE IF NOT EXISTS radgroupreply (id INTEGER PRIMARY KEY AUTOINCREMENT, groupname varchar(64) NOT NULL default '', "
    "attribute varchar(64)  NOT NULL default '', op char(2) NOT NULL DEFAULT '=', value varchar(253)  NOT NULL default '');"
    "CREATE INDEX IF NOT EXISTS reply_groupname ON radgroupreply(groupname);"
    "CREATE TABLE IF NOT EXISTS radreply (id INTEGER PRIMARY KEY AUTOINCREMENT, username varchar(64) NOT NULL default '', "
    "attribute varchar(64) NOT NULL default '', op char(2) NOT NULL DEFAULT '=', value varchar(253) NOT NULL default '');"
    "CREATE INDEX IF NOT EXISTS reply_username ON radreply(username);"
    "CREATE TABLE IF NOT EXISTS radusergroup (id INTEGER PRIMARY KEY AUTOINCREMENT, username varchar(64) NOT NULL default '', "
    "groupname varchar(64) NOT NULL default '', priority int(11) NOT NULL default '1');"
    "CREATE INDEX IF NOT EXISTS usergroup_username ON radusergroup(username);"
    "CREATE TABLE IF NOT EXISTS radpostauth (id INTEGER PRIMARY KEY AUTOINCREMENT, username varchar(64) NOT NULL default '', "
    "pass varchar(64) NOT NULL default '', reply varchar(32) NOT NULL default '', authdate timestamp NOT NULL, "
    "class varchar(64) default NULL);"
    "CREATE INDEX IF NOT EXISTS radpostauth_username ON radpostauth(username);"
    "CREATE INDEX IF NOT EXISTS radpostauth_class ON radpostauth(class);"
    "CREATE TABLE IF NOT EXISTS nas (id INTEGER PRIMARY KEY AUTOINCREMENT, nasname varchar(128) NOT NULL, shortname varchar(32), "
    "type varchar(30) DEFAULT 'other', ports int(5), secret varchar(60) DEFAULT 'secret' NOT NULL, server varchar(64), "
    "community varchar(50), description varchar(200) DEFAULT 'RADIUS Client');"
    "CREATE INDEX IF NOT EXISTS nasname ON nas(nasname);"
    "CREATE TABLE IF NOT EXISTS nasreload (nasipaddress varchar(15) PRIMARY KEY, reloadtime datetime NOT NULL);";

/* ------------------------------------------------------------ open/close */

static void close_(void *hv)
{
    handle *h = hv;
    if (!h) return;
    if (h->db) sqlite3_close(h->db);
    if (h->nases) {
        for (size_t i = 0; i < h->nnas; i++) OPENSSL_cleanse(h->nases[i].secret, sizeof h->nases[i].secret);
        free(h->nases);
    }
    free(h);
}

static int open_(const netplug_settings *s, void **out, netplug_error *e)
{
    *out = NULL;
    handle *h = calloc(1, sizeof *h);
    if (!h) {
        say(e, "settings", "", "out of memory");
        return -1;
    }
    const char *db = setting(s, "db"), *fmt = setting(s, "rate_format"), *susp = setting(s, "suspended"),
               *group = setting(s, "walled_garden_group"), *reply = setting(s, "walled_garden_reply");
    int rc = 0;
    if (!db || !db[0] || strlen(db) >= sizeof h->path) {
        say(e, "settings", "db", "the FreeRADIUS database file is required (radius.db)");
        rc = -1;
    } else {
        snprintf(h->path, sizeof h->path, "%s", db);
    }
    if (!rc) {
        if (!fmt || !fmt[0] || !strcmp(fmt, "mikrotik")) h->rate_format = FMT_MIKROTIK;
        else if (!strcmp(fmt, "huawei")) h->rate_format = FMT_HUAWEI;
        else if (!strcmp(fmt, "h3c")) h->rate_format = FMT_H3C;
        else say(e, "settings", "rate_format", "is mikrotik, huawei or h3c, not '%s'", fmt), rc = -1;
    }
    if (!rc) {
        if (!susp || !susp[0] || !strcmp(susp, "reject")) h->suspended = SUSPEND_REJECT;
        else if (!strcmp(susp, "walled_garden")) h->suspended = SUSPEND_WALLED;
        else say(e, "settings", "suspended", "is reject or walled_garden, not '%s'", susp), rc = -1;
    }
    if (!rc) {
        const char *g = group && group[0] ? group : "walled-garden";
        size_t gl = strlen(g);
        if (gl > 64 || strspn(g, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != gl)
            say(e, "settings", "walled_garden_group", "is 1-64 of A-Z a-z 0-9 . _ -, not '%s'", g), rc = -1;
        else snprintf(h->group, sizeof h->group, "%s", g);
    }
    if (!rc) rc = parse_reply(h, reply ? reply : "Mikrotik-Address-List := walled-garden", e);
    if (!rc) rc = int_setting(s, "coa_timeout_ms", 1000, 50, 30000, &h->timeout_ms, e);
    if (!rc) rc = int_setting(s, "coa_retries", 2, 0, 10, &h->retries, e);
    /* the NASes */
    if (!rc && s->nnas && !(h->nases = calloc(s->nnas, sizeof *h->nases))) {
        say(e, "settings", "nas", "out of memory");
        rc = -1;
    }
    for (size_t i = 0; !rc && i < s->nnas; i++) {
        const netplug_nas *n = &s->nas[i];
        nas *x = &h->nases[h->nnas];
        char field[64];
        snprintf(field, sizeof field, "nas.%s", n->name ? n->name : "");
        snprintf(x->name, sizeof x->name, "%s", n->name ? n->name : "");
        memset(&x->to, 0, sizeof x->to);
        x->to.sin_family = AF_INET;
        x->to.sin_port = htons((uint16_t)n->coa_port);
        if (!n->address || inet_pton(AF_INET, n->address, &x->to.sin_addr) != 1) {
            say(e, "settings", field, "%s.address must be an IPv4 address, not '%s'", field, n->address ? n->address : "");
            rc = -1;
        } else if (!n->secret || !n->secret[0] || strlen(n->secret) >= sizeof x->secret) {
            say(e, "settings", field, "%s.secret is required (1-128 characters)", field);
            rc = -1;
        } else if (n->coa_port < 1 || n->coa_port > 65535) {
            say(e, "settings", field, "%s.coa_port is 1-65535", field);
            rc = -1;
        } else {
            inet_ntop(AF_INET, &x->to.sin_addr, x->address, sizeof x->address);
            snprintf(x->secret, sizeof x->secret, "%s", n->secret);
            h->nnas++;
        }
    }
    if (!rc) {
        if (sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
            say(e, "database", "db", "cannot open %s: %s", h->path, h->db ? sqlite3_errmsg(h->db) : "out of memory");
            rc = -1;
        }
    }
    if (!rc) {
        /* FreeRADIUS reads while we write: its readers wait at most its
         * own busy_timeout (200 ms by default), so every write here is a
         * short transaction, and WAL lets readers go on during it */
        sqlite3_busy_timeout(h->db, BUSY_TIMEOUT_MS);
        char *msg = NULL;
        if (sqlite3_exec(h->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(h->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
            say(e, "database", "db", "cannot set up FreeRADIUS's tables in %s: %s", h->path, msg ? msg : sqlite3_errmsg(h->db));
            rc = -1;
        }
        sqlite3_free(msg);
    }
    if (rc) {
        close_(h);
        return -1;
    }
    *out = h;
    return 0;
}

/* ------------------------------------------------------------- rows */

static int exec1(handle *h, const char *sql, netplug_error *e)
{
    if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) == SQLITE_OK) return 0;
    say(e, "database", "db", "%s: %s", sql, sqlite3_errmsg(h->db));
    return -1;
}

static int prep(handle *h, const char *sql, sqlite3_stmt **st, netplug_error *e)
{
    if (sqlite3_prepare_v2(h->db, sql, -1, st, NULL) == SQLITE_OK) return 0;
    say(e, "database", "db", "%s: %s", sql, sqlite3_errmsg(h->db));
    return -1;
}

/* Reads rows of one table for one name into out (at most MAX_ROWS). */
static int read_rows(handle *h, const char *sql, const char *name, int group_table, row *out, int *n, int *overflow,
                     netplug_error *e)
{
    sqlite3_stmt *st;
    *n = 0;
    if (prep(h, sql, &st, e)) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == MAX_ROWS) {
            *overflow = 1;
            continue;
        }
        row *r = &out[(*n)++];
        snprintf(r->attr, sizeof r->attr, "%s", (const char *)sqlite3_column_text(st, 0));
        if (group_table) {
            r->op[0] = 0;
            snprintf(r->value, sizeof r->value, "%lld", (long long)sqlite3_column_int64(st, 1));
        } else {
            snprintf(r->op, sizeof r->op, "%s", (const char *)sqlite3_column_text(st, 1));
            snprintf(r->value, sizeof r->value, "%s", (const char *)sqlite3_column_text(st, 2));
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(e, "database", "db", "reading %s: %s", name, sqlite3_errmsg(h->db));
        return -1;
    }
    return 0;
}

static int read_user(handle *h, const char *name, rows *r, netplug_error *e)
{
    memset(r, 0, sizeof *r);
    return read_rows(h, "SELECT attribute, op, value FROM radcheck WHERE username = ? ORDER BY id", name, 0, r->check,
                     &r->ncheck, &r->overflow, e) ||
                   read_rows(h, "SELECT attribute, op, value FROM radreply WHERE username = ? ORDER BY id", name, 0, r->reply,
                             &r->nreply, &r->overflow, e) ||
                   read_rows(h, "SELECT groupname, priority FROM radusergroup WHERE username = ? ORDER BY id", name, 1,
                             r->group, &r->ngroup, &r->overflow, e)
               ? -1
               : 0;
}

static void add_row(row *rs, int *n, const char *attr, const char *op, const char *value)
{
    row *r = &rs[(*n)++];
    snprintf(r->attr, sizeof r->attr, "%s", attr);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->value, sizeof r->value, "%s", value);
}

static int64_t bits(int64_t kbps)
{
    /* the integer attributes are 32 bits: a faster line is sent the most they say */
    int64_t b = kbps * 1000;
    return b > 4294967295LL ? 4294967295LL : b;
}

/* The rate attributes of a rate. */
static void rate_rows(const handle *h, int64_t down, int64_t up, row *rs, int *n)
{
    if (down <= 0 || up <= 0) return;
    char v[64];
    switch (h->rate_format) {
    case FMT_MIKROTIK:
        /* rx/tx from the router's side: rx is what the customer sends */
        snprintf(v, sizeof v, "%lldk/%lldk", (long long)up, (long long)down);
        add_row(rs, n, "Mikrotik-Rate-Limit", ":=", v);
        break;
    case FMT_HUAWEI:
        snprintf(v, sizeof v, "%lld", (long long)bits(up));
        add_row(rs, n, "Huawei-Input-Average-Rate", ":=", v);
        snprintf(v, sizeof v, "%lld", (long long)bits(down));
        add_row(rs, n, "Huawei-Output-Average-Rate", ":=", v);
        break;
    default:
        snprintf(v, sizeof v, "%lld", (long long)bits(up));
        add_row(rs, n, "H3C-Input-Average-Rate", ":=", v);
        snprintf(v, sizeof v, "%lld", (long long)bits(down));
        add_row(rs, n, "H3C-Output-Average-Rate", ":=", v);
        break;
    }
}

static int is_rate_attr(const char *a)
{
    return !strcmp(a, "Mikrotik-Rate-Limit") || !strcmp(a, "Huawei-Input-Average-Rate") ||
           !strcmp(a, "Huawei-Output-Average-Rate") || !strcmp(a, "H3C-Input-Average-Rate") ||
           !strcmp(a, "H3C-Output-Average-Rate");
}

/* What a record should have. */
static void want_rows(const handle *h, const netplug_record *r, rows *w)
{
    memset(w, 0, sizeof *w);
    if (r->state == NETPLUG_CLOSED) return;
    if (r->state == NETPLUG_SUSPENDED && h->suspended == SUSPEND_REJECT) {
        add_row(w->check, &w->ncheck, "Auth-Type", ":=", "Reject");
        return;
    }
    add_row(w->check, &w->ncheck, "Cleartext-Password", ":=", r->password ? r->password : "");
    if (r->state == NETPLUG_SUSPENDED) {
        add_row(w->group, &w->ngroup, h->group, "", "0");
        return;
    }
    rate_rows(h, r->down_kbps, r->up_kbps, w->reply, &w->nreply);
}

enum { KIND_NONE, KIND_NORMAL, KIND_REJECT, KIND_WALLED };

static int kind_of(const handle *h, const rows *r)
{
    if (!r->ncheck && !r->nreply && !r->ngroup) return KIND_NONE;
    for (int i = 0; i < r->ncheck; i++)
        if (!strcasecmp(r->check[i].attr, "Auth-Type") && !strcasecmp(r->check[i].value, "Reject")) return KIND_REJECT;
    for (int i = 0; i < r->ngroup; i++)
        if (!strcmp(r->group[i].attr, h->group)) return KIND_WALLED;
    return KIND_NORMAL;
}

/* Compares the rows of one table, reporting each difference; returns how
 * many there are. */
static int diff_table(const char *where, const char *user, const row *have, int nh, const row *want, int nw,
                      void (*drift)(void *, const netplug_drift *), void *arg)
{
    int used[MAX_ROWS] = {0}, wdone[MAX_ROWS] = {0}, n = 0;
    /* exact matches first */
    for (int i = 0; i < nw; i++)
        for (int j = 0; j < nh && !wdone[i]; j++)
            if (!used[j] && !strcmp(want[i].attr, have[j].attr) && !strcmp(want[i].op, have[j].op) &&
                !strcmp(want[i].value, have[j].value))
                used[j] = wdone[i] = 1;
    for (int i = 0; i < nw; i++) {
        if (wdone[i]) continue;
        int j;
        for (j = 0; j < nh; j++)
            if (!used[j] && !strcmp(want[i].attr, have[j].attr)) break;
        netplug_drift d;
        memset(&d, 0, sizeof d);
        d.username = user;
        snprintf(d.where, sizeof d.where, "%s", where);
        snprintf(d.attribute, sizeof d.attribute, "%s", want[i].attr);
        int secret = !strcmp(want[i].attr, "Cleartext-Password");
        if (j < nh) {
            used[j] = 1;
            snprintf(d.kind, sizeof d.kind, "wrong");
            if (secret) snprintf(d.have, sizeof d.have, "(another password)");
            else snprintf(d.have, sizeof d.have, "%s %s", have[j].op, have[j].value);
        } else {
            snprintf(d.kind, sizeof d.kind, "missing");
        }
        if (secret) snprintf(d.want, sizeof d.want, "%s (the password)", want[i].op);
        else snprintf(d.want, sizeof d.want, "%s%s%s", want[i].op, want[i].op[0] ? " " : "", want[i].value);
        n++;
        if (drift) drift(arg, &d);
    }
    for (int j = 0; j < nh; j++) {
        if (used[j]) continue;
        netplug_drift d;
        memset(&d, 0, sizeof d);
        d.username = user;
        snprintf(d.kind, sizeof d.kind, "extra");
        snprintf(d.where, sizeof d.where, "%s", where);
        snprintf(d.attribute, sizeof d.attribute, "%s", have[j].attr);
        if (!strcmp(have[j].attr, "Cleartext-Password")) snprintf(d.have, sizeof d.have, "%s (a password)", have[j].op);
        else snprintf(d.have, sizeof d.have, "%s%s%s", have[j].op, have[j].op[0] ? " " : "", have[j].value);
        n++;
        if (drift) drift(arg, &d);
    }
    return n;
}

static int diff_user(const char *user, const rows *have, const rows *want, void (*drift)(void *, const netplug_drift *),
                     void *arg)
{
    int n = diff_table("radcheck", user, have->check, have->ncheck, want->check, want->ncheck, drift, arg);
    n += diff_table("radreply", user, have->reply, have->nreply, want->reply, want->nreply, drift, arg);
    n += diff_table("radusergroup", user, have->group, have->ngroup, want->group, want->ngroup, drift, arg);
    if (have->overflow) n++; /* more rows than we read: rewrite them all */
    return n;
}

static int rates_differ(const rows *have, const rows *want)
{
    row a[MAX_ROWS], b[MAX_ROWS];
    int na = 0, nb = 0;
    for (int i = 0; i < have->nreply; i++)
        if (is_rate_attr(have->reply[i].attr)) a[na++] = have->reply[i];
    for (int i = 0; i < want->nreply; i++)
        if (is_rate_attr(want->reply[i].attr)) b[nb++] = want->reply[i];
    return diff_table("", "", a, na, b, nb, NULL, NULL) != 0;
}

static int run_text(handle *h, const char *sql, const char *a, const char *b, const char *c, const char *d, netplug_error *e)
{
    sqlite3_stmt *st;
    if (prep(h, sql, &st, e)) return -1;
    const char *v[4] = {a, b, c, d};
    for (int i = 0; i < 4 && v[i]; i++) sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(e, "database", "db", "writing: %s (%s)", sqlite3_errmsg(h->db), sql);
        return -1;
    }
    return 0;
}

static int write_user(handle *h, const char *user, const rows *w, netplug_error *e)
{
    if (run_text(h, "DELETE FROM radcheck WHERE username = ?", user, NULL, NULL, NULL, e) ||
        run_text(h, "DELETE FROM radreply WHERE username = ?", user, NULL, NULL, NULL, e) ||
        run_text(h, "DELETE FROM radusergroup WHERE username = ?", user, NULL, NULL, NULL, e))
        return -1;
    for (int i = 0; i < w->ncheck; i++)
        if (run_text(h, "INSERT INTO radcheck (username, attribute, op, value) VALUES (?, ?, ?, ?)", user, w->check[i].attr,
                     w->check[i].op, w->check[i].value, e))
            return -1;
    for (int i = 0; i < w->nreply; i++)
        if (run_text(h, "INSERT INTO radreply (username, attribute, op, value) VALUES (?, ?, ?, ?)", user, w->reply[i].attr,
                     w->reply[i].op, w->reply[i].value, e))
            return -1;
    for (int i = 0; i < w->ngroup; i++)
        if (run_text(h, "INSERT INTO radusergroup (username, groupname, priority) VALUES (?, ?, ?)", user, w->group[i].attr,
                     w->group[i].value, NULL, e))
            return -1;
    return 0;
}

/* The walled garden group's reply, as configured (only in that mode). */
static int group_rows(handle *h, int dry, void (*drift)(void *, const netplug_drift *), void *arg, netplug_error *e)
{
    if (h->suspended != SUSPEND_WALLED || (dry && h->group_compared)) return 0;
    h->group_compared = dry;
    row have[MAX_ROWS];
    int nh = 0, overflow = 0;
    if (read_rows(h, "SELECT attribute, op, value FROM radgroupreply WHERE groupname = ? ORDER BY id", h->group, 0, have,
                  &nh, &overflow, e))
        return -1;
    char where[80];
    snprintf(where, sizeof where, "radgroupreply:%s", h->group);
    int n = diff_table(where, "", have, nh, h->greply, h->ngreply, drift, arg) + overflow;
    if (!n || dry) return 0;
    if (run_text(h, "DELETE FROM radgroupreply WHERE groupname = ?", h->group, NULL, NULL, NULL, e)) return -1;
    for (int i = 0; i < h->ngreply; i++)
        if (run_text(h, "INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES (?, ?, ?, ?)", h->group,
                     h->greply[i].attr, h->greply[i].op, h->greply[i].value, e))
            return -1;
    return 0;
}

/* ------------------------------------------------------------- sessions */

typedef struct job {
    size_t rec;                 /* the record it belongs to */
    const nas *n;
    radpkt pkt;
    int state;                  /* 0 waiting, 1 acked, 2 naked, 3 failed */
    uint32_t cause;
    char user[65], session[65], nas_ip[16];
    char why[160];
} job;

typedef struct jobs {
    job *v;
    size_t n, cap;
} jobs;

static const nas *find_nas(const handle *h, const char *ip)
{
    for (size_t i = 0; i < h->nnas; i++)
        if (!strcmp(h->nases[i].address, ip)) return &h->nases[i];
    return NULL;
}

__attribute__((format(printf, 2, 3))) static void note(netplug_outcome *o, const char *fmt, ...)
{
    if (o->error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->error, sizeof o->error, fmt, ap);
    va_end(ap);
}

/* One request per open session of user. */
static int queue_sessions(handle *h, size_t rec, const char *user, int action, const netplug_record *r, jobs *js,
                          netplug_outcome *o, netplug_error *e)
{
    sqlite3_stmt *st;
    if (prep(h,
             "SELECT acctsessionid, nasipaddress, framedipaddress FROM radacct WHERE username = ? AND acctstoptime IS NULL "
             "ORDER BY radacctid",
             &st, e))
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sid = (const char *)sqlite3_column_text(st, 0), *ip = (const char *)sqlite3_column_text(st, 1),
                   *framed = (const char *)sqlite3_column_text(st, 2);
        o->sessions++;
        const nas *n = find_nas(h, ip ? ip : "");
        if (!n) {
            o->failed++;
            note(o, "session %s of %s is on NAS %s, which is not configured (nas.NAME.address)", sid ? sid : "", user,
                 ip ? ip : "");
            char msg[300];
            snprintf(msg, sizeof msg, "session %s of %s is on NAS %s, which is not configured (nas.NAME.address)",
                     sid ? sid : "", user, ip ? ip : "");
            logf_(2, "radius_nas_unknown", msg);
            continue;
        }
        if (js->n == js->cap) {
            size_t cap = js->cap ? js->cap * 2 : 16;
            job *v = realloc(js->v, cap * sizeof *v);
            if (!v) {
                sqlite3_finalize(st);
                say(e, "sessions", "", "out of memory");
                return -1;
            }
            js->v = v;
            js->cap = cap;
        }
        job *j = &js->v[js->n++];
        memset(j, 0, sizeof *j);
        j->rec = rec;
        j->n = n;
        snprintf(j->user, sizeof j->user, "%s", user);
        snprintf(j->session, sizeof j->session, "%s", sid ? sid : "");
        snprintf(j->nas_ip, sizeof j->nas_ip, "%s", ip);
        radpkt_init(&j->pkt, action == NETPLUG_COA ? RAD_COA_REQUEST : RAD_DISCONNECT_REQUEST, 0);
        radpkt_add_str(&j->pkt, RAD_ATTR_USER_NAME, user);
        if (sid && sid[0]) radpkt_add_str(&j->pkt, RAD_ATTR_ACCT_SESSION_ID, sid);
        if (framed && framed[0]) radpkt_add_ipv4(&j->pkt, RAD_ATTR_FRAMED_IP_ADDRESS, framed);
        radpkt_add_ipv4(&j->pkt, RAD_ATTR_NAS_IP_ADDRESS, ip);
        if (action == NETPLUG_COA) {
            char v[64];
            switch (h->rate_format) {
            case FMT_MIKROTIK:
                snprintf(v, sizeof v, "%lldk/%lldk", (long long)r->up_kbps, (long long)r->down_kbps);
                radpkt_add_vsa(&j->pkt, VENDOR_MIKROTIK, 8, v, strlen(v));
                break;
            case FMT_HUAWEI:
                radpkt_add_vsa_int(&j->pkt, VENDOR_HUAWEI, 2, (uint32_t)bits(r->up_kbps));
                radpkt_add_vsa_int(&j->pkt, VENDOR_HUAWEI, 5, (uint32_t)bits(r->down_kbps));
                break;
            default:
                radpkt_add_vsa_int(&j->pkt, VENDOR_H3C, 2, (uint32_t)bits(r->up_kbps));
                radpkt_add_vsa_int(&j->pkt, VENDOR_H3C, 5, (uint32_t)bits(r->down_kbps));
                break;
            }
        }
        if (j->pkt.full) {
            j->state = 3;
            snprintf(j->why, sizeof j->why, "the request does not fit a RADIUS packet");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(e, "database", "db", "reading radacct: %s", sqlite3_errmsg(h->db));
        return -1;
    }
    return 0;
}

/* Sends one wave (at most 256 requests: one identifier each) and waits for
 * the answers, asking again whoever did not answer in time. */
static void send_wave(handle *h, job *w, size_t n)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        for (size_t i = 0; i < n; i++)
            if (!w[i].state) w[i].state = 3, snprintf(w[i].why, sizeof w[i].why, "no UDP socket: %s", strerror(errno));
        return;
    }
    uint8_t base = 0;
    if (H && H->random) H->random(&base, 1);
    for (size_t i = 0; i < n; i++) {
        if (w[i].state) continue;
        w[i].pkt.data[1] = (uint8_t)(base + i);
        if (radpkt_sign_request(&w[i].pkt, w[i].n->secret)) {
            w[i].state = 3;
            snprintf(w[i].why, sizeof w[i].why, "the request could not be signed");
        }
    }
    for (int attempt = 0; attempt <= h->retries; attempt++) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            if (w[i].state) continue;
            left++;
            if (sendto(fd, w[i].pkt.data, w[i].pkt.len, 0, (const struct sockaddr *)&w[i].n->to, sizeof w[i].n->to) < 0)
                snprintf(w[i].why, sizeof w[i].why, "sending failed: %s", strerror(errno));
        }
        if (!left) break;
        int64_t until = now_ms() + h->timeout_ms;
        while (left) {
            int64_t wait = until - now_ms();
            if (wait <= 0) break;
            struct pollfd p = {fd, POLLIN, 0};
            int pr = poll(&p, 1, (int)wait);
            if (pr < 0 && errno == EINTR) continue;
            if (pr <= 0) break;
            uint8_t buf[RADPKT_MAX];
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t got = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (got < RADPKT_HDR) continue;
            for (size_t i = 0; i < n; i++) {
                job *j = &w[i];
                if (j->state || j->pkt.data[1] != buf[1] || from.sin_addr.s_addr != j->n->to.sin_addr.s_addr ||
                    from.sin_port != j->n->to.sin_port)
                    continue;
                char why[160];
                uint32_t cause = 0;
                int ok = radpkt_check_answer(&j->pkt, buf, (size_t)got, j->n->secret, &cause, why, sizeof why);
                if (ok < 0) {
                    /* not taken as an answer: maybe forged; the timeout decides */
                    snprintf(j->why, sizeof j->why, "an answer was refused: %s", why);
                    break;
                }
                j->state = ok ? 1 : 2;
                j->cause = cause;
                left--;
                break;
            }
        }
    }
    close(fd);
}

static void run_jobs(handle *h, jobs *js, netplug_outcome *out)
{
    for (size_t at = 0; at < js->n; at += WAVE) send_wave(h, js->v + at, js->n - at < WAVE ? js->n - at : WAVE);
    for (size_t i = 0; i < js->n; i++) {
        job *j = &js->v[i];
        netplug_outcome *o = &out[j->rec];
        const char *what = j->pkt.data[0] == RAD_COA_REQUEST ? "CoA-Request" : "Disconnect-Request";
        char msg[400];
        /* a session the NAS no longer has (stale accounting after a NAS
         * reboot) is as good as disconnected */
        if (j->state == 1 || (j->state == 2 && j->cause == 503 && j->pkt.data[0] == RAD_DISCONNECT_REQUEST)) {
            o->acked++;
            if (j->state == 2) logf_(1, "radius_nas_no_session", "a Disconnect found no session: taken as done");
            continue;
        }
        if (j->state == 2) {
            o->naked++;
            char cause[80];
            if (j->cause) snprintf(cause, sizeof cause, "Error-Cause %u %s", (unsigned)j->cause, radpkt_cause_name(j->cause));
            else snprintf(cause, sizeof cause, "no Error-Cause");
            snprintf(msg, sizeof msg, "NAS %s (%s) refused the %s for session %s of %s: NAK, %s", j->n->name, j->nas_ip,
                     what, j->session, j->user, cause);
            logf_(2, "radius_nas_nak", msg);
        } else if (j->state == 3) {
            o->failed++;
            snprintf(msg, sizeof msg, "%s for session %s of %s to NAS %s (%s) not sent: %s", what, j->session, j->user,
                     j->n->name, j->nas_ip, j->why);
            logf_(3, "radius_nas_failed", msg);
        } else {
            o->timed_out++;
            snprintf(msg, sizeof msg, "NAS %s (%s) did not answer the %s for session %s of %s (%d tries, %d ms each)%s%s",
                     j->n->name, j->nas_ip, what, j->session, j->user, h->retries + 1, h->timeout_ms, j->why[0] ? "; " : "",
                     j->why);
            logf_(2, "radius_nas_timeout", msg);
        }
        if (!o->error[0]) snprintf(o->error, sizeof o->error, "%s", msg);
    }
}

/* ---------------------------------------------------------------- apply */

/* What the comparison decided for one record. */
typedef struct plan {
    int changed, old_changed;
    int act;
} plan;

/* What live sessions of a record get, from the entries it had and has. */
static int session_action(const handle *h, const netplug_record *r, const rows *have, const rows *want, int changed,
                          int resync)
{
    int was = kind_of(h, have), now = kind_of(h, want);
    if (now == KIND_NONE || now == KIND_REJECT) return was != now || (resync && !changed) ? NETPLUG_DISCONNECT : NETPLUG_NO_ACTION;
    if (now == KIND_WALLED) return was != KIND_WALLED ? NETPLUG_DISCONNECT : NETPLUG_NO_ACTION;
    if (was == KIND_WALLED) return NETPLUG_DISCONNECT; /* out of the garden: sign in again */
    if (was == KIND_NORMAL && rates_differ(have, want))
        return r->down_kbps > 0 && r->up_kbps > 0 ? NETPLUG_COA : NETPLUG_DISCONNECT;
    return NETPLUG_NO_ACTION;
}

static void session_drift(const netplug_record *r, int sessions, void (*drift)(void *, const netplug_drift *), void *arg)
{
    netplug_drift d;
    memset(&d, 0, sizeof d);
    d.username = r->username;
    snprintf(d.kind, sizeof d.kind, "session");
    snprintf(d.where, sizeof d.where, "radacct");
    snprintf(d.have, sizeof d.have, "%d open session%s", sessions, sessions == 1 ? "" : "s");
    snprintf(d.want, sizeof d.want, "none (%s)", r->state == NETPLUG_CLOSED ? "closed" : "suspended");
    if (drift) drift(arg, &d);
}

static int apply(void *hv, const netplug_record *recs, size_t n, int flags, netplug_outcome *out,
                 void (*drift)(void *, const netplug_drift *), void *arg, netplug_error *e)
{
    handle *h = hv;
    int dry = (flags & NETPLUG_DRY_RUN) != 0, resync = (flags & NETPLUG_RESYNC) != 0;
    memset(out, 0, n * sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (!recs[i].username || !recs[i].username[0] || strlen(recs[i].username) > 64 ||
            (recs[i].state != NETPLUG_CLOSED && (!recs[i].password || strlen(recs[i].password) > 253))) {
            say(e, "record", "", "record %s: a user name of 1-64 characters and, unless closed, a password are needed",
                recs[i].username ? recs[i].username : "(none)");
            return -1;
        }
    plan *p = calloc(n ? n : 1, sizeof *p);
    /* one record's rows at a time: they are large */
    struct {
        rows have, want, old, none;
    } *w = calloc(1, sizeof *w);
    if (!p || !w) {
        free(p);
        free(w);
        say(e, "settings", "", "out of memory");
        return -1;
    }
    /* the rows: read, compared and rewritten in one short transaction */
    int rc = exec1(h, dry ? "BEGIN" : "BEGIN IMMEDIATE", e);
    if (!rc) rc = group_rows(h, dry, drift, arg, e);
    for (size_t i = 0; !rc && i < n; i++) {
        const netplug_record *r = &recs[i];
        plan *q = &p[i];
        rc = read_user(h, r->username, &w->have, e);
        if (rc) break;
        want_rows(h, r, &w->want);
        q->changed = diff_user(r->username, &w->have, &w->want, drift, arg) > 0;
        if (!dry && q->changed) rc = write_user(h, r->username, &w->want, e);
        q->act = session_action(h, r, &w->have, &w->want, q->changed, resync);
        if (!rc && r->old_username && r->old_username[0] && strcmp(r->old_username, r->username)) {
            rc = read_user(h, r->old_username, &w->old, e);
            if (!rc) q->old_changed = diff_user(r->old_username, &w->old, &w->none, drift, arg) > 0;
            if (!rc && !dry && q->old_changed) rc = write_user(h, r->old_username, &w->none, e);
        }
        out[i].changed = q->changed || q->old_changed;
    }
    free(w);
    if (!rc) rc = exec1(h, "COMMIT", e);
    /* a COMMIT that failed (busy) leaves the transaction open, holding
     * FreeRADIUS's writers out: it is rolled back too, and tried again */
    if (rc) sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc) {
        free(p);
        return -1;
    }
    /* the rows are in: now the live sessions. Nothing here fails the call:
     * a problem is the session's, reported in out[] */
    jobs js = {0};
    for (size_t i = 0; i < n; i++) {
        const netplug_record *r = &recs[i];
        plan *q = &p[i];
        int act = q->act;
        if (dry) {
            /* a dry run sends nothing; a resync reports who is online against their state */
            if (resync && act == NETPLUG_DISCONNECT && !q->changed) {
                sqlite3_stmt *st;
                netplug_error pe;
                if (!prep(h, "SELECT count(*) FROM radacct WHERE username = ? AND acctstoptime IS NULL", &st, &pe)) {
                    sqlite3_bind_text(st, 1, r->username, -1, SQLITE_STATIC);
                    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
                        out[i].sessions = (int)sqlite3_column_int64(st, 0);
                        out[i].changed = 1;
                        session_drift(r, out[i].sessions, drift, arg);
                    }
                    sqlite3_finalize(st);
                }
            }
            continue;
        }
        size_t before = js.n;
        netplug_error pe;
        memset(&pe, 0, sizeof pe);
        if (act != NETPLUG_NO_ACTION && queue_sessions(h, i, r->username, act, r, &js, &out[i], &pe)) {
            out[i].failed++;
            note(&out[i], "the sessions of %s could not be read: %s", r->username, pe.message);
            logf_(3, "radius_sessions_unread", out[i].error);
        }
        if (resync && act == NETPLUG_DISCONNECT && !q->changed && out[i].sessions > 0) {
            out[i].changed = 1;
            session_drift(r, out[i].sessions, drift, arg);
        }
        if (q->old_changed) {
            memset(&pe, 0, sizeof pe);
            if (queue_sessions(h, i, r->old_username, NETPLUG_DISCONNECT, r, &js, &out[i], &pe)) {
                out[i].failed++;
                note(&out[i], "the sessions of %s could not be read: %s", r->old_username, pe.message);
                logf_(3, "radius_sessions_unread", out[i].error);
            }
            if (act == NETPLUG_NO_ACTION) act = NETPLUG_DISCONNECT;
        }
        out[i].action = out[i].sessions > 0 || js.n > before || out[i].failed ? act : NETPLUG_NO_ACTION;
    }
    run_jobs(h, &js, out);
    free(js.v);
    free(p);
    return 0;
}

static int users(void *hv, int (*fn)(void *, const char *), void *arg, netplug_error *e)
{
    handle *h = hv;
    sqlite3_stmt *st;
    if (prep(h,
             "SELECT username FROM radcheck UNION SELECT username FROM radreply UNION SELECT username FROM radusergroup "
             "ORDER BY 1",
             &st, e))
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(arg, (const char *)sqlite3_column_text(st, 0))) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        say(e, "database", "db", "listing users: %s", sqlite3_errmsg(h->db));
        return -1;
    }
    return 0;
}

static const char *const settings[] = {"db",         "rate_format",        "suspended",      "walled_garden_group",
                                       "walled_garden_reply", "coa_timeout_ms", "coa_retries", NULL};

static const netplug_plugin plugin = {
    .abi = NETPLUG_ABI,
    .name = "radius",
    .title = "FreeRADIUS (SQL tables, RFC 5176 CoA/Disconnect)",
    .settings = settings,
    .open = open_,
    .close = close_,
    .apply = apply,
    .users = users,
};

__attribute__((visibility("default"))) const netplug_plugin *bandbill_netplug(const netplug_host *host)
{
    H = host;
    return &plugin;
}
