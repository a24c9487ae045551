/* money.h - integer money arithmetic. Money is always an int64 count of fen.
 *
 * This file holds arithmetic only (parsing, formatting, exact ratios with an
 * explicit rounding mode). What to multiply by what - prices, discounts, tax -
 * is decided by Lua rules, never here. */
#ifndef BB_MONEY_H
#define BB_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum {
    ROUND_HALF_UP,    /* .5 goes away from zero (the default everywhere) */
    ROUND_HALF_EVEN,  /* banker's rounding */
    ROUND_DOWN,       /* toward zero (truncate) */
    ROUND_UP,         /* away from zero */
    ROUND_FLOOR,      /* toward minus infinity */
    ROUND_CEILING     /* toward plus infinity */
} round_mode;

#define MONEY_FMT_MAX 40

/* Parses "129", "129.5", "129.50", "-0.05", "1,290.00", "¥1,290.00" into fen.
 * At most two decimals (never rounds silently); thousands separators must be
 * well placed. Returns 0 or ERR_INVALID with a message. */
int money_parse(const char *s, size_t n, int64_t *fen, err *e);
/* A payment channel's amount: "0.10" -> 10, "7" -> 700; digits with at
 * most two decimals, nothing else (no sign, separator or symbol): what a
 * channel states is never guessed at. 0, or -1. */
int money_parse_plain(const char *s, int64_t *fen);
/* "129.00", "-0.50". `out` must hold MONEY_FMT_MAX bytes. */
void money_format(int64_t fen, char *out);
/* "¥1,290.00", "-¥0.50". `out` must hold MONEY_FMT_MAX bytes. */
void money_format_display(int64_t fen, char *out);
/* round(amount * num / den) with the given mode, computed in 128 bits.
 * den must not be 0. Returns 0, or ERR_INVALID on a zero denominator or a
 * result outside int64. */
int money_ratio(int64_t amount, int64_t num, int64_t den, round_mode mode,
                int64_t *out, err *e);
/* Rounds the exact fraction num/den to an integer with the mode. */
int money_round_frac(__int128 num, __int128 den, round_mode mode, int64_t *out);
/* Parses a mode name: "half_up", "half_even", "down", "up", "floor",
 * "ceiling". Returns 0 or -1. */
int money_round_mode(const char *name, round_mode *mode);
/* a + b and a - b with overflow detection. */
int money_add(int64_t a, int64_t b, int64_t *out, err *e);

#endif
