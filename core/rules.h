/* rules.h - rule sets: reading a rules folder, versions, loading and
 * checking, the live set of a process, hot reload and stored versions.
 *
 *   snapshot  the files of a rules folder, immutable, with their version
 *             (SHA-256 of the folder); shared between threads by refcount.
 *   ruleset   a snapshot loaded into a Lua host and checked (every example
 *             passed); used by one thread at a time; refcounted so that calls
 *             in flight keep the version they started with.
 *   live set  the process's current ruleset, swapped atomically by reload.
 *
 * Every subsystem calls rules through rules_call(), which counts calls and
 * errors in /metrics. */
#ifndef BB_RULES_H
#define BB_RULES_H

#include <stddef.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "json.h"
#include "lua_host.h"

#define RULES_VERSION_LEN 65

typedef struct rules_snapshot {
    int refs;                      /* atomic */
    char version[RULES_VERSION_LEN];
    char *dir;
    rule_file *files;              /* sorted by path */
    size_t nfiles;
} rules_snapshot;

typedef struct ruleset {
    int refs;                      /* atomic */
    rules_snapshot *snap;
    lhost *host;
    int examples, examples_failed;
    int64_t loaded_ms;             /* when it was built (Unix ms) */
} ruleset;

/* Limits on what a rules folder may hold. */
#define RULES_MAX_FILES 1000
#define RULES_MAX_FILE_BYTES (1u << 20)
#define RULES_MAX_TOTAL_BYTES (16u << 20)

/* Reads every regular, non-hidden file under dir (recursively). */
int rules_snapshot_read(const char *dir, rules_snapshot **out, err *e);
/* Builds a snapshot from files already in memory (copied). */
int rules_snapshot_from(const char *label, const rule_file *files, size_t n,
                        rules_snapshot **out, err *e);
rules_snapshot *rules_snapshot_ref(rules_snapshot *s);
void rules_snapshot_unref(rules_snapshot *s);
/* The version of a set of files: SHA-256 over, for each file in path order,
 * path NUL decimal-length NUL content. */
void rules_version_of(const rule_file *files, size_t n, char out[RULES_VERSION_LEN]);

/* Loads a snapshot into a fresh host. With check set, runs every example
 * and fails (ERR_RULE) on the first failing one. On failure `detail` (may
 * be NULL) holds the located error. */
int ruleset_load(rules_snapshot *snap, const lhost_limits *lim, int check, ruleset **out,
                 rule_error *detail, err *e);
/* Loads the rules of a folder with the configured limits, without running
 * their examples (a command or job that only calls them). */
int rules_load_folder(const char *dir, ruleset **out, err *e);
/* A second host for the same snapshot, with the configured limits: a
 * ruleset belongs to one thread, and a thread that works beside it needs
 * its own. Examples are not run again. */
int ruleset_twin(ruleset *rs, ruleset **out, err *e);
ruleset *ruleset_ref(ruleset *rs);
void ruleset_unref(ruleset *rs);

/* Calls "module.function" (the last dot separates the function). Counts
 * the call and its outcome in metrics. */
int rules_call(ruleset *rs, const char *name, const jv *const *args, int nargs,
               jv_arena *arena, jv **result, err *e);

/* ---- the live set ---- */
void rules_set_limits(const lhost_limits *lim);
const lhost_limits *rules_limits(void);
/* Installs rs as the live set (takes over the caller's reference). */
void rules_live_set(ruleset *rs);
/* A new reference to the live set, or NULL if none is loaded. */
ruleset *rules_live(void);
/* Drops the live set (at shutdown). */
void rules_live_clear(void);

/* Reads dir, loads, checks and - only if everything passes - makes it live.
 * The previous live set stays untouched on any failure. */
int rules_reload(const char *dir, rule_error *detail, err *e);
void rules_count_reload(int ok);

/* Writes {"version", "files": [{"path", "bytes"}]} (API and CLI share it). */
void rules_write_files(jw *w, const rules_snapshot *s);

/* ---- stored versions ---- */
/* Records the snapshot's files (if new) and a load event. */
int rules_store(db *d, const rules_snapshot *s, const char *by, const char *source, err *e);
/* Loads a stored version (a unique prefix of at least 8 hex digits works). */
int rules_stored(db *d, const char *version, rules_snapshot **out, err *e);

#endif
