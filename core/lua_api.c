/* lua_api.c - the `bandbill` helper module that rules see.
 *
 * Integer-exact helpers for analysts: money (fen) parsing, formatting,
 * ratios with explicit rounding, proration and allocation; calendar dates as
 * "YYYY-MM-DD" strings; logging. A float where money is expected is an error,
 * never silently rounded. Documented for analysts in docs/RULES.md. */
#include "lua_glue.h"

#include <stdio.h>
#include <string.h>

#include "date.h"
#include "money.h"

/* ---------------------------------------------------------------- args */

static int64_t arg_fen(lua_State *L, int idx, const char *what)
{
    int t = lua_type(L, idx);
    if (t != LUA_TNUMBER)
        return luaL_error(L, "%s must be an integer count of fen, got %s", what, lua_typename(L, t));
    if (!lua_isinteger(L, idx))
        return luaL_error(L, "%s must be an integer count of fen, got the float %f", what,
                          (LUAI_UACNUMBER)lua_tonumber(L, idx));
    return (int64_t)lua_tointeger(L, idx);
}

static int64_t arg_int(lua_State *L, int idx, const char *what)
{
    int t = lua_type(L, idx);
    if (t != LUA_TNUMBER || !lua_isinteger(L, idx))
        return luaL_error(L, "%s must be an integer, got %s", what,
                          t == LUA_TNUMBER ? "a float" : lua_typename(L, t));
    return (int64_t)lua_tointeger(L, idx);
}

/* A list: a table, or a list from the context (a read-only view). */
static void arg_list(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE && !lv_is_view(L, idx)) luaL_typeerror(L, idx, "list");
}

static round_mode arg_mode(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return ROUND_HALF_UP;
    const char *name = luaL_checkstring(L, idx);
    round_mode m;
    if (money_round_mode(name, &m))
        luaL_error(L, "unknown rounding mode '%s' (half_up, half_even, down, up, floor, ceiling)", name);
    return m;
}

static int32_t arg_date(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    int32_t d;
    err e;
    if (date_parse(s, n, &d, &e)) return luaL_error(L, "%s", e.msg);
    return d;
}

static void push_date(lua_State *L, int32_t d)
{
    char out[11];
    date_format(d, out);
    lua_pushlstring(L, out, 10);
}

static int push_ratio(lua_State *L, int64_t amount, int64_t num, int64_t den, round_mode m)
{
    int64_t out;
    err e;
    if (money_ratio(amount, num, den, m, &out, &e)) return luaL_error(L, "%s", e.msg);
    lua_pushinteger(L, (lua_Integer)out);
    return 1;
}

/* ---------------------------------------------------------------- money */

static int m_parse(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int64_t fen;
    err e;
    if (money_parse(s, n, &fen, &e)) return luaL_error(L, "%s", e.msg);
    lua_pushinteger(L, (lua_Integer)fen);
    return 1;
}

static int m_format(lua_State *L)
{
    char out[MONEY_FMT_MAX];
    money_format(arg_fen(L, 1, "amount"), out);
    lua_pushstring(L, out);
    return 1;
}

static int m_display(lua_State *L)
{
    char out[MONEY_FMT_MAX];
    money_format_display(arg_fen(L, 1, "amount"), out);
    lua_pushstring(L, out);
    return 1;
}

static int m_check(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "amount");
    arg_fen(L, 1, what);
    lua_settop(L, 1);
    return 1;
}

/* ratio(amount, num, den [, mode]) = round(amount * num / den) */
static int m_ratio(lua_State *L)
{
    int64_t amount = arg_fen(L, 1, "amount");
    int64_t num = arg_int(L, 2, "numerator");
    int64_t den = arg_int(L, 3, "denominator");
    if (den == 0) return luaL_error(L, "ratio with a zero denominator");
    return push_ratio(L, amount, num, den, arg_mode(L, 4));
}

/* Parses a percentage given as an integer (85) or a decimal string
 * ("8.5", "0.25") into num/den with den a power of ten. */
static void arg_percent(lua_State *L, int idx, int64_t *num, int64_t *den)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        *num = arg_int(L, idx, "percent (write fractions as a string, e.g. \"8.5\")");
        *den = 100;
        return;
    }
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    int64_t v = 0, d = 100;
    int neg = 0, seen_dot = 0, digits = 0, decimals = 0;
    size_t i = 0;
    if (i < n && s[i] == '-') { neg = 1; i++; }
    for (; i < n; i++) {
        if (s[i] == '.' && !seen_dot) { seen_dot = 1; continue; }
        if (s[i] < '0' || s[i] > '9' || digits >= 15) luaL_error(L, "'%s' is not a percentage", s);
        v = v * 10 + (s[i] - '0');
        digits++;
        if (seen_dot) {
            if (++decimals > 6) luaL_error(L, "percentage '%s' has more than 6 decimals", s);
            d *= 10;
        }
    }
    if (digits == 0) luaL_error(L, "'%s' is not a percentage", s);
    *num = neg ? -v : v;
    *den = d;
}

static int m_percent(lua_State *L)
{
    int64_t amount = arg_fen(L, 1, "amount"), num, den;
    arg_percent(L, 2, &num, &den);
    return push_ratio(L, amount, num, den, arg_mode(L, 3));
}

static int m_prorate(lua_State *L)
{
    int64_t amount = arg_fen(L, 1, "amount");
    int64_t used = arg_int(L, 2, "days used");
    int64_t total = arg_int(L, 3, "days in the period");
    if (total <= 0) return luaL_error(L, "days in the period must be positive, got %d", (int)total);
    if (used < 0 || used > total)
        return luaL_error(L, "days used (%d) must be between 0 and the days in the period (%d)", (int)used, (int)total);
    return push_ratio(L, amount, used, total, arg_mode(L, 4));
}

/* allocate(amount, {w1, w2, ...}): shares proportional to the weights that
 * add up to exactly `amount` (largest remainder; ties go to the earlier). */
static int m_allocate(lua_State *L)
{
    int64_t amount = arg_fen(L, 1, "amount");
    arg_list(L, 2);
    lua_Integer n = luaL_len(L, 2);
    if (n <= 0 || n > 1000) return luaL_error(L, "allocate needs 1 to 1000 weights");
    __int128 total = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int64_t w = arg_int(L, -1, "weight");
        lua_pop(L, 1);
        if (w < 0) return luaL_error(L, "weights must not be negative");
        total += w;
    }
    if (total == 0) return luaL_error(L, "weights add up to zero");
    int64_t *share = lua_newuserdatauv(L, (size_t)n * 2 * sizeof(int64_t), 0);
    int64_t *rem = share + n;
    int64_t given = 0;
    uint64_t mag = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int64_t w = lua_tointeger(L, -1);
        lua_pop(L, 1);
        __int128 p = (__int128)mag * w;
        share[i - 1] = (int64_t)(p / total);
        rem[i - 1] = (int64_t)(p % total);
        given += share[i - 1];
    }
    int64_t left = (int64_t)mag - given;
    while (left > 0) {
        lua_Integer best = 0;
        for (lua_Integer i = 1; i < n; i++)
            if (rem[i] > rem[best]) best = i;
        share[best]++;
        rem[best] = -1;
        left--;
    }
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushinteger(L, amount < 0 ? -share[i] : share[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_sum(lua_State *L)
{
    arg_list(L, 1);
    const char *field = luaL_optstring(L, 2, NULL);
    lua_Integer n = luaL_len(L, 1);
    int64_t total = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (field) {
            lua_getfield(L, -1, field);
            lua_remove(L, -2);
        }
        int64_t v = arg_fen(L, -1, field ? field : "item");
        lua_pop(L, 1);
        if (__builtin_add_overflow(total, v, &total)) return luaL_error(L, "sum out of range");
    }
    lua_pushinteger(L, (lua_Integer)total);
    return 1;
}

/* ----------------------------------------------------------------- date */

static int d_valid(lua_State *L)
{
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    int32_t d;
    lua_pushboolean(L, s && lua_type(L, 1) == LUA_TSTRING && date_parse(s, n, &d, NULL) == 0);
    return 1;
}

static int d_ymd(lua_State *L)
{
    int y, m, d;
    date_to_ymd(arg_date(L, 1), &y, &m, &d);
    lua_pushinteger(L, y);
    lua_pushinteger(L, m);
    lua_pushinteger(L, d);
    return 3;
}

static int d_make(lua_State *L)
{
    int64_t y = arg_int(L, 1, "year"), m = arg_int(L, 2, "month"), d = arg_int(L, 3, "day");
    if (y < DATE_MIN_YEAR || y > DATE_MAX_YEAR || !date_valid((int)y, (int)m, (int)d))
        return luaL_error(L, "%d-%d-%d is not a valid date", (int)y, (int)m, (int)d);
    push_date(L, date_from_ymd((int)y, (int)m, (int)d));
    return 1;
}

static int d_add_days(lua_State *L)
{
    int32_t d = arg_date(L, 1);
    int64_t n = arg_int(L, 2, "days");
    int64_t r = (int64_t)d + n;
    int32_t lo = date_from_ymd(DATE_MIN_YEAR, 1, 1), hi = date_from_ymd(DATE_MAX_YEAR, 12, 31);
    if (r < lo || r > hi) return luaL_error(L, "date out of range");
    push_date(L, (int32_t)r);
    return 1;
}

static int d_add_months(lua_State *L)
{
    int32_t d = arg_date(L, 1), out;
    int64_t n = arg_int(L, 2, "months");
    err e;
    if (n < -120000 || n > 120000 || date_add_months(d, (int)n, &out, &e))
        return luaL_error(L, "date out of range");
    push_date(L, out);
    return 1;
}

static int d_diff(lua_State *L)
{
    int32_t a = arg_date(L, 1), b = arg_date(L, 2);
    lua_pushinteger(L, (lua_Integer)b - a);
    return 1;
}

static int d_days_in_month(lua_State *L)
{
    int y, m, d;
    if (lua_type(L, 1) == LUA_TSTRING) {
        date_to_ymd(arg_date(L, 1), &y, &m, &d);
    } else {
        y = (int)arg_int(L, 1, "year");
        m = (int)arg_int(L, 2, "month");
        if (m < 1 || m > 12) return luaL_error(L, "month must be 1 to 12, got %d", m);
    }
    lua_pushinteger(L, date_days_in_month(y, m));
    return 1;
}

static int d_is_leap(lua_State *L)
{
    int y, m, d;
    if (lua_type(L, 1) == LUA_TSTRING) date_to_ymd(arg_date(L, 1), &y, &m, &d);
    else y = (int)arg_int(L, 1, "year");
    lua_pushboolean(L, date_is_leap(y));
    return 1;
}

static int d_weekday(lua_State *L)
{
    lua_pushinteger(L, date_weekday(arg_date(L, 1)));
    return 1;
}

static int d_month_start(lua_State *L)
{
    int y, m, d;
    date_to_ymd(arg_date(L, 1), &y, &m, &d);
    push_date(L, date_from_ymd(y, m, 1));
    return 1;
}

static int d_month_end(lua_State *L)
{
    int y, m, d;
    date_to_ymd(arg_date(L, 1), &y, &m, &d);
    push_date(L, date_from_ymd(y, m, date_days_in_month(y, m)));
    return 1;
}

/* ------------------------------------------------------------------ log */

int lapi_log(lua_State *L, const char *level, char sep)
{
    lhost *h = lhost_of(L);
    int n = lua_gettop(L); /* before luaL_buffinit, which may push */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, sep);
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_Debug ar;
    char where[160] = "?";
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar))
        snprintf(where, sizeof where, "%s:%d", ar.source[0] == '@' ? ar.source + 1 : ar.short_src, ar.currentline);
    if (h->log) h->log(h->log_ud, level, where, lua_tostring(L, -1));
    return 0;
}

static int l_log(lua_State *L) { return lapi_log(L, "info", ' '); }
static int l_warn(lua_State *L) { return lapi_log(L, "warn", ' '); }

void lapi_push(lua_State *L)
{
    static const luaL_Reg money[] = {
        {"parse", m_parse}, {"format", m_format}, {"display", m_display}, {"check", m_check},
        {"ratio", m_ratio}, {"percent", m_percent}, {"prorate", m_prorate},
        {"allocate", m_allocate}, {"sum", m_sum}, {NULL, NULL},
    };
    static const luaL_Reg date[] = {
        {"valid", d_valid}, {"ymd", d_ymd}, {"make", d_make}, {"add_days", d_add_days},
        {"add_months", d_add_months}, {"diff", d_diff}, {"days_in_month", d_days_in_month},
        {"is_leap", d_is_leap}, {"weekday", d_weekday}, {"month_start", d_month_start},
        {"month_end", d_month_end}, {NULL, NULL},
    };
    lua_createtable(L, 0, 6);
    luaL_newlib(L, money);
    lua_setfield(L, -2, "money");
    luaL_newlib(L, date);
    lua_setfield(L, -2, "date");
    lua_pushcfunction(L, l_log);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, l_warn);
    lua_setfield(L, -2, "warn");
}
