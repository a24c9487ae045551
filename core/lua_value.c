/* lua_value.c - jv <-> Lua.
 *
 * Inbound, a context is not copied into Lua tables: arrays and objects are
 * pushed as small read-only "views" over the caller's jv tree. Reading is
 * zero-copy, writing is impossible, and each view carries the host's call
 * generation so a view kept past its call (in an upvalue, say) fails loudly
 * instead of reading freed memory.
 *
 * Outbound, a result is converted strictly: integers stay integers, floats
 * stay floats (and money validators refuse them), NaN and infinities,
 * functions, mixed tables and invalid UTF-8 are errors naming the path. */
#include "lua_glue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lview {
    const jv *v;
    uint32_t gen;
} lview;

static const char VIEW_MT = 0;   /* registry key of the views' metatable */

#define MAX_DEPTH 64

static lview *to_view(lua_State *L, int idx)
{
    lview *p = lua_touserdata(L, idx);
    if (!p || !lua_getmetatable(L, idx)) return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &VIEW_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}

int lv_is_view(lua_State *L, int idx) { return to_view(L, idx) != NULL; }

/* For metamethods: the VM calls them only on views (the metatable is
 * protected, so a rule cannot call them on anything else), which spares the
 * metatable comparison on every field read. */
static const jv *trusted(lua_State *L, int idx, lhost **h)
{
    lview *p = lua_touserdata(L, idx);
    *h = lhost_of(L);
    if (p->gen != (*h)->gen)
        luaL_error(L, "a context record was kept after its call ended; copy what you need with bandbill.copy()");
    return p->v;
}

static const jv *checked(lua_State *L, int idx)
{
    lview *p = to_view(L, idx);
    if (!p) luaL_error(L, "record expected");
    if (p->gen != lhost_of(L)->gen)
        luaL_error(L, "a context record was kept after its call ended; copy what you need with bandbill.copy()");
    return p->v;
}

/* Pushes v; a view gets the metatable at stack index mt (0: the one in the
 * registry). */
static void push_value(lua_State *L, lhost *h, const jv *v, int mt)
{
    switch (v->kind) {
    case JV_NULL: lua_pushnil(L); return;
    case JV_BOOL: lua_pushboolean(L, v->u.b); return;
    case JV_INT: lua_pushinteger(L, (lua_Integer)v->u.i); return;
    case JV_NUM: lua_pushnumber(L, (lua_Number)v->u.num); return;
    case JV_STR: lua_pushlstring(L, v->u.str.s, v->u.str.len); return;
    case JV_ARR:
    case JV_OBJ: {
        lview *p = lua_newuserdatauv(L, sizeof *p, 0);
        p->v = v;
        p->gen = h->gen;
        if (mt) lua_pushvalue(L, mt);
        else lua_rawgetp(L, LUA_REGISTRYINDEX, &VIEW_MT);
        lua_setmetatable(L, -2);
        return;
    }
    }
    lua_pushnil(L);
}

void lv_push(lua_State *L, lhost *h, const jv *v) { push_value(L, h, v, 0); }

/* The hottest function of a rule call: every field a rule reads from its
 * context comes through here. Upvalue 1 is the views' metatable (a
 * registry lookup less for each record read). */
static int v_index(lua_State *L)
{
    lhost *h;
    const jv *v = trusted(L, 1, &h);
    const jv *r = NULL;
    if (v->kind == JV_OBJ) {
        size_t n;
        if (lua_type(L, 2) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, 2, &n);
            const jv_member *m = v->u.obj.m;
            for (size_t i = 0; i < v->u.obj.n; i++)
                if (m[i].klen == n && m[i].key[0] == k[0] && memcmp(m[i].key, k, n) == 0) {
                    r = m[i].val;
                    break;
                }
        }
    } else {
        int ok;
        lua_Integer i = lua_tointegerx(L, 2, &ok);
        if (ok && i >= 1 && (size_t)i <= v->u.arr.n) r = v->u.arr.items[i - 1];
    }
    if (!r) {
        lua_pushnil(L);
        return 1;
    }
    push_value(L, h, r, lua_upvalueindex(1));
    return 1;
}

static int v_newindex(lua_State *L)
{
    lhost *h;
    trusted(L, 1, &h);
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "the context is read-only (attempt to set '%s'); use bandbill.copy() for a mutable copy", k);
}

static int v_len(lua_State *L)
{
    lhost *h;
    const jv *v = trusted(L, 1, &h);
    lua_pushinteger(L, v->kind == JV_ARR ? (lua_Integer)v->u.arr.n : 0);
    return 1;
}

/* The iterator of pairs(view): upvalue 1 is the next position. */
static int v_iter(lua_State *L)
{
    const jv *v = checked(L, 1);
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(1));
    size_t n = jv_len(v);
    if (pos < 0 || (size_t)pos >= n) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, pos + 1);
    lua_replace(L, lua_upvalueindex(1));
    if (v->kind == JV_ARR) {
        lua_pushinteger(L, pos + 1);
        lv_push(L, lhost_of(L), v->u.arr.items[pos]);
    } else {
        lua_pushlstring(L, v->u.obj.m[pos].key, v->u.obj.m[pos].klen);
        lv_push(L, lhost_of(L), v->u.obj.m[pos].val);
    }
    return 2;
}

static int v_pairs(lua_State *L)
{
    lhost *h;
    trusted(L, 1, &h);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, v_iter, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int v_eq(lua_State *L)
{
    lview *a = to_view(L, 1), *b = to_view(L, 2);
    lua_pushboolean(L, a && b && a->v == b->v);
    return 1;
}

static int v_tostring(lua_State *L)
{
    lhost *h;
    const jv *v = trusted(L, 1, &h);
    if (v->kind == JV_ARR) lua_pushfstring(L, "record list (%d items)", (int)v->u.arr.n);
    else lua_pushfstring(L, "record (%d fields)", (int)v->u.obj.n);
    return 1;
}

void lv_init(lua_State *L)
{
    static const luaL_Reg mt[] = {
        {"__newindex", v_newindex}, {"__len", v_len},
        {"__pairs", v_pairs}, {"__eq", v_eq}, {"__tostring", v_tostring}, {NULL, NULL},
    };
    lua_createtable(L, 0, 8);
    luaL_setfuncs(L, mt, 0);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, v_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushliteral(L, "record");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &VIEW_MT);
}

/* type(v): a view is a read-only table to the rule writer. */
int lv_sb_type(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lua_type(L, 1) == LUA_TUSERDATA && to_view(L, 1)) lua_pushliteral(L, "table");
    else lua_pushstring(L, luaL_typename(L, 1));
    return 1;
}

/* next(t, k) that also walks views. */
int lv_sb_next(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TUSERDATA && to_view(L, 1)) {
        const jv *v = checked(L, 1);
        size_t pos = 0;
        if (!lua_isnoneornil(L, 2)) {
            if (v->kind == JV_ARR) {
                pos = (size_t)luaL_checkinteger(L, 2);
            } else {
                size_t n;
                const char *k = luaL_checklstring(L, 2, &n);
                for (pos = 0; pos < v->u.obj.n; pos++)
                    if (v->u.obj.m[pos].klen == n && memcmp(v->u.obj.m[pos].key, k, n) == 0) break;
                if (pos == v->u.obj.n) return luaL_error(L, "invalid key to 'next'");
                pos++;
            }
        }
        if (pos >= jv_len(v)) {
            lua_pushnil(L);
            return 1;
        }
        if (v->kind == JV_ARR) {
            lua_pushinteger(L, (lua_Integer)pos + 1);
            lv_push(L, lhost_of(L), v->u.arr.items[pos]);
        } else {
            lua_pushlstring(L, v->u.obj.m[pos].key, v->u.obj.m[pos].klen);
            lv_push(L, lhost_of(L), v->u.obj.m[pos].val);
        }
        return 2;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lh_unproxy(L, 1)) lua_replace(L, 1);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/* ---------------------------------------------------------------- copy */

static void copy_to_table(lua_State *L, const jv *v, int depth)
{
    if (depth > MAX_DEPTH) luaL_error(L, "value nested too deeply");
    luaL_checkstack(L, 4, "copy");
    if (v->kind != JV_ARR && v->kind != JV_OBJ) {
        lv_push(L, lhost_of(L), v);
        return;
    }
    if (v->kind == JV_ARR) {
        lua_createtable(L, (int)v->u.arr.n, 0);
        for (size_t i = 0; i < v->u.arr.n; i++) {
            copy_to_table(L, v->u.arr.items[i], depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    } else {
        lua_createtable(L, 0, (int)v->u.obj.n);
        for (size_t i = 0; i < v->u.obj.n; i++) {
            lua_pushlstring(L, v->u.obj.m[i].key, v->u.obj.m[i].klen);
            copy_to_table(L, v->u.obj.m[i].val, depth + 1);
            lua_rawset(L, -3);
        }
    }
}

static void copy_table(lua_State *L, int idx, int depth)
{
    if (depth > MAX_DEPTH) luaL_error(L, "table nested too deeply (a cycle?)");
    luaL_checkstack(L, 6, "copy");
    idx = lua_absindex(L, idx);
    if (lh_unproxy(L, idx)) {
        copy_table(L, -1, depth);
        lua_remove(L, -2);
        return;
    }
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        if (lua_type(L, -2) == LUA_TTABLE) {
            copy_table(L, -2, depth + 1);
        } else if (lua_type(L, -2) == LUA_TUSERDATA && to_view(L, -2)) {
            copy_to_table(L, checked(L, -2), depth + 1);
        } else {
            lua_pushvalue(L, -2);
        }
        lua_rawset(L, -5);
        lua_pop(L, 1);
    }
}

int lv_copy(lua_State *L)
{
    luaL_checkany(L, 1);
    if (lua_type(L, 1) == LUA_TUSERDATA && to_view(L, 1)) copy_to_table(L, checked(L, 1), 0);
    else if (lua_type(L, 1) == LUA_TTABLE) copy_table(L, 1, 0);
    else lua_pushvalue(L, 1);
    return 1;
}

/* ------------------------------------------------------------- Lua -> jv */

/* The path to the value being converted is kept as segments and formatted
 * only when something is wrong, so a good result costs no string work. */
typedef struct seg { const char *key; size_t klen; lua_Integer idx; } seg;

/* Lua interns short strings, so the same key or value text comes back as
 * the same pointer: one check of its UTF-8 and one arena copy serve every
 * repeat within a result (the keys of a list of lines, say). */
#define STRCACHE 32
typedef struct strcache { const char *lua; const char *copy; } strcache;

typedef struct conv {
    lua_State *L;
    jv_arena *a;
    err *e;
    const char *what;
    int views_ok;        /* converting a call's result: its views may appear */
    int depth;
    seg path[MAX_DEPTH + 1];
    strcache sc[STRCACHE];
} conv;

/* The arena copy of a Lua string, or NULL: *bad set when the text is not
 * valid UTF-8, clear when out of memory. */
static const char *take_str(conv *c, const char *s, size_t n, int *bad)
{
    strcache *e = &c->sc[((uintptr_t)s >> 4) % STRCACHE];
    *bad = 0;
    if (e->lua == s) return e->copy;
    if (!json_utf8_valid(s, n)) {
        *bad = 1;
        return NULL;
    }
    char *p = jv_strdup(c->a, s, n);
    if (p) {
        e->lua = s;
        e->copy = p;
    }
    return p;
}

static int cfail(conv *c, const char *msg)
{
    buf p = {0};
    for (int i = 0; i < c->depth; i++) {
        if (c->path[i].key) {
            if (p.len) buf_putc(&p, '.');
            buf_append(&p, c->path[i].key, c->path[i].klen > 40 ? 40 : c->path[i].klen);
        } else {
            buf_printf(&p, "[%lld]", (long long)c->path[i].idx);
        }
    }
    const char *ps = buf_cstr(&p);
    err_field(c->e, ERR_RULE, "rule_bad_output", ps, "%s%s%s: %s", c->what, ps[0] && ps[0] != '[' ? "." : "", ps, msg);
    buf_free(&p);
    return ERR_RULE;
}

static int to_jv(conv *c, int idx, jv **out);

typedef struct keyed { const char *k; size_t n; } keyed;

static int child(conv *c, int idx, const char *key, size_t klen, lua_Integer i, jv **out)
{
    seg *sg = &c->path[c->depth++];
    sg->key = key;
    sg->klen = klen;
    sg->idx = i;
    int rc = to_jv(c, idx, out);
    c->depth--;
    return rc;
}

typedef struct entry {
    keyed k;             /* k.k == NULL for a list position */
    lua_Integer i;
    jv *v;
} entry;

/* One traversal: each value is converted as lua_next reaches it, then the
 * entries are checked to form a list (1..n) or a table of named fields. */
static int table_to_jv_raw(conv *c, int idx, jv **out);

/* A read-only proxy (module data) converts as the table behind it. */
static int table_to_jv(conv *c, int idx, jv **out)
{
    lua_State *L = c->L;
    if (!lua_checkstack(L, 8)) return err_set(c->e, ERR_NOMEM, "out of Lua stack");
    if (lh_unproxy(L, idx)) {
        int rc = table_to_jv_raw(c, lua_gettop(L), out);
        lua_pop(L, 1);
        return rc;
    }
    return table_to_jv_raw(c, idx, out);
}

static int table_to_jv_raw(conv *c, int idx, jv **out)
{
    lua_State *L = c->L;
    if (c->depth >= MAX_DEPTH) return cfail(c, "tables nested too deeply (a table that contains itself?)");
    if (!lua_checkstack(L, 8)) return err_set(c->e, ERR_NOMEM, "out of Lua stack");
    /* a list built by a constructor lives in the array part: read it by
     * position, then make sure nothing follows the border */
    lua_Unsigned len = lua_rawlen(L, idx);
    if (len > 0) {
        jv *arr = jv_arr_sized(c->a, (size_t)len);
        if (!arr) return ERR_NOMEM_RET(c->e);
        for (lua_Unsigned i = 1; i <= len; i++) {
            /* {1, nil, 3} keeps its nil in the array part: still a hole */
            if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TNIL) {
                lua_pop(L, 1);
                return cfail(c, "a list with holes (nil in the middle)");
            }
            int rc = child(c, lua_gettop(L), NULL, 0, (lua_Integer)i, &arr->u.arr.items[i - 1]);
            lua_pop(L, 1);
            if (rc) return rc;
        }
        lua_pushinteger(L, (lua_Integer)len);
        if (!lua_next(L, idx)) {
            arr->u.arr.n = (size_t)len;
            *out = arr;
            return 0;
        }
        lua_pop(L, 2);
        /* something beyond the border: let the general path name the problem */
    }
    entry stackbuf[32];
    entry *ents = stackbuf;
    size_t n = 0, cap = 32, strkeys = 0;
    lua_Integer maxi = 0;
    int rc = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (n == cap) {
            size_t ncap = cap * 4;
            entry *ne = ents == stackbuf ? malloc(ncap * sizeof *ne) : realloc(ents, ncap * sizeof *ne);
            if (!ne) {
                lua_pop(L, 2);
                rc = ERR_NOMEM_RET(c->e);
                goto out;
            }
            if (ents == stackbuf) memcpy(ne, stackbuf, sizeof stackbuf);
            ents = ne;
            cap = ncap;
        }
        entry *en = &ents[n];
        if (lua_type(L, -2) == LUA_TSTRING) {
            int bad;
            const char *k = lua_tolstring(L, -2, &en->k.n); /* a string key: no conversion */
            en->k.k = take_str(c, k, en->k.n, &bad);
            en->i = 0;
            strkeys++;
            if (!en->k.k) {
                lua_pop(L, 2);
                rc = bad ? cfail(c, "a table key that is not valid UTF-8") : ERR_NOMEM_RET(c->e);
                goto out;
            }
        } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            en->k.k = NULL;
            en->i = lua_tointeger(L, -2);
            if (en->i > maxi) maxi = en->i;
        } else {
            lua_pop(L, 2);
            rc = cfail(c, "table keys must be strings or list positions 1, 2, 3...");
            goto out;
        }
        rc = child(c, lua_gettop(L), en->k.k, en->k.n, en->i, &en->v);
        lua_pop(L, 1);
        if (rc) {
            lua_pop(L, 1);
            goto out;
        }
        n++;
    }
    if (strkeys == 0) {
        if ((size_t)maxi != n) {
            rc = cfail(c, "a list with holes (nil in the middle)");
            goto out;
        }
        jv *arr = jv_arr_sized(c->a, n);
        if (!arr) {
            rc = ERR_NOMEM_RET(c->e);
            goto out;
        }
        for (size_t k = 0; k < n; k++) arr->u.arr.items[ents[k].i - 1] = ents[k].v;
        arr->u.arr.n = n;
        *out = arr;
        goto out;
    }
    if (strkeys != n) {
        rc = cfail(c, "a table mixes list items and named fields");
        goto out;
    }
    jv *obj = jv_obj_sized(c->a, n);
    if (!obj) {
        rc = ERR_NOMEM_RET(c->e);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        jv_member *m = &obj->u.obj.m[k];
        m->key = ents[k].k.k;
        m->klen = ents[k].k.n;
        m->val = ents[k].v;
    }
    obj->u.obj.n = n;
    *out = obj;
out:
    if (ents != stackbuf) free(ents);
    return rc;
}

static int to_jv(conv *c, int idx, jv **out)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: *out = jv_null(c->a); break;
    case LUA_TBOOLEAN: *out = jv_bool(c->a, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            *out = jv_int(c->a, (int64_t)lua_tointeger(L, idx));
        } else {
            lua_Number d = lua_tonumber(L, idx);
            if (isnan(d)) return cfail(c, "NaN (not a number)");
            if (isinf(d)) return cfail(c, "an infinite number");
            *out = jv_num(c->a, (double)d);
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        int bad;
        const char *s = lua_tolstring(L, idx, &n);
        const char *copy = take_str(c, s, n, &bad);
        if (bad) return cfail(c, "a string that is not valid UTF-8");
        jv *v = jv_alloc(c->a, sizeof *v);
        if (!v || !copy) return ERR_NOMEM_RET(c->e);
        v->kind = JV_STR;
        v->u.str.s = copy;
        v->u.str.len = n;
        *out = v;
        break;
    }
    case LUA_TTABLE: return table_to_jv(c, idx, out);
    case LUA_TUSERDATA: {
        lview *p = to_view(L, idx);
        if (p) {
            /* results are converted right after their call (the generation
             * has just moved on); anything older was kept past its call */
            if (!c->views_ok || p->gen + 1 != lhost_of(L)->gen)
                return cfail(c, "a context record kept from an earlier call");
            *out = jv_copy(c->a, p->v);
            break;
        }
        return cfail(c, "a userdata value");
    }
    default: {
        char msg[160];
        snprintf(msg, sizeof msg, "a %s value (only nil, booleans, numbers, strings and tables can be returned)",
                 lua_typename(L, lua_type(L, idx)));
        return cfail(c, msg);
    }
    }
    if (!*out) return ERR_NOMEM_RET(c->e);
    return 0;
}

static int convert(lua_State *L, int idx, jv_arena *a, const char *what, int views_ok, jv **out, err *e)
{
    conv c;
    c.L = L;
    c.a = a;
    c.e = e;
    c.what = what;
    c.views_ok = views_ok;
    c.depth = 0;
    memset(c.sc, 0, sizeof c.sc);
    return to_jv(&c, lua_absindex(L, idx), out);
}

int lv_to_jv(lua_State *L, int idx, jv_arena *a, const char *what, jv **out, err *e)
{
    return convert(L, idx, a, what, 0, out, e);
}

int lv_result_to_jv(lua_State *L, int idx, jv_arena *a, jv **out, err *e)
{
    return convert(L, idx, a, "result", 1, out, e);
}
