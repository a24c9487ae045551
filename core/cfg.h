/* cfg.h - configuration: defaults < config file < BANDBILL_* environment <
 * command-line flags.
 *
 * Every key is declared once in the table in cfg.c; the config file (INI),
 * the environment (BANDBILL_SECTION_KEY) and `--set section.key=value` all go
 * through the same setter, so they accept exactly the same keys and values.
 * An unknown key, in any of the three, is an error. */
#ifndef BB_CFG_H
#define BB_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CFG_PATH 1024
#define CFG_MAX_JOBS 32

typedef struct cfg_job {
    char name[48];
    char cron[96];          /* "off" disables the job */
} cfg_job;

/* A payment channel's setting: [channel.alipay] public_key = /etc/... */
#define CFG_MAX_CHANNEL_SETTINGS 48
typedef struct cfg_channel_setting {
    char channel[32];
    char key[48];
    char value[CFG_PATH];
} cfg_channel_setting;

/* A NAS that takes RFC 5176 CoA and Disconnect requests:
 * [nas.bras1] address = 10.0.0.1, secret = ..., coa_port = 3799 */
#define CFG_MAX_NAS 32
typedef struct cfg_nas {
    char name[32];
    char address[64];
    char secret[160];
    int64_t coa_port;
} cfg_nas;

typedef struct cfg {
    char config_file[CFG_PATH];
    char db[CFG_PATH];
    char rules[CFG_PATH];
    char listen[256];
    char socket[CFG_PATH];       /* control socket for the local CLI */
    char timezone[64];
    char log_level[16];
    char log_file[CFG_PATH];
    int log_level_set;           /* log.level was given (not the default) */
    char var_dir[CFG_PATH];      /* derived: the folder of db */
    int64_t rules_max_instructions;
    int64_t rules_max_memory_mb;
    int rules_watch;
    int64_t http_max_body_kb;
    int64_t http_timeout_s;
    int64_t http_shutdown_s;
    char keys_file[CFG_PATH];
    char plugins_dir[CFG_PATH];  /* empty: `plugins` beside the binary */
    int64_t query_after_min;     /* payments.query_after_min */
    char customer_prefix[8];     /* customer codes start with it */
    char audit_anchor[CFG_PATH]; /* the audit trail's anchor file (default: next to the database) */
    char invoice_prefix[8];      /* invoice numbers: PREFIX-YYYY-NNNNNN */
    char credit_note_prefix[8];  /* credit note numbers, a series of their own */
    int64_t session_idle_min;
    int64_t session_max_hours;
    char tls_cert[CFG_PATH];
    char tls_key[CFG_PATH];
    char backup_dir[CFG_PATH];
    int64_t backup_keep;
    cfg_job jobs[CFG_MAX_JOBS];  /* schedules set in config; others use defaults */
    int njobs;
    cfg_channel_setting chset[CFG_MAX_CHANNEL_SETTINGS]; /* checked against the channel's plugin when it opens */
    int nchset;
    /* notification delivery (notify.h): fixed keys, then notify.CHANNEL.KEY */
    int notify_dispatch;           /* the daemon runs the dispatcher */
    int64_t notify_max_attempts;
    int64_t notify_backoff_base_s, notify_backoff_factor, notify_backoff_cap_s, notify_backoff_jitter_pct;
    int64_t notify_timeout_s, notify_concurrency, notify_poll_ms;
    cfg_channel_setting ntset[CFG_MAX_CHANNEL_SETTINGS]; /* checked against the channel's driver when it opens */
    int nntset;
    /* network enforcement (netsync.h, the radius plugin): on when radius_db is set */
    char radius_db[CFG_PATH];
    char radius_rate_format[16];     /* mikrotik, huawei, h3c */
    char radius_suspended[16];       /* reject, walled_garden */
    char radius_walled_group[72];
    char radius_walled_reply[CFG_PATH];
    int64_t radius_poll_ms, radius_coa_timeout_ms, radius_coa_retries;
    cfg_nas nas[CFG_MAX_NAS];
    int nnas;
} cfg;

/* Fills in the defaults. */
void cfg_defaults(cfg *c);
/* Sets one key ("listen", "log.level", "jobs.backup") from text, validating
 * it. `origin` names where the value came from, for the error message. */
int cfg_set(cfg *c, const char *key, const char *value, const char *origin, err *e);
/* Reads an INI file. */
int cfg_load_file(cfg *c, const char *path, err *e);
/* Applies BANDBILL_* variables from envp (NULL-terminated). BANDBILL_CONFIG
 * is read by the caller (it picks the file). */
int cfg_load_env(cfg *c, char **envp, err *e);
/* Derived values and cross-checks, once everything is set. */
int cfg_finish(cfg *c, err *e);
/* The cron schedule configured for a job, or NULL when not configured. */
const char *cfg_job_cron(const cfg *c, const char *job);
/* The channels that have settings, in the order first seen; returns how
 * many (at most max). */
int cfg_channels(const cfg *c, const char **names, int max);
/* Writes every key with its current value, one "key = value" per line. */
void cfg_dump(const cfg *c, void (*emit)(void *ud, const char *key, const char *value), void *ud);

/* Splits "host:port" (or "[v6]:port"). */
int cfg_split_listen(const char *listen, char *host, size_t hostn, int *port, err *e);

#endif
