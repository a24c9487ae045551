/* lua_host.c - the sandboxed Lua state, its limits and the protected call.
 *
 * Sandbox: rules run in per-module environments whose only parent is a
 * read-only table of allow-listed globals. Library tables are read-only
 * proxies of copies, so no rule can change what another rule sees. Bytecode is
 * never loaded, string.dump does not exist, the string metatable is hidden,
 * finalizers are refused (they would run outside any budget). */
#include "lua_glue.h"

#include <lualib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const lhost_limits lhost_default_limits = {
    .max_instructions = 5000000,
    .max_memory = 64u << 20,
};

#define HOOK_GRAIN 1000

static atomic_size_t g_mem_all;

/* registry keys (their addresses) */
static const char REG_MODULES = 0;   /* name -> module table (what the C side reads) */
static const char REG_PUBLIC = 0;    /* name -> its read-only proxy (what require returns) */
static const char REG_LOADING = 0;   /* name -> true while loading */
static const char REG_SANDBOX = 0;   /* the read-only globals */
static const char REG_RO_MARK = 0;   /* marker stored in read-only metatables */

lhost *lhost_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* ---------------------------------------------------------------- memory */

/* Small blocks are recycled through per-size freelists: a rule call makes
 * and drops dozens of small objects, and a freelist pop is several times
 * cheaper than malloc/free. Each list keeps at most POOL_KEEP blocks, so a
 * burst cannot pin much memory beyond the cap. */
static void *pool_get(lhost *h, size_t n)
{
    size_t c = (n - 1) / POOL_STEP;
    pool_block *b = h->pool[c];
    if (b) {
        h->pool[c] = b->next;
        h->pool_len[c]--;
        return b;
    }
    return malloc((c + 1) * POOL_STEP);
}

static void pool_put(lhost *h, void *p, size_t n)
{
    size_t c = (n - 1) / POOL_STEP;
    if (h->pool_len[c] >= POOL_KEEP) {
        free(p);
        return;
    }
    pool_block *b = p;
    b->next = h->pool[c];
    h->pool[c] = b;
    h->pool_len[c]++;
}

static void pool_drain(lhost *h)
{
    for (int c = 0; c < POOL_CLASSES; c++) {
        pool_block *b = h->pool[c];
        while (b) {
            pool_block *n = b->next;
            free(b);
            b = n;
        }
        h->pool[c] = NULL;
        h->pool_len[c] = 0;
    }
}

#define POOLED(n) ((n) > 0 && (n) <= POOL_MAX)

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lhost *h = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr) {
            if (POOLED(old)) pool_put(h, ptr, old);
            else free(ptr);
        }
        h->mem_used -= old;
        return NULL;
    }
    /* the cap binds rule code only: the host's own pushes outside a call
     * must not fail, or Lua would have no protected place to raise in */
    if (h->enforce && nsize > old && h->mem_used + (nsize - old) > h->lim.max_memory) {
        return NULL;
    }
    void *p;
    if (POOLED(nsize) || POOLED(old)) {
        if (ptr && POOLED(old) && POOLED(nsize) && (old - 1) / POOL_STEP == (nsize - 1) / POOL_STEP) {
            p = ptr; /* same size class */
        } else {
            p = POOLED(nsize) ? pool_get(h, nsize) : malloc(nsize);
            if (!p) {
                if (nsize <= old) return ptr; /* Lua requires shrinking to succeed */
                return NULL;
            }
            if (ptr) {
                memcpy(p, ptr, old < nsize ? old : nsize);
                if (POOLED(old)) pool_put(h, ptr, old);
                else free(ptr);
            }
        }
    } else {
        p = realloc(ptr, nsize);
        if (!p) {
            if (nsize <= old) return ptr;
            return NULL;
        }
    }
    h->mem_used += nsize - old; /* wraps correctly when shrinking */
    return p;
}

/* The process-wide total is published after each call and at close, not per
 * allocation: an atomic per allocation costs more than the allocation. */
static void publish_memory(lhost *h)
{
    if (h->mem_used == h->mem_published) return;
    if (h->mem_used > h->mem_published) atomic_fetch_add(&g_mem_all, h->mem_used - h->mem_published);
    else atomic_fetch_sub(&g_mem_all, h->mem_published - h->mem_used);
    h->mem_published = h->mem_used;
}

size_t lhost_memory(const lhost *h) { return h->mem_used; }
const char *lhost_lua_version(void) { return LUA_RELEASE; }
size_t lhost_memory_all(void) { return atomic_load(&g_mem_all); }
uint64_t lhost_calls(const lhost *h) { return h->calls; }

static int l_panic(lua_State *L)
{
    /* Every call runs under lua_pcall, so this is a bug in the core. */
    const char *msg = lua_tostring(L, -1);
    log_msg(LOG_ERROR, "lua_panic", "unprotected Lua error: %s", msg ? msg : "?");
    abort();
}

/* ---------------------------------------------------------------- budget */

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lhost *h = lhost_of(L);
    if (!h->killed) {
        h->budget_left -= h->hook_grain;
        if (h->budget_left > 0) return;
        h->killed = 1;
    }
    /* from now on fail at every instruction, so that a pcall in the rule
     * that caught the first error cannot run on */
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "instruction budget of %llu exceeded", (unsigned long long)h->lim.max_instructions);
}

static void arm_budget(lhost *h)
{
    h->killed = 0;
    h->syntax = 0;
    h->mem_error = 0;
    h->enforce = 1;
    h->budget_left = (int64_t)h->lim.max_instructions;
    h->hook_grain = h->lim.max_instructions < HOOK_GRAIN ? (int)h->lim.max_instructions : HOOK_GRAIN;
    if (h->hook_grain < 1) h->hook_grain = 1;
    lua_sethook(h->L, count_hook, LUA_MASKCOUNT, h->hook_grain);
}

static void disarm_budget(lhost *h)
{
    lua_sethook(h->L, NULL, 0, 0);
    h->enforce = 0;
    publish_memory(h);
}

/* ------------------------------------------------------- sandbox globals */

static int ro_newindex(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    return luaL_error(L, "attempt to modify a read-only table (field '%s')", k ? k : "?");
}

static int ro_next(lua_State *L)
{
    /* upvalue 1: the real table */
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, ro_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

static int is_protected(lua_State *L, int idx);

/* Replaces the table at the top of the stack by a read-only proxy of it;
 * tables inside it are replaced, in place, by proxies of their own. `seen`
 * (a stack index) maps originals to proxies, so a table reached twice - or
 * a table that contains itself - gets one proxy. */
static void protect_rec(lua_State *L, int seen, int depth)
{
    int t = lua_gettop(L);
    lua_pushvalue(L, t);
    if (lua_rawget(L, seen) != LUA_TNIL) {
        lua_replace(L, t);
        return;
    }
    lua_pop(L, 1);
    luaL_checkstack(L, 8, "protecting tables");
    lua_newtable(L);                   /* proxy at t + 1 */
    lua_pushvalue(L, t);
    lua_pushvalue(L, t + 1);
    lua_rawset(L, seen);
    if (depth < 64) {
        lua_pushnil(L);
        while (lua_next(L, t)) {
            if (lua_type(L, -1) == LUA_TTABLE && !is_protected(L, -1)) {
                lua_pushvalue(L, -2);  /* key */
                lua_insert(L, -2);     /* key key value */
                protect_rec(L, seen, depth + 1); /* key key proxy */
                lua_rawset(L, t);      /* key */
            } else {
                lua_pop(L, 1);
            }
        }
    }
    lua_createtable(L, 0, 7);          /* the proxy's metatable */
    lua_pushvalue(L, t);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, ro_len);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &REG_RO_MARK);
    lua_setmetatable(L, t + 1);
    lua_replace(L, t);
}

static void protect_top(lua_State *L)
{
    lua_newtable(L);
    lua_insert(L, -2);
    protect_rec(L, lua_gettop(L) - 1, 0);
    lua_remove(L, -2);
}

int lh_unproxy(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
    if (lua_rawgetp(L, -1, &REG_RO_MARK) == LUA_TNIL) {
        lua_pop(L, 2);
        return 0;
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "__index");
    lua_remove(L, -2);
    return 1;
}

static int is_protected(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return 0;
    int r = lua_rawgetp(L, -1, &REG_RO_MARK) != LUA_TNIL;
    lua_pop(L, 2);
    return r;
}

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkany(L, 2);
    luaL_checkany(L, 3);
    if (is_protected(L, 1)) return luaL_error(L, "attempt to modify a read-only table with rawset");
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

static int sb_setmetatable(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int t = lua_type(L, 2);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    lua_pushliteral(L, "__gc");
    if (t == LUA_TTABLE && lua_rawget(L, 2) != LUA_TNIL)
        return luaL_error(L, "finalizers (__gc) are not allowed in rules");
    lua_settop(L, 2);
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_setmetatable(L, 1);
    return 1;
}

static int finish_pcall(lua_State *L, int status, int base)
{
    lhost *h = lhost_of(L);
    /* limits are not the rule's to catch: a memory error re-raised here
     * arrives as a plain runtime error, so remember what it was */
    if (status == LUA_ERRMEM) h->mem_error = 1;
    if (status != LUA_OK && (h->killed || h->mem_error)) return lua_error(L);
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, base);
    return lua_gettop(L) - base + 1;
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    return finish_pcall(L, status, 1);
}

/* Wraps the rule's message handler: once a limit is hit the handler is not
 * run at all (it would run inside the count hook, where no hook can stop
 * it), the error just passes through. */
static int xpcall_handler(lua_State *L)
{
    lhost *h = lhost_of(L);
    if (h->killed || h->mem_error) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);    /* the wrapped handler at 2 */
    lua_pushvalue(L, 1);  /* f */
    lua_copy(L, 2, 1);    /* handler at 1 */
    lua_replace(L, 2);    /* f at 2 */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
    return finish_pcall(L, status, 2);
}

/* print() goes to the log, as rules have no standard output */
static int sb_print(lua_State *L) { return lapi_log(L, "info", '\t'); }

/* ----------------------------------------------------------------- require */

static int valid_module_name(const char *s, size_t n)
{
    if (n == 0 || n > 100 || s[0] == '.' || s[n - 1] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.' && s[i + 1] == '.') return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static const rule_file *find_file(lhost *h, const char *name)
{
    char path[128];
    size_t n = strlen(name);
    if (n + 5 > sizeof path) return NULL;
    for (size_t i = 0; i < n; i++) path[i] = name[i] == '.' ? '/' : name[i];
    memcpy(path + n, ".lua", 5);
    for (size_t i = 0; i < h->nfiles; i++)
        if (strcmp(h->files[i].path, path) == 0) return &h->files[i];
    return NULL;
}

/* require(name): modules come from the rule set's own files, nowhere else. */
static int sb_require(lua_State *L)
{
    lhost *h = lhost_of(L);
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    if (!valid_module_name(name, n))
        return luaL_error(L, "invalid module name '%s' (modules are names like 'lib.calendar' inside the rules folder)", name);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_PUBLIC);
    if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
    lua_pop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_MODULES);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_LOADING);
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return luaL_error(L, "circular require of module '%s'", name);
    lua_pop(L, 1);
    const rule_file *f = find_file(h, name);
    if (!f) return luaL_error(L, "module '%s' not found in the rules folder", name);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, name);      /* loading[name] = true */
    char chunk[160];
    snprintf(chunk, sizeof chunk, "@%s", f->path);
    if (luaL_loadbufferx(L, f->text, f->len, chunk, "t") != LUA_OK) {
        h->syntax = 1;
        h->syntax_file = f->path;
        return lua_error(L);
    }
    /* a fresh environment per module, inheriting the read-only globals */
    lua_createtable(L, 0, 8);
    lua_createtable(L, 0, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_SANDBOX);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_setupvalue(L, -2, 1);       /* _ENV */
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
        return luaL_error(L, "module '%s' (%s) must return a table of functions, returned %s", name,
                          f->path, luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, name);      /* modules[name] = M */
    lua_pushnil(L);
    lua_setfield(L, -3, name);      /* loading[name] = nil */
    /* what a module exports is read-only to every other module: its
     * nested tables become proxies in place, and require() hands out a
     * proxy of the module table itself */
    lua_pushvalue(L, -1);
    protect_top(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_PUBLIC);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);      /* public[name] = proxy */
    lua_pop(L, 1);
    return 1;
}

/* -------------------------------------------------------- error handling */

static void set_error(lhost *h, const char *kind)
{
    rule_error *r = &h->last;
    memset(r, 0, sizeof *r);
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    if (h->cur_fn) snprintf(r->rule, sizeof r->rule, "%s.%s", h->cur_module, h->cur_fn);
    else if (h->cur_module) snprintf(r->rule, sizeof r->rule, "%s (loading)", h->cur_module);
}

/* Message handler: finds the rule's own location on the stack, keeps a
 * traceback, and returns the bare message. */
static int msgh(lua_State *L)
{
    lhost *h = lhost_of(L);
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = luaL_tolstring(L, 1, NULL);
    rule_error *r = &h->last;
    set_error(h, h->killed ? "budget" : h->syntax ? "syntax" : "runtime");
    lua_Debug ar;
    /* a compile error is about the file being loaded, not about the
     * require() that loaded it: its place is only in the message */
    for (int level = 1; !h->syntax && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sln", &ar)) break;
        if (ar.currentline > 0 && ar.source[0] == '@') {
            snprintf(r->file, sizeof r->file, "%s", ar.source + 1);
            r->line = ar.currentline;
            snprintf(r->function, sizeof r->function, "%s",
                     ar.name ? ar.name : (ar.what && strcmp(ar.what, "main") == 0) ? "main chunk" : "?");
            break;
        }
    }
    if (r->line == 0 && h->syntax && h->syntax_file) {
        snprintf(r->file, sizeof r->file, "%s", h->syntax_file);
        snprintf(r->function, sizeof r->function, "main chunk");
    }
    if (r->line == 0) {
        /* a syntax error names its place only in the message: "x.lua:3: ..." */
        const char *colon = strstr(msg, ".lua:");
        if (colon && colon - msg < (long)sizeof r->file - 4) {
            int line = atoi(colon + 5);
            if (line > 0) {
                snprintf(r->file, sizeof r->file, "%.*s", (int)(colon - msg) + 4, msg);
                r->line = line;
                snprintf(r->function, sizeof r->function, "main chunk");
            }
        }
    }
    /* strip the "file:line: " prefix Lua adds, we report the location apart */
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s:%d: ", r->file, r->line);
    size_t pl = strlen(prefix);
    if (r->line > 0 && strncmp(msg, prefix, pl) == 0) msg += pl;
    snprintf(r->message, sizeof r->message, "%s", msg);
    luaL_traceback(L, L, NULL, 1);
    snprintf(r->traceback, sizeof r->traceback, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, r->message);
    return 1;
}

/* Formats h->last into e. */
static int report(lhost *h, err *e)
{
    rule_error *r = &h->last;
    if ((r->function[0] == '?' || !r->function[0]) && h->cur_fn)
        snprintf(r->function, sizeof r->function, "%s", h->cur_fn);
    if (r->line > 0)
        err_field(e, ERR_RULE, "rule_error", "", "rule %s failed at %s:%d (function '%s'): %s", r->rule,
                  r->file, r->line, r->function, r->message);
    else
        err_field(e, ERR_RULE, "rule_error", "", "rule %s failed: %s", r->rule, r->message);
    return ERR_RULE;
}

static int push_member(lhost *h, const char *module, const char *name);
static int push_function(lhost *h, const char *module, const char *fn);

/* Where the function being called is defined: the best location we have
 * for failures found once it has returned (a bad result, memory). */
static void def_location(lhost *h)
{
    lua_State *L = h->L;
    if (!h->cur_fn) return;
    int t = push_function(h, h->cur_module, h->cur_fn);
    if (t != LUA_TFUNCTION) {
        if (t != LUA_TNONE) lua_pop(L, 1);
        return;
    }
    lua_Debug ar;
    lua_getinfo(L, ">S", &ar);
    snprintf(h->last.file, sizeof h->last.file, "%s", ar.source[0] == '@' ? ar.source + 1 : ar.short_src);
    h->last.line = ar.linedefined;
    snprintf(h->last.function, sizeof h->last.function, "%s", h->cur_fn);
}

/* Runs the function below `nargs` arguments at the top of the stack with
 * the budget armed. Leaves one result on success. The message handler sits
 * at stack index 1 for the whole life of the state. */
static int protected_call(lhost *h, int nargs, err *e)
{
    lua_State *L = h->L;
    arm_budget(h);
    int st = lua_pcall(L, nargs, 1, 1);
    disarm_budget(h);
    h->gen++;
    if (st == LUA_OK) return 0;
    if (st == LUA_ERRMEM || (h->mem_error && !h->killed)) {
        set_error(h, "memory");
        def_location(h);
        if (h->lim.max_memory % (1u << 20) == 0)
            snprintf(h->last.message, sizeof h->last.message, "memory limit of %zu MiB exceeded", h->lim.max_memory >> 20);
        else
            snprintf(h->last.message, sizeof h->last.message, "memory limit of %zu KiB exceeded", h->lim.max_memory >> 10);
    } else if (h->killed) {
        snprintf(h->last.kind, sizeof h->last.kind, "budget");
        /* keep a message that says what spent the budget (a library call) */
        if (!strstr(h->last.message, "instruction budget"))
            snprintf(h->last.message, sizeof h->last.message, "instruction budget of %llu exceeded",
                     (unsigned long long)h->lim.max_instructions);
    }
    lua_pop(L, 1);
    lua_gc(L, LUA_GCCOLLECT);
    return report(h, e);
}

/* ----------------------------------------------------------------- opening */

/* --------------------------------------------------- work inside C calls
 *
 * The count hook sees VM instructions only: a library function can loop in
 * C for as long as its arguments say (table.move over 2^62 slots, a pattern
 * that backtracks over a long string). Such functions are wrapped to charge
 * their worst-case work to the call's budget before they run. */

enum { COST_PATTERN, COST_MOVE, COST_SHIFT, COST_SORT, COST_LEN };

static void charge(lua_State *L, lua_Unsigned units, const char *what)
{
    lhost *h = lhost_of(L);
    if (!h->enforce) return;
    if (units < (lua_Unsigned)h->budget_left) {
        h->budget_left -= (int64_t)units;
        return;
    }
    h->killed = 1;
    h->budget_left = 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "instruction budget of %llu exceeded by %s", (unsigned long long)h->lim.max_instructions, what);
}

static lua_Unsigned sat_mul(lua_Unsigned a, lua_Unsigned b)
{
    return a && b > (lua_Unsigned)-1 / a ? (lua_Unsigned)-1 : a * b;
}

/* Worst-case steps of a Lua pattern over a subject: every repetition
 * (* + - ?) can backtrack over the whole subject, and an unanchored search
 * restarts at every position: (len + 1) ^ (repetitions + 1). */
static lua_Unsigned pattern_cost(const char *p, size_t pl, size_t sl)
{
    int reps = 0, anchored = pl > 0 && p[0] == '^';
    for (size_t i = anchored; i < pl; i++) {
        char ch = p[i];
        if (ch == '%') {
            i++;
            if (i < pl && p[i] == 'b') i += 2;
            continue;
        }
        if (ch == '[') {
            i++;
            if (i < pl && p[i] == '^') i++;
            do {
                if (i < pl && p[i] == '%') i++;
                i++;
            } while (i < pl && p[i] != ']');
            continue;
        }
        if (i > 0 && (ch == '*' || ch == '+' || ch == '-' || ch == '?')) reps++;
    }
    lua_Unsigned cost = 1, base = (lua_Unsigned)sl + 1;
    for (int k = 0; k < reps + !anchored && cost != (lua_Unsigned)-1; k++) cost = sat_mul(cost, base);
    return sat_mul(cost, 1 + pl / 16);
}

static int charged(lua_State *L)
{
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    lua_Unsigned cost = 1;
    const char *what = "a library call";
    switch (kind) {
    case COST_PATTERN: {
        size_t sl = 0, pl = 0;
        if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) lua_tolstring(L, 1, &sl);
        const char *p = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &pl) : "";
        cost = pattern_cost(p, pl, sl);
        what = "a string pattern that can backtrack too much over this string (simplify the pattern)";
        break;
    }
    case COST_MOVE: { /* table.move(a1, f, e, t [,a2]) */
        lua_Integer f = luaL_optinteger(L, 2, 1), e = luaL_optinteger(L, 3, 0);
        cost = e >= f ? (lua_Unsigned)e - (lua_Unsigned)f + 1 : 1;
        what = "table.move over that many elements";
        break;
    }
    case COST_SHIFT: /* table.insert / table.remove shift the list */
    case COST_SORT:
    case COST_LEN: { /* table.concat / table.unpack walk it */
        lua_Unsigned n = lua_type(L, 1) == LUA_TTABLE ? lua_rawlen(L, 1) : 1;
        if (kind == COST_LEN && lua_gettop(L) >= 3 && lua_isinteger(L, 3)) {
            lua_Integer i = luaL_optinteger(L, 2, 1), j = lua_tointeger(L, 3);
            n = j >= i ? (lua_Unsigned)j - (lua_Unsigned)i + 1 : 1;
        }
        cost = n + 1;
        if (kind == COST_SORT) {
            lua_Unsigned lg = 1;
            while ((1ull << lg) < n && lg < 63) lg++;
            cost = sat_mul(n + 1, lg);
        }
        break;
    }
    }
    charge(L, cost, what);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void wrap_costly(lua_State *L, const char *lib)
{
    static const struct { const char *lib, *fn; int kind; } costly[] = {
        {LUA_STRLIBNAME, "find", COST_PATTERN}, {LUA_STRLIBNAME, "match", COST_PATTERN},
        {LUA_STRLIBNAME, "gmatch", COST_PATTERN}, {LUA_STRLIBNAME, "gsub", COST_PATTERN},
        {LUA_TABLIBNAME, "move", COST_MOVE}, {LUA_TABLIBNAME, "insert", COST_SHIFT},
        {LUA_TABLIBNAME, "remove", COST_SHIFT}, {LUA_TABLIBNAME, "sort", COST_SORT},
        {LUA_TABLIBNAME, "concat", COST_LEN}, {LUA_TABLIBNAME, "unpack", COST_LEN},
    };
    for (size_t i = 0; i < sizeof costly / sizeof *costly; i++) {
        if (strcmp(costly[i].lib, lib) != 0) continue;
        lua_getfield(L, -1, costly[i].fn);
        lua_pushinteger(L, costly[i].kind);
        lua_pushcclosure(L, charged, 2);
        lua_setfield(L, -2, costly[i].fn);
    }
}

static void copy_lib(lua_State *L, const char *name, lua_CFunction open, const char *const *drop)
{
    luaL_requiref(L, name, open, 0);   /* the real library table */
    for (; drop && *drop; drop++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *drop);
    }
    /* in the real table too: ("x"):find(p) reaches it through the string metatable */
    wrap_costly(L, name);
    lua_newtable(L);                   /* a copy for the rules */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, -2);
}

static int open_sandbox(lua_State *L)
{
    static const char *const base_keep[] = {
        "assert", "error", "ipairs", "rawequal", "rawget", "rawlen", "select",
        "tonumber", "tostring", "_VERSION", NULL};
    static const char *const string_drop[] = {"dump", NULL};
    static const char *const math_drop[] = {"random", "randomseed", NULL};

    lua_newtable(L);                   /* the sandbox globals G */
    int g = lua_gettop(L);
    luaL_requiref(L, "_G", luaopen_base, 0);
    for (const char *const *k = base_keep; *k; k++) {
        lua_getfield(L, -1, *k);
        lua_setfield(L, g, *k);
    }
    lua_pop(L, 1);
    /* the real globals table must hold nothing a rule could reach: rules
     * never see it, but be thorough */
    static const struct { const char *name; lua_CFunction fn; } repl[] = {
        {"rawset", sb_rawset}, {"setmetatable", sb_setmetatable}, {"pcall", sb_pcall},
        {"xpcall", sb_xpcall}, {"print", sb_print}, {"require", sb_require},
        {"type", lv_sb_type}, {"next", lv_sb_next},
    };
    for (size_t i = 0; i < sizeof repl / sizeof *repl; i++) {
        lua_pushcfunction(L, repl[i].fn);
        lua_setfield(L, g, repl[i].name);
    }
    /* getmetatable honours __metatable; every metatable we hand out sets it */
    lua_getglobal(L, "getmetatable");
    lua_setfield(L, g, "getmetatable");
    lua_getglobal(L, "pairs");
    lua_setfield(L, g, "pairs");

    copy_lib(L, LUA_STRLIBNAME, luaopen_string, string_drop);
    protect_top(L);
    lua_setfield(L, g, "string");
    copy_lib(L, LUA_TABLIBNAME, luaopen_table, NULL);
    protect_top(L);
    lua_setfield(L, g, "table");
    copy_lib(L, LUA_MATHLIBNAME, luaopen_math, math_drop);
    protect_top(L);
    lua_setfield(L, g, "math");
    copy_lib(L, LUA_UTF8LIBNAME, luaopen_utf8, NULL);
    protect_top(L);
    lua_setfield(L, g, "utf8");
    lapi_push(L);
    lua_pushcfunction(L, lv_copy);
    lua_setfield(L, -2, "copy");
    protect_top(L);
    lua_setfield(L, g, "bandbill");

    /* hide the string metatable: ("").x would otherwise reach the real table */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    /* G itself read-only */
    lua_pushvalue(L, g);
    protect_top(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &REG_SANDBOX);
    lua_settop(L, g - 1);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &REG_MODULES);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &REG_PUBLIC);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &REG_LOADING);
    lv_init(L);
    return 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int lhost_open(const rule_file *files, size_t nfiles, const lhost_limits *lim, lhost **out,
               rule_error *detail, err *e)
{
    *out = NULL;
    if (detail) memset(detail, 0, sizeof *detail);
    lhost *h = calloc(1, sizeof *h);
    if (!h) return ERR_NOMEM_RET(e);
    h->files = files;
    h->nfiles = nfiles;
    h->lim = lim ? *lim : lhost_default_limits;
    h->L = lua_newstate(l_alloc, h);
    if (!h->L) {
        free(h);
        return ERR_NOMEM_RET(e);
    }
    lua_State *L = h->L;
    lua_atpanic(L, l_panic);
    lua_gc(L, LUA_GCGEN, 20, 100);
    lua_pushcfunction(L, open_sandbox);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        err_set(e, ERR_NOMEM, "cannot build the rule sandbox: %s", lua_tostring(L, -1));
        lhost_close(h);
        return ERR_NOMEM;
    }
    lua_settop(L, 0);
    lua_pushcfunction(L, msgh); /* stays at index 1 */
    /* module names, sorted, from the .lua files */
    h->modules = calloc(nfiles ? nfiles : 1, sizeof *h->modules);
    if (!h->modules) {
        lhost_close(h);
        return ERR_NOMEM_RET(e);
    }
    for (size_t i = 0; i < nfiles; i++) {
        if (!ends_with(files[i].path, ".lua")) continue;
        size_t n = strlen(files[i].path) - 4;
        /* "tariff.v2.lua" would become module tariff.v2 = tariff/v2.lua */
        int bad = n == 0;
        for (size_t k = 0; k < n && !bad; k++) {
            char ch = files[i].path[k];
            bad = !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    (ch == '/' && k > 0 && k + 1 < n && files[i].path[k - 1] != '/'));
        }
        if (bad) {
            err_field(e, ERR_RULE, "rule_error", files[i].path,
                      "%s: file names in the rules folder may use letters, digits and '_' only",
                      files[i].path);
            if (detail) {
                snprintf(detail->kind, sizeof detail->kind, "syntax");
                snprintf(detail->file, sizeof detail->file, "%s", files[i].path);
                snprintf(detail->message, sizeof detail->message, "%s", e ? e->msg : "bad file name");
            }
            lhost_close(h);
            return ERR_RULE;
        }
        char *name = malloc(n + 1);
        if (!name) {
            lhost_close(h);
            return ERR_NOMEM_RET(e);
        }
        for (size_t k = 0; k < n; k++) name[k] = files[i].path[k] == '/' ? '.' : files[i].path[k];
        name[n] = '\0';
        h->modules[h->nmodules++] = name;
    }
    qsort(h->modules, h->nmodules, sizeof *h->modules, cmp_str);
    for (size_t i = 0; i < h->nmodules; i++) {
        lua_pushcfunction(L, sb_require);
        lua_pushstring(L, h->modules[i]);
        h->cur_module = h->modules[i];
        h->cur_fn = NULL;
        int rc = protected_call(h, 1, e);
        h->cur_module = NULL;
        if (rc) {
            if (detail) *detail = h->last;
            lhost_close(h);
            return rc;
        }
        lua_pop(L, 1);
    }
    *out = h;
    return 0;
}

void lhost_close(lhost *h)
{
    if (!h) return;
    if (h->L) lua_close(h->L);
    pool_drain(h);
    publish_memory(h);
    for (size_t i = 0; i < h->nmodules; i++) free(h->modules[i]);
    free(h->modules);
    free(h);
}

void lhost_set_logger(lhost *h, lhost_log_fn fn, void *ud)
{
    h->log = fn;
    h->log_ud = ud;
}

const rule_error *lhost_last_error(const lhost *h) { return &h->last; }
size_t lhost_module_count(const lhost *h) { return h->nmodules; }
const char *lhost_module_name(const lhost *h, size_t i) { return i < h->nmodules ? h->modules[i] : NULL; }

/* Functions are looked up once by name and then kept as registry
 * references: a call then costs one array read instead of three hash reads. */
static unsigned fn_hash(const char *module, const char *fn)
{
    unsigned x = 2166136261u;
    for (const char *p = module; *p; p++) x = (x ^ (unsigned char)*p) * 16777619u;
    x = (x ^ '.') * 16777619u;
    for (const char *p = fn; *p; p++) x = (x ^ (unsigned char)*p) * 16777619u;
    return x;
}

static int push_function(lhost *h, const char *module, const char *fn)
{
    unsigned hv = fn_hash(module, fn);
    fn_slot *s = &h->fncache[hv % FNCACHE_SIZE];
    if (s->ref && s->hash == hv && strcmp(s->module, module) == 0 && strcmp(s->fn, fn) == 0) {
        lua_rawgeti(h->L, LUA_REGISTRYINDEX, s->ref);
        return LUA_TFUNCTION;
    }
    int t = push_member(h, module, fn);
    if (t != LUA_TFUNCTION || strlen(module) >= sizeof s->module || strlen(fn) >= sizeof s->fn) return t;
    if (s->ref) luaL_unref(h->L, LUA_REGISTRYINDEX, s->ref);
    lua_pushvalue(h->L, -1);
    s->ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
    s->hash = hv;
    strcpy(s->module, module);
    strcpy(s->fn, fn);
    return t;
}

/* Pushes modules[module][name]; returns its type (LUA_TNONE if no module). */
static int push_member(lhost *h, const char *module, const char *name)
{
    lua_State *L = h->L;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_MODULES);
    if (lua_getfield(L, -1, module) != LUA_TTABLE) {
        lua_pop(L, 2);
        return LUA_TNONE;
    }
    /* raw: C never runs a rule's metamethods outside a protected call */
    lua_pushstring(L, name);
    int t = lua_rawget(L, -2);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return t;
}

/* t[key] for tables the rules wrote (examples): raw, through read-only
 * proxies, so no metamethod of a rule ever runs outside a protected call. */
static int raw_field(lua_State *L, int t, const char *key)
{
    t = lua_absindex(L, t);
    if (lua_type(L, t) != LUA_TTABLE) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    int proxied = lh_unproxy(L, t);
    lua_pushstring(L, key);
    int type = lua_rawget(L, proxied ? -2 : t);
    if (proxied) lua_remove(L, -2);
    return type;
}

static int raw_index(lua_State *L, int t, lua_Integer i)
{
    t = lua_absindex(L, t);
    int proxied = lh_unproxy(L, t);
    int type = lua_rawgeti(L, proxied ? -1 : t, i);
    if (proxied) lua_remove(L, -2);
    return type;
}

static lua_Unsigned raw_len(lua_State *L, int t)
{
    t = lua_absindex(L, t);
    int proxied = lh_unproxy(L, t);
    lua_Unsigned n = lua_rawlen(L, proxied ? -1 : t);
    if (proxied) lua_pop(L, 1);
    return n;
}

int lhost_has(lhost *h, const char *module, const char *fn)
{
    int t = push_member(h, module, fn);
    if (t != LUA_TNONE) lua_pop(h->L, 1);
    return t == LUA_TFUNCTION;
}

int lhost_call(lhost *h, const char *module, const char *fn, const jv *const *args, int nargs,
               jv_arena *arena, jv **result, err *e)
{
    lua_State *L = h->L;
    int base = lua_gettop(L);
    h->cur_module = module;
    h->cur_fn = fn;
    int t = push_function(h, module, fn);
    int rc;
    if (t != LUA_TFUNCTION) {
        lua_settop(L, base);
        set_error(h, "not_found");
        snprintf(h->last.message, sizeof h->last.message, "%s",
                 t == LUA_TNONE ? "no such module in the rules folder" : "the module has no such function");
        rc = err_field(e, ERR_NOTFOUND, "rule_not_found", "", "rule %s.%s not found: %s", module, fn, h->last.message);
        goto done;
    }
    if (!lua_checkstack(L, nargs + 8)) {
        lua_settop(L, base);
        rc = ERR_NOMEM_RET(e);
        goto done;
    }
    for (int i = 0; i < nargs; i++) lv_push(L, h, args[i]);
    h->calls++;
    rc = protected_call(h, nargs, e);
    if (rc == 0) {
        err conv;
        rc = lv_result_to_jv(L, -1, arena, result, &conv);
        if (rc) {
            set_error(h, "output");
            def_location(h);
            snprintf(h->last.message, sizeof h->last.message, "returned an invalid value: %s", conv.msg);
            rc = report(h, e);
        }
    }
    lua_settop(L, base);
done:
    h->cur_module = h->cur_fn = NULL;
    return rc;
}

int lhost_get_field(lhost *h, const char *module, const char *field, jv_arena *arena, jv **out, err *e)
{
    lua_State *L = h->L;
    int base = lua_gettop(L);
    int t = push_member(h, module, field);
    if (t == LUA_TNONE || t == LUA_TNIL) {
        lua_settop(L, base);
        return err_set(e, ERR_NOTFOUND, "%s.%s is not defined", module, field);
    }
    char what[160];
    snprintf(what, sizeof what, "%s.%s", module, field);
    int rc = lv_to_jv(L, -1, arena, what, out, e);
    lua_settop(L, base);
    return rc;
}

int lhost_module_functions(lhost *h, const char *module, buf *out)
{
    lua_State *L = h->L;
    int base = lua_gettop(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &REG_MODULES);
    if (lua_getfield(L, -1, module) != LUA_TTABLE) {
        lua_settop(L, base);
        return ERR_NOTFOUND;
    }
    char *names[256];
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -1) == LUA_TFUNCTION && lua_type(L, -2) == LUA_TSTRING && n < 256)
            names[n++] = strdup(lua_tostring(L, -2));
        lua_pop(L, 1);
    }
    lua_settop(L, base);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (!names[i]) rc = ERR_NOMEM;
    if (!rc) {
        qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && !rc; i++) rc = buf_printf(out, "%s\n", names[i]);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    return rc;
}

/* ---------------------------------------------------------------- examples */

static void example_text(lua_State *L, int ex, const char *key, char *out, size_t n)
{
    out[0] = '\0';
    if (raw_field(L, ex, key) == LUA_TSTRING) snprintf(out, n, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* Lua cannot tell where a table was written, so an example is found in its
 * file's text: by its name, else as the index-th `fn =` after `examples`. */
static void example_location(lhost *h, const char *module, example_result *r)
{
    const rule_file *f = find_file(h, module);
    if (!f) return;
    snprintf(r->file, sizeof r->file, "%s", f->path);
    const char *text = f->text, *at = NULL;
    if (r->name[0]) {
        char q1[160], q2[160];
        snprintf(q1, sizeof q1, "\"%s\"", r->name);
        snprintf(q2, sizeof q2, "'%s'", r->name);
        at = strstr(text, q1);
        if (!at) at = strstr(text, q2);
    }
    if (!at) {
        const char *p = strstr(text, "examples");
        for (int k = 0; p && k < r->index; k++) {
            p = strstr(p + 1, "fn");
            while (p && !(p[2] == ' ' || p[2] == '=')) p = strstr(p + 1, "fn");
        }
        at = p;
    }
    if (!at) return;
    int line = 1;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    r->line = line;
}

static int run_example(lhost *h, const char *module, int ex, example_result *r, jv_arena *a)
{
    lua_State *L = h->L;
    err e;
    err_clear(&e);
    example_text(L, ex, "name", r->name, sizeof r->name);
    example_text(L, ex, "fn", r->fn, sizeof r->fn);
    if (!r->fn[0]) {
        snprintf(r->detail, sizeof r->detail, "example has no 'fn' (the function it calls)");
        return 0;
    }
    if (!lhost_has(h, module, r->fn)) {
        snprintf(r->detail, sizeof r->detail, "example calls %s.%s, which does not exist", module, r->fn);
        return 0;
    }
    /* arguments: `args` (a list) or `input` (one argument) */
    const jv *args[8];
    int nargs = 0;
    jv *conv;
    if (raw_field(L, ex, "args") == LUA_TTABLE) {
        if (lv_to_jv(L, -1, a, "args", &conv, &e) || conv->kind != JV_ARR || conv->u.arr.n > 8) {
            lua_pop(L, 1);
            snprintf(r->detail, sizeof r->detail, "example 'args' must be a list of at most 8 values%s%s",
                     e.msg[0] ? ": " : "", e.msg);
            return 0;
        }
        for (size_t i = 0; i < conv->u.arr.n; i++) args[nargs++] = conv->u.arr.items[i];
    }
    lua_pop(L, 1);
    if (nargs == 0 && raw_field(L, ex, "input") != LUA_TNIL) {
        if (lv_to_jv(L, -1, a, "input", &conv, &e)) {
            lua_pop(L, 1);
            snprintf(r->detail, sizeof r->detail, "example 'input': %s", e.msg);
            return 0;
        }
        args[nargs++] = conv;
        lua_pop(L, 1);
    } else if (nargs == 0) {
        lua_pop(L, 1);
    }
    char want_err[256];
    example_text(L, ex, "expect_error", want_err, sizeof want_err);
    jv *expect = NULL;
    if (!want_err[0]) {
        int t = raw_field(L, ex, "expect");
        int rc = lv_to_jv(L, -1, a, "expect", &expect, &e);
        lua_pop(L, 1);
        if (rc) {
            snprintf(r->detail, sizeof r->detail, "example 'expect': %s", e.msg);
            return 0;
        }
        (void)t;
    }
    jv *got = NULL;
    int rc = lhost_call(h, module, r->fn, args, nargs, a, &got, &e);
    if (rc && !want_err[0]) {
        /* an example that should have succeeded: the error's own place */
        const rule_error *re = lhost_last_error(h);
        if (re->line > 0) {
            snprintf(r->file, sizeof r->file, "%s", re->file);
            r->line = re->line;
        }
    }
    if (want_err[0]) {
        if (rc == 0)
            snprintf(r->detail, sizeof r->detail, "expected an error containing \"%s\", the call succeeded", want_err);
        else if (!strstr(e.msg, want_err))
            snprintf(r->detail, sizeof r->detail, "expected an error containing \"%s\", got: %s", want_err, e.msg);
        else
            r->passed = 1;
        return 0;
    }
    if (rc) {
        snprintf(r->detail, sizeof r->detail, "%s", e.msg);
        return 0;
    }
    buf d = {0};
    if (jv_diff(expect, got, &d)) {
        snprintf(r->detail, sizeof r->detail, "%s", buf_cstr(&d));
    } else {
        r->passed = 1;
    }
    buf_free(&d);
    return 0;
}

int lhost_run_examples(lhost *h, const char *module, lhost_example_cb cb, void *ud, int *total,
                       int *failed, err *e)
{
    lua_State *L = h->L;
    *total = *failed = 0;
    jv_arena a;
    jv_arena_init(&a, 64u << 20);
    for (size_t m = 0; m < h->nmodules; m++) {
        const char *name = h->modules[m];
        if (module && strcmp(module, name) != 0) continue;
        int base = lua_gettop(L);
        int t = push_member(h, name, "examples");
        if (t == LUA_TNONE || t == LUA_TNIL) {
            lua_settop(L, base);
            continue;
        }
        if (t != LUA_TTABLE) {
            lua_settop(L, base);
            jv_arena_free(&a);
            return err_set(e, ERR_RULE, "%s: 'examples' must be a list of examples", name);
        }
        int list = lua_gettop(L);
        lua_Integer n = (lua_Integer)raw_len(L, list);
        for (lua_Integer i = 1; i <= n; i++) {
            example_result r;
            memset(&r, 0, sizeof r);
            r.module = name;
            r.index = (int)i;
            if (raw_index(L, list, i) != LUA_TTABLE) {
                snprintf(r.detail, sizeof r.detail, "example %lld is not a table", (long long)i);
            } else {
                run_example(h, name, lua_gettop(L), &r, &a);
            }
            if (!r.passed && !r.line) example_location(h, name, &r);
            lua_settop(L, list);
            (*total)++;
            if (!r.passed) (*failed)++;
            if (cb) cb(ud, &r);
            jv_arena_reset(&a);
        }
        lua_settop(L, base);
    }
    jv_arena_free(&a);
    return 0;
}
