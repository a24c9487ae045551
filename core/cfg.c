/* cfg.c - the configuration table and its three sources. */
#include "cfg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cron.h"
#include "log.h"
#include "scheduler.h"

enum { T_STR, T_INT, T_BOOL };

typedef struct key {
    const char *name;
    int type;
    size_t off, size;
    int64_t min, max;
    const char *help;
} key;

#define S(field) offsetof(cfg, field), sizeof(((cfg *)0)->field)

static const key keys[] = {
    {"db", T_STR, S(db), 0, 0, "SQLite database file"},
    {"rules", T_STR, S(rules), 0, 0, "rules folder"},
    {"listen", T_STR, S(listen), 0, 0, "HTTP address HOST:PORT"},
    {"socket", T_STR, S(socket), 0, 0, "control socket for the local CLI (default: next to the database)"},
    {"timezone", T_STR, S(timezone), 0, 0, "time zone for schedules and calendar dates"},
    {"log.level", T_STR, S(log_level), 0, 0, "debug, info, warn, error"},
    {"log.file", T_STR, S(log_file), 0, 0, "log file (default: standard error)"},
    {"rules.max_instructions", T_INT, S(rules_max_instructions), 1000, 1000000000, "instruction budget per rule call"},
    {"rules.max_memory_mb", T_INT, S(rules_max_memory_mb), 4, 4096, "memory cap per rule state, MiB"},
    {"rules.watch", T_BOOL, S(rules_watch), 0, 1, "reload when files in the rules folder change"},
    {"http.max_body_kb", T_INT, S(http_max_body_kb), 1, 65536, "largest request body, KiB"},
    {"http.timeout_s", T_INT, S(http_timeout_s), 1, 3600, "idle connection timeout, seconds"},
    {"http.shutdown_s", T_INT, S(http_shutdown_s), 1, 60, "longest wait for requests in flight at shutdown"},
    {"customer.code_prefix", T_STR, S(customer_prefix), 0, 0, "customer codes start with it (1-4 capital letters)"},
    {"billing.invoice_prefix", T_STR, S(invoice_prefix), 0, 0, "invoice numbers start with it: INV-2026-000001 (2-6 capital letters)"},
    {"billing.credit_note_prefix", T_STR, S(credit_note_prefix), 0, 0, "credit note numbers start with it (2-6 capital letters)"},
    {"audit.anchor_file", T_STR, S(audit_anchor), 0, 0, "where the audit trail's latest record is anchored (keep it off the database's disk)"},
    {"keys.file", T_STR, S(keys_file), 0, 0, "key file for encryption at rest (default: next to the database, mode 0600)"},
    {"plugins.dir", T_STR, S(plugins_dir), 0, 0, "folder of plugins such as payment channels (default: plugins beside the binary)"},
    {"payments.query_after_min", T_INT, S(query_after_min), 1, 1440, "ask the channel about an order open this many minutes without a notification"},
    {"auth.session_idle_min", T_INT, S(session_idle_min), 1, 1440, "a console session ends after this many idle minutes"},
    {"auth.session_max_hours", T_INT, S(session_max_hours), 1, 720, "and after this many hours in any case"},
    {"tls.cert", T_STR, S(tls_cert), 0, 0, "PEM certificate chain: serve HTTPS instead of HTTP"},
    {"tls.key", T_STR, S(tls_key), 0, 0, "PEM private key of tls.cert"},
    {"backup.dir", T_STR, S(backup_dir), 0, 0, "where the backup job writes (default: var/backups)"},
    {"backup.keep", T_INT, S(backup_keep), 1, 1000, "scheduled backups to keep"},
    {"radius.db", T_STR, S(radius_db), 0, 0, "FreeRADIUS's SQLite database the radius plugin keeps (empty: no network enforcement)"},
    {"radius.rate_format", T_STR, S(radius_rate_format), 0, 0, "the rate attribute: mikrotik (Mikrotik-Rate-Limit), huawei or h3c"},
    {"radius.suspended", T_STR, S(radius_suspended), 0, 0, "a suspended line: reject, or walled_garden (radius.walled_garden_group)"},
    {"radius.walled_garden_group", T_STR, S(radius_walled_group), 0, 0, "the group of suspended lines in walled_garden mode"},
    {"radius.walled_garden_reply", T_STR, S(radius_walled_reply), 0, 0, "that group's reply: 'Attribute := value' items separated by commas"},
    {"radius.poll_ms", T_INT, S(radius_poll_ms), 50, 10000, "how often the daemon applies the network changes, ms"},
    {"radius.coa_timeout_ms", T_INT, S(radius_coa_timeout_ms), 50, 30000, "how long a NAS has to answer a CoA or Disconnect request, ms"},
    {"radius.coa_retries", T_INT, S(radius_coa_retries), 0, 10, "how often an unanswered request is sent again"},
    {"notify.dispatch", T_BOOL, S(notify_dispatch), 0, 1, "the daemon delivers outbox messages (the dispatcher thread)"},
    {"notify.max_attempts", T_INT, S(notify_max_attempts), 1, 100, "a message is dead after this many failed attempts"},
    {"notify.backoff_base_s", T_INT, S(notify_backoff_base_s), 1, 86400, "wait after the first failed attempt, seconds"},
    {"notify.backoff_factor", T_INT, S(notify_backoff_factor), 1, 10, "each further failure multiplies the wait by this"},
    {"notify.backoff_cap_s", T_INT, S(notify_backoff_cap_s), 1, 604800, "longest wait between attempts, seconds"},
    {"notify.backoff_jitter_pct", T_INT, S(notify_backoff_jitter_pct), 0, 100, "waits move randomly by up to this percent"},
    {"notify.timeout_s", T_INT, S(notify_timeout_s), 1, 300, "longest wait for a gateway's answer, seconds"},
    {"notify.concurrency", T_INT, S(notify_concurrency), 1, 256, "requests in flight per channel"},
    {"notify.poll_ms", T_INT, S(notify_poll_ms), 50, 60000, "how often the dispatcher looks for due messages, ms"},
};

void cfg_defaults(cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->db, sizeof c->db, "./var/bandbill.db");
    snprintf(c->rules, sizeof c->rules, "./rules");
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    snprintf(c->timezone, sizeof c->timezone, "Asia/Shanghai");
    snprintf(c->log_level, sizeof c->log_level, "info");
    c->rules_max_instructions = 5000000;
    c->rules_max_memory_mb = 64;
    c->http_max_body_kb = 1024;
    c->http_timeout_s = 60;
    c->http_shutdown_s = 5;
    c->backup_keep = 7;
    c->session_idle_min = 30;
    snprintf(c->customer_prefix, sizeof c->customer_prefix, "C");
    snprintf(c->invoice_prefix, sizeof c->invoice_prefix, "INV");
    snprintf(c->credit_note_prefix, sizeof c->credit_note_prefix, "CN");
    c->session_max_hours = 12;
    c->query_after_min = 10;
    snprintf(c->radius_rate_format, sizeof c->radius_rate_format, "mikrotik");
    snprintf(c->radius_suspended, sizeof c->radius_suspended, "reject");
    snprintf(c->radius_walled_group, sizeof c->radius_walled_group, "walled-garden");
    snprintf(c->radius_walled_reply, sizeof c->radius_walled_reply, "Mikrotik-Address-List := walled-garden");
    c->radius_poll_ms = 200;
    c->radius_coa_timeout_ms = 1000;
    c->radius_coa_retries = 2;
    c->notify_dispatch = 1;
    c->notify_max_attempts = 8;
    c->notify_backoff_base_s = 30;
    c->notify_backoff_factor = 2;
    c->notify_backoff_cap_s = 3600;
    c->notify_backoff_jitter_pct = 20;
    c->notify_timeout_s = 10;
    c->notify_concurrency = 16;
    c->notify_poll_ms = 1000;
}

static int set_job(cfg *c, const char *job, const char *value, const char *origin, err *e)
{
    if (!sched_job_find(job))
        return err_field(e, ERR_INVALID, "unknown_config_key", "jobs", "%s: unknown job '%s' (known: %s)", origin, job,
                         sched_job_names());
    if (strcmp(value, "off") != 0) {
        cron_expr ce;
        if (cron_parse(value, &ce, e)) return err_prefix(e, "%s: jobs.%s", origin, job);
    }
    int i;
    for (i = 0; i < c->njobs; i++)
        if (strcmp(c->jobs[i].name, job) == 0) break;
    if (i == c->njobs) {
        if (c->njobs == CFG_MAX_JOBS) return err_set(e, ERR_LIMIT, "%s: too many jobs", origin);
        c->njobs++;
    }
    snprintf(c->jobs[i].name, sizeof c->jobs[i].name, "%s", job);
    snprintf(c->jobs[i].cron, sizeof c->jobs[i].cron, "%s", value);
    return 0;
}

/* A NAME.KEY setting (channel.*, notify.*) into arr: the keys a name takes
 * are its plugin's or driver's to say when it opens; here only their
 * shape. 0, or NAMED_BAD_SHAPE, NAMED_TOO_LONG, NAMED_FULL. */
enum { NAMED_BAD_SHAPE = 1, NAMED_TOO_LONG, NAMED_FULL };

static int set_named(cfg_channel_setting *arr, int *n, const char *rest, const char *value)
{
    const char *dot = strchr(rest, '.');
    size_t nl = dot ? (size_t)(dot - rest) : 0;
    const char *k = dot ? dot + 1 : "";
    if (!nl || nl >= sizeof arr[0].channel || strspn(rest, "abcdefghijklmnopqrstuvwxyz0123456789") != nl || !k[0] ||
        strlen(k) >= sizeof arr[0].key || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(k))
        return NAMED_BAD_SHAPE;
    if (strlen(value) >= sizeof arr[0].value) return NAMED_TOO_LONG;
    int i;
    for (i = 0; i < *n; i++)
        if (!strncmp(arr[i].channel, rest, nl) && !arr[i].channel[nl] && !strcmp(arr[i].key, k)) break;
    if (i == *n) {
        if (*n == CFG_MAX_CHANNEL_SETTINGS) return NAMED_FULL;
        (*n)++;
    }
    snprintf(arr[i].channel, sizeof arr[i].channel, "%.*s", (int)nl, rest);
    snprintf(arr[i].key, sizeof arr[i].key, "%s", k);
    snprintf(arr[i].value, sizeof arr[i].value, "%s", value);
    return 0;
}

/* channel.NAME.KEY: payment channels (channels.c checks the keys). */
static int set_channel(cfg *c, const char *rest, const char *value, const char *origin, err *e)
{
    switch (set_named(c->chset, &c->nchset, rest, value)) {
    case 0: return 0;
    case NAMED_BAD_SHAPE:
        return err_field(e, ERR_INVALID, "unknown_config_key", "channel", "%s: channel settings are channel.NAME.KEY, got 'channel.%s'",
                         origin, rest);
    case NAMED_TOO_LONG: return err_field(e, ERR_INVALID, "invalid_config", "channel", "%s: channel.%s is too long", origin, rest);
    default: return err_set(e, ERR_LIMIT, "%s: too many channel settings", origin);
    }
}

/* notify.CHANNEL.KEY: notification channels (notify_engine.c checks the
 * keys against the channel's driver). */
static int set_notify(cfg *c, const char *rest, const char *value, const char *origin, err *e)
{
    switch (set_named(c->ntset, &c->nntset, rest, value)) {
    case 0: return 0;
    case NAMED_BAD_SHAPE:
        return err_field(e, ERR_INVALID, "unknown_config_key", "notify",
                         "%s: unknown configuration key 'notify.%s' (notification settings are notify.CHANNEL.KEY)", origin, rest);
    case NAMED_TOO_LONG: return err_field(e, ERR_INVALID, "invalid_config", "notify", "%s: notify.%s is too long", origin, rest);
    default: return err_set(e, ERR_LIMIT, "%s: too many notify settings", origin);
    }
}

/* nas.NAME.KEY: the NASes that take RFC 5176 requests (address, secret,
 * coa_port). */
static int set_nas(cfg *c, const char *rest, const char *value, const char *origin, err *e)
{
    const char *dot = strchr(rest, '.');
    size_t nl = dot ? (size_t)(dot - rest) : 0;
    const char *k = dot ? dot + 1 : "";
    if (!nl || nl >= sizeof c->nas[0].name || strspn(rest, "abcdefghijklmnopqrstuvwxyz0123456789") != nl ||
        (strcmp(k, "address") && strcmp(k, "secret") && strcmp(k, "coa_port")))
        return err_field(e, ERR_INVALID, "unknown_config_key", "nas",
                         "%s: NAS settings are nas.NAME.address, nas.NAME.secret and nas.NAME.coa_port (NAME: a-z 0-9), got 'nas.%s'",
                         origin, rest);
    int i;
    for (i = 0; i < c->nnas; i++)
        if (!strncmp(c->nas[i].name, rest, nl) && !c->nas[i].name[nl]) break;
    if (i == c->nnas) {
        if (c->nnas == CFG_MAX_NAS) return err_set(e, ERR_LIMIT, "%s: more than %d NASes", origin, CFG_MAX_NAS);
        memset(&c->nas[i], 0, sizeof c->nas[i]);
        snprintf(c->nas[i].name, sizeof c->nas[i].name, "%.*s", (int)nl, rest);
        c->nas[i].coa_port = 3799;
        c->nnas++;
    }
    cfg_nas *n = &c->nas[i];
    if (!strcmp(k, "coa_port")) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 1 || v > 65535 || value[0] < '0' || value[0] > '9')
            return err_field(e, ERR_INVALID, "invalid_config", "nas", "%s: nas.%s must be a port from 1 to 65535, got '%s'",
                             origin, rest, value);
        n->coa_port = v;
        return 0;
    }
    char *dst = !strcmp(k, "address") ? n->address : n->secret;
    size_t cap = !strcmp(k, "address") ? sizeof n->address : sizeof n->secret;
    if (strlen(value) >= cap)
        return err_field(e, ERR_INVALID, "invalid_config", "nas", "%s: nas.%s is too long", origin, rest);
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

int cfg_channels(const cfg *c, const char **names, int max)
{
    int n = 0;
    for (int i = 0; i < c->nchset; i++) {
        int seen = 0;
        for (int j = 0; j < n && !seen; j++) seen = !strcmp(names[j], c->chset[i].channel);
        if (!seen && n < max) names[n++] = c->chset[i].channel;
    }
    return n;
}

int cfg_set(cfg *c, const char *name, const char *value, const char *origin, err *e)
{
    if (strncmp(name, "jobs.", 5) == 0) return set_job(c, name + 5, value, origin, e);
    if (strncmp(name, "channel.", 8) == 0) return set_channel(c, name + 8, value, origin, e);
    if (strncmp(name, "nas.", 4) == 0) return set_nas(c, name + 4, value, origin, e);
    if (strncmp(name, "notify.", 7) == 0 && strchr(name + 7, '.')) return set_notify(c, name + 7, value, origin, e);
    const key *k = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(keys[i].name, name) == 0) k = &keys[i];
    if (!k) return err_field(e, ERR_INVALID, "unknown_config_key", name, "%s: unknown configuration key '%s'", origin, name);
    char *dst = (char *)c + k->off;
    if (strcmp(name, "log.level") == 0) c->log_level_set = 1;
    switch (k->type) {
    case T_STR:
        if (strlen(value) >= k->size)
            return err_field(e, ERR_INVALID, "invalid_config", name, "%s: %s is too long", origin, name);
        memcpy(dst, value, strlen(value) + 1);
        break;
    case T_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        int shape_ok = (value[0] >= '0' && value[0] <= '9') || (value[0] == '-' && value[1] >= '0' && value[1] <= '9');
        if (!shape_ok || errno || end == value || *end || v < k->min || v > k->max)
            return err_field(e, ERR_INVALID, "invalid_config", name, "%s: %s must be a whole number from %lld to %lld, got '%s'",
                             origin, name, (long long)k->min, (long long)k->max, value);
        *(int64_t *)(void *)dst = v;
        break;
    }
    case T_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") || !strcmp(value, "1"))
            *(int *)(void *)dst = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") || !strcmp(value, "0"))
            *(int *)(void *)dst = 0;
        else
            return err_field(e, ERR_INVALID, "invalid_config", name, "%s: %s must be true or false, got '%s'", origin, name, value);
        break;
    }
    return 0;
}

typedef struct ini_ctx {
    cfg *c;
    const char *path;
    err *e;
    int failed;
    int line;            /* the line the reader gave inih last */
    int failed_line;
    FILE *f;
} ini_ctx;

/* inih reads through this, so the handler knows the line it is handling. */
static char *read_line(char *str, int num, void *stream)
{
    ini_ctx *x = stream;
    char *r = fgets(str, num, x->f);
    if (r) x->line++;
    return r;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *x = user;
    if (x->failed) return 0;
    char full[160], origin[CFG_PATH + 32];
    if (section[0]) snprintf(full, sizeof full, "%s.%s", section, name);
    else snprintf(full, sizeof full, "%s", name);
    snprintf(origin, sizeof origin, "%s:%d", x->path, x->line);
    if (cfg_set(x->c, full, value, origin, x->e)) {
        x->failed_line = x->line;
        x->failed = 1;
        return 0;
    }
    return 1;
}

int cfg_load_file(cfg *c, const char *path, err *e)
{
    FILE *f = fopen(path, "r");
    if (!f) return err_set(e, ERR_IO, "cannot read config file %s: %s", path, strerror(errno));
    ini_ctx x = {.c = c, .path = path, .e = e, .f = f};
    int rc = ini_parse_stream(read_line, &x, on_ini, &x);
    fclose(f);
    /* report whichever error comes first in the file */
    if (rc > 0 && (!x.failed || rc < x.failed_line))
        return err_field(e, ERR_INVALID, "invalid_config", "", "%s:%d: not a valid config line (expected key = value or [section])", path, rc);
    if (x.failed) return e->code;
    if (rc != 0) return err_set(e, ERR_IO, "cannot read config file %s", path);
    snprintf(c->config_file, sizeof c->config_file, "%s", path);
    return 0;
}

/* BANDBILL_NS_NAME_KEY -> ns.name.key: the names of channels and NASes
 * have no '_', so the first one after the name is the dot. */
static void env_named_key(const char *ns, const char *rest, char *out, size_t n)
{
    snprintf(out, n, "%s.%s", ns, rest);
    char *us = strchr(out + strlen(ns) + 1, '_');
    if (us) *us = '.';
}

int cfg_load_env(cfg *c, char **envp, err *e)
{
    static const char prefix[] = "BANDBILL_";
    for (char **p = envp; p && *p; p++) {
        if (strncmp(*p, prefix, sizeof prefix - 1) != 0) continue;
        const char *eq = strchr(*p, '=');
        if (!eq) continue;
        char var[160];
        snprintf(var, sizeof var, "%.*s", (int)(eq - *p), *p);
        const char *rest = var + sizeof prefix - 1;
        if (strcmp(rest, "CONFIG") == 0) continue;
        /* BANDBILL_LOG_LEVEL -> log.level: try each '_' as the section break */
        char lower[160];
        size_t n = strlen(rest);
        for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)rest[i]);
        char origin[200];
        snprintf(origin, sizeof origin, "environment variable %s", var);
        int matched = 0;
        if (strncmp(lower, "channel_", 8) == 0) {
            /* BANDBILL_CHANNEL_ALIPAY_PUBLIC_KEY -> channel.alipay.public_key (channel names have no '_') */
            char ck[160];
            env_named_key("channel", lower + 8, ck, sizeof ck);
            if (cfg_set(c, ck, eq + 1, origin, e)) return e->code;
            continue;
        }
        if (strncmp(lower, "nas_", 4) == 0) {
            /* BANDBILL_NAS_BRAS1_COA_PORT -> nas.bras1.coa_port (NAS names have no '_') */
            char nk[160];
            env_named_key("nas", lower + 4, nk, sizeof nk);
            if (cfg_set(c, nk, eq + 1, origin, e)) return e->code;
            continue;
        }
        if (strncmp(lower, "jobs_", 5) == 0) {
            char job[160];
            snprintf(job, sizeof job, "jobs.%s", lower + 5);
            /* job names use '.' and '_' freely: BANDBILL_JOBS_DB_OPTIMIZE -> db.optimize or db_optimize */
            if (!sched_job_find(job + 5))
                for (char *q = job + 5; *q; q++)
                    if (*q == '_') {
                        *q = '.';
                        if (sched_job_find(job + 5)) break;
                        *q = '_';
                    }
            if (cfg_set(c, job, eq + 1, origin, e)) return e->code;
            continue;
        }
        for (size_t i = 0; i < sizeof keys / sizeof *keys && !matched; i++) {
            char want[160];
            snprintf(want, sizeof want, "%s", keys[i].name);
            for (char *q = want; *q; q++)
                if (*q == '.') *q = '_';
            if (strcmp(want, lower) == 0) {
                if (cfg_set(c, keys[i].name, eq + 1, origin, e)) return e->code;
                matched = 1;
            }
        }
        if (!matched && strncmp(lower, "notify_", 7) == 0 && strchr(lower + 7, '_')) {
            /* BANDBILL_NOTIFY_SMS_URL -> notify.sms.url (after the fixed notify.* keys; channel names have no '_') */
            char nk[160];
            env_named_key("notify", lower + 7, nk, sizeof nk);
            if (cfg_set(c, nk, eq + 1, origin, e)) return e->code;
            matched = 1;
        }
        if (!matched)
            return err_field(e, ERR_INVALID, "unknown_config_key", var, "unknown environment variable %s (see bandbill --help for the BANDBILL_* variables)", var);
    }
    return 0;
}

int cfg_split_listen(const char *listen, char *host, size_t hostn, int *port, err *e)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return err_field(e, ERR_INVALID, "invalid_config", "listen", "listen address '%s' must be HOST:PORT", listen);
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostn)
        return err_field(e, ERR_INVALID, "invalid_config", "listen", "listen address '%s' has a bad host", listen);
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return err_field(e, ERR_INVALID, "invalid_config", "listen", "listen address '%s' has a bad port", listen);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int cfg_finish(cfg *c, err *e)
{
    if (log_level_parse(c->log_level) < 0)
        return err_field(e, ERR_INVALID, "invalid_config", "log.level", "log.level must be debug, info, warn or error, got '%s'", c->log_level);
    char host[256];
    int port;
    if (cfg_split_listen(c->listen, host, sizeof host, &port, e)) return e->code;
    char zone[CFG_PATH + 64];
    struct stat st;
    snprintf(zone, sizeof zone, "/usr/share/zoneinfo/%s", c->timezone);
    if (strstr(c->timezone, "..") || c->timezone[0] == '/' || stat(zone, &st) || !S_ISREG(st.st_mode))
        return err_field(e, ERR_INVALID, "invalid_config", "timezone", "unknown time zone '%s' (expected a tz name such as Asia/Shanghai)", c->timezone);
    /* var_dir: the database's folder */
    snprintf(c->var_dir, sizeof c->var_dir, "%s", c->db);
    char *slash = strrchr(c->var_dir, '/');
    if (slash) *slash = '\0';
    else snprintf(c->var_dir, sizeof c->var_dir, ".");
    if (!c->socket[0]) snprintf(c->socket, sizeof c->socket, "%s/bandbill.sock", c->var_dir);
    if (!c->backup_dir[0]) snprintf(c->backup_dir, sizeof c->backup_dir, "%s/backups", c->var_dir);
    if (!c->keys_file[0]) snprintf(c->keys_file, sizeof c->keys_file, "%s/bandbill.key", c->var_dir);
    if (!c->audit_anchor[0]) snprintf(c->audit_anchor, sizeof c->audit_anchor, "%s/audit.anchor", c->var_dir);
    size_t pl = strlen(c->customer_prefix);
    if (pl < 1 || pl > 4 || strspn(c->customer_prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != pl)
        return err_field(e, ERR_INVALID, "invalid_config", "customer.code_prefix", "customer.code_prefix is 1-4 capital letters");
    /* a series is named by its prefix: two documents must not share one */
    static const char *const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const char *pfx[] = {c->invoice_prefix, c->credit_note_prefix};
    const char *pkey[] = {"billing.invoice_prefix", "billing.credit_note_prefix"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(pfx[i]);
        if (n < 2 || n > 6 || strspn(pfx[i], upper) != n)
            return err_field(e, ERR_INVALID, "invalid_config", pkey[i], "%s is 2-6 capital letters", pkey[i]);
    }
    if (!strcmp(c->invoice_prefix, c->credit_note_prefix))
        return err_field(e, ERR_INVALID, "invalid_config", "billing.credit_note_prefix",
                         "billing.credit_note_prefix must differ from billing.invoice_prefix: each is a series of its own");
    if (strcmp(c->radius_rate_format, "mikrotik") && strcmp(c->radius_rate_format, "huawei") &&
        strcmp(c->radius_rate_format, "h3c"))
        return err_field(e, ERR_INVALID, "invalid_config", "radius.rate_format",
                         "radius.rate_format is mikrotik, huawei or h3c, got '%s'", c->radius_rate_format);
    if (strcmp(c->radius_suspended, "reject") && strcmp(c->radius_suspended, "walled_garden"))
        return err_field(e, ERR_INVALID, "invalid_config", "radius.suspended",
                         "radius.suspended is reject or walled_garden, got '%s'", c->radius_suspended);
    for (int i = 0; i < c->nnas; i++) {
        unsigned char ip[4];
        char k[64];
        snprintf(k, sizeof k, "nas.%s", c->nas[i].name);
        if (inet_pton(AF_INET, c->nas[i].address, ip) != 1)
            return err_field(e, ERR_INVALID, "invalid_config", k, "%s.address must be the NAS's IPv4 address, got '%s'", k,
                             c->nas[i].address);
        if (!c->nas[i].secret[0])
            return err_field(e, ERR_INVALID, "invalid_config", k, "%s.secret is required: the RADIUS secret shared with the NAS", k);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->nas[j].address, c->nas[i].address))
                return err_field(e, ERR_INVALID, "invalid_config", k, "%s and nas.%s have the same address %s", k,
                                 c->nas[j].name, c->nas[i].address);
    }
    if (!c->tls_cert[0] != !c->tls_key[0])
        return err_field(e, ERR_INVALID, "invalid_config", c->tls_cert[0] ? "tls.key" : "tls.cert",
                         "tls.cert and tls.key go together: give both or neither");
    return 0;
}

const char *cfg_job_cron(const cfg *c, const char *job)
{
    for (int i = 0; i < c->njobs; i++)
        if (strcmp(c->jobs[i].name, job) == 0) return c->jobs[i].cron;
    return NULL;
}

void cfg_dump(const cfg *c, void (*emit)(void *ud, const char *key, const char *value), void *ud)
{
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *p = (const char *)c + keys[i].off;
        char tmp[64];
        if (keys[i].type == T_STR) emit(ud, keys[i].name, p);
        else if (keys[i].type == T_INT) {
            snprintf(tmp, sizeof tmp, "%lld", (long long)*(const int64_t *)(const void *)p);
            emit(ud, keys[i].name, tmp);
        } else {
            emit(ud, keys[i].name, *(const int *)(const void *)p ? "true" : "false");
        }
    }
    for (int i = 0; i < c->njobs; i++) {
        char k[64];
        snprintf(k, sizeof k, "jobs.%s", c->jobs[i].name);
        emit(ud, k, c->jobs[i].cron);
    }
    for (int i = 0; i < c->nnas; i++) {
        char k[96], port[16];
        snprintf(k, sizeof k, "nas.%s.address", c->nas[i].name);
        emit(ud, k, c->nas[i].address);
        snprintf(k, sizeof k, "nas.%s.secret", c->nas[i].name);
        emit(ud, k, c->nas[i].secret[0] ? "(set, not shown)" : "");
        snprintf(k, sizeof k, "nas.%s.coa_port", c->nas[i].name);
        snprintf(port, sizeof port, "%lld", (long long)c->nas[i].coa_port);
        emit(ud, k, port);
    }
    for (int i = 0; i < c->nchset; i++) {
        char k[96];
        snprintf(k, sizeof k, "channel.%s.%s", c->chset[i].channel, c->chset[i].key);
        /* keys themselves (an APIv3 key, a secret) are not printed; key files are */
        int secret = strstr(c->chset[i].key, "secret") || strstr(c->chset[i].key, "password") ||
                     !strcmp(c->chset[i].key, "apiv3_key");
        emit(ud, k, secret ? "(set, not shown)" : c->chset[i].value);
    }
    for (int i = 0; i < c->nntset; i++) {
        char k[96];
        snprintf(k, sizeof k, "notify.%s.%s", c->ntset[i].channel, c->ntset[i].key);
        int secret = strstr(c->ntset[i].key, "secret") || strstr(c->ntset[i].key, "password") ||
                     strstr(c->ntset[i].key, "token");
        emit(ud, k, secret ? "(set, not shown)" : c->ntset[i].value);
    }
}
