/* lua_glue.h - shared internals of the lua_*.c files. Nothing outside
 * core/lua_*.c may include this header: the rest of the core talks to Lua only
 * through lua_host.h. */
#ifndef BB_LUA_GLUE_H
#define BB_LUA_GLUE_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "lua_host.h"

#define POOL_STEP 16
#define POOL_MAX 256
#define POOL_CLASSES (POOL_MAX / POOL_STEP)
#define POOL_KEEP 4096
typedef struct pool_block { struct pool_block *next; } pool_block;

#define FNCACHE_SIZE 64
typedef struct fn_slot {
    unsigned hash;
    int ref;                 /* registry reference, 0 = empty */
    char module[48], fn[48];
} fn_slot;

struct lhost {
    lua_State *L;
    const rule_file *files;
    size_t nfiles;
    lhost_limits lim;
    size_t mem_used;
    size_t mem_published;    /* part of mem_used counted in the process total */
    int mem_error;           /* a memory error was raised (and re-raised past a pcall) */
    int64_t budget_left;     /* instructions left in the current call */
    int hook_grain;          /* instructions between two hook calls */
    int killed;              /* budget exhausted: every later instruction fails */
    int syntax;              /* the failing load was a compile error */
    const char *syntax_file; /* ... of this file */
    int enforce;             /* the memory cap applies (during a call) */
    uint32_t gen;            /* views made during a call carry it; bumped after */
    char **modules;
    size_t nmodules;
    rule_error last;
    lhost_log_fn log;
    void *log_ud;
    uint64_t calls;
    const char *cur_module;  /* the call in progress, for error reports */
    const char *cur_fn;      /* NULL while a module loads */
    fn_slot fncache[FNCACHE_SIZE];
    pool_block *pool[POOL_CLASSES];
    unsigned pool_len[POOL_CLASSES];
};

/* The host owning a state (it is the allocator's user data). */
lhost *lhost_of(lua_State *L);

/* If idx is a read-only proxy, pushes the table behind it and returns 1. */
int lh_unproxy(lua_State *L, int idx);

/* lua_value.c */
void lv_init(lua_State *L);
/* Pushes v: scalars as Lua values, arrays and objects as read-only views. */
void lv_push(lua_State *L, lhost *h, const jv *v);
int lv_is_view(lua_State *L, int idx);
/* Converts the value at idx to jv in `a`. On failure returns ERR_RULE with
 * the path of the bad part in the message. `what` names the value ("result"). */
int lv_to_jv(lua_State *L, int idx, jv_arena *a, const char *what, jv **out, err *e);
/* The same for a call's result: views made during that call may be part of
 * it (they are copied); anywhere else a view is an error. */
int lv_result_to_jv(lua_State *L, int idx, jv_arena *a, jv **out, err *e);
/* Sandbox replacements that understand views. */
int lv_sb_type(lua_State *L);
int lv_sb_next(lua_State *L);
/* bandbill.copy(v): a mutable deep copy of a view or table. */
int lv_copy(lua_State *L);

/* lua_api.c: pushes the `bandbill` helper table (unprotected). */
void lapi_push(lua_State *L);
/* Logs the arguments (joined by sep) with the caller's file:line. */
int lapi_log(lua_State *L, const char *level, char sep);

#endif
