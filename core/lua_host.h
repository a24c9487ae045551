/* lua_host.h - one sandboxed Lua 5.4 state holding one loaded rule set.
 *
 * This is the only door between the core and Lua: the rest of the core
 * passes jv values in and gets jv values back, and never sees a lua_State.
 * A host is used by one thread at a time; threads that need rules build their
 * own host from the same files (same version, same behaviour).
 *
 * Every call runs under an instruction budget (a count hook that a pcall in
 * the rule cannot swallow) and inside a memory cap (a counting allocator). */
#ifndef BB_LUA_HOST_H
#define BB_LUA_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "json.h"

typedef struct lhost lhost;

typedef struct rule_file {
    char *path;      /* relative to the rules folder, '/'-separated: "lib/calendar.lua" */
    char *text;
    size_t len;
} rule_file;

typedef struct lhost_limits {
    uint64_t max_instructions;   /* per call (and per module load) */
    size_t max_memory;           /* bytes for the whole state */
} lhost_limits;

extern const lhost_limits lhost_default_limits;

/* Details of the last failed call, for logs and API error bodies. */
typedef struct rule_error {
    char rule[128];       /* "module.function" */
    char file[128];       /* "tariffs.lua" */
    int line;             /* 0 when unknown */
    char function[64];
    char kind[32];        /* runtime, syntax, budget, memory, output, not_found */
    char message[512];    /* without the file:line prefix */
    char traceback[2048];
} rule_error;

/* A rule's log line, delivered to the host's owner. */
typedef void (*lhost_log_fn)(void *ud, const char *level, const char *where, const char *msg);

/* Builds a sandbox and loads every *.lua file of `files` as a module (the
 * files stay owned by the caller and must outlive the host). Each module
 * must return a table. On error nothing is left allocated, and `detail`
 * (may be NULL) tells where loading failed. */
int lhost_open(const rule_file *files, size_t nfiles, const lhost_limits *lim,
               lhost **out, rule_error *detail, err *e);
void lhost_close(lhost *h);
void lhost_set_logger(lhost *h, lhost_log_fn fn, void *ud);

/* Calls module.fn(args...) with each argument as a read-only view of a jv.
 * The result is converted into `arena`; a nil result gives a JV_NULL.
 * On failure returns ERR_RULE (or ERR_NOTFOUND for a missing function) with
 * a located message in e, and the details in lhost_last_error(). */
int lhost_call(lhost *h, const char *module, const char *fn, const jv *const *args,
               int nargs, jv_arena *arena, jv **result, err *e);
/* 1 if module.fn exists and is a function. */
int lhost_has(lhost *h, const char *module, const char *fn);
const rule_error *lhost_last_error(const lhost *h);

/* Reads a value exported by a module (a table or scalar field, e.g. a
 * tariff's parameter schema) as jv. ERR_NOTFOUND when absent. */
int lhost_get_field(lhost *h, const char *module, const char *field, jv_arena *arena,
                    jv **out, err *e);

/* Module names in load order (owned by the host). */
size_t lhost_module_count(const lhost *h);
const char *lhost_module_name(const lhost *h, size_t i);
/* Appends the module's exported function names to `out`, one per line, sorted. */
int lhost_module_functions(lhost *h, const char *module, buf *out);

/* Examples carried by the rules: every module's `examples` list. */
typedef struct example_result {
    const char *module;
    int index;            /* 1-based position in the module's examples */
    char name[128];
    char fn[64];
    int passed;
    char detail[1024];    /* the first difference or the error */
    char file[128];       /* where to look: the error's place, or the example's */
    int line;
} example_result;
typedef void (*lhost_example_cb)(void *ud, const example_result *r);
/* Runs every example (or those of one module if `module` is not NULL),
 * calling cb for each. Sets *failed to the number that failed. Returns 0
 * unless an example is malformed beyond reporting. */
int lhost_run_examples(lhost *h, const char *module, lhost_example_cb cb, void *ud,
                       int *total, int *failed, err *e);

/* Bytes the state uses now, and across every host alive in the process. */
size_t lhost_memory(const lhost *h);
size_t lhost_memory_all(void);
/* "Lua 5.4.4" */
const char *lhost_lua_version(void);
/* Counters since the host was opened. */
uint64_t lhost_calls(const lhost *h);

#endif
