/* fuzz_money.c - money_parse on arbitrary bytes, with round-trip checks.
 *
 * A parsed amount must format (money_format and money_format_display) into
 * text that parses back to the same number of fen, and exact ratios with
 * num == den must give the amount back under every rounding mode. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "money.h"

static void die(const char *what, int64_t fen, const char *text, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_money: %s: fen=%lld text=\"%s\"\ninput (%zu bytes): \"%.*s\"\n", what,
            (long long)fen, text, size, (int)(size > 200 ? 200 : size), (const char *)data);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    /* an exact-size copy, so that ASan sees a read past the end */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    if (size) memcpy(s, data, size);
    int64_t fen = 0;
    err e;
    err_clear(&e);
    int rc = money_parse(s, size, &fen, &e);
    free(s);
    if (rc) {
        if (rc != ERR_INVALID || e.code != rc || !e.msg[0]) die("bad error", 0, e.msg, data, size);
        return 0;
    }

    char out[MONEY_FMT_MAX];
    int64_t back;
    money_format(fen, out);
    if (strlen(out) >= MONEY_FMT_MAX) die("format too long", fen, out, data, size);
    if (money_parse(out, strlen(out), &back, &e) || back != fen) die("money_format does not parse back", fen, out, data, size);
    money_format_display(fen, out);
    if (money_parse(out, strlen(out), &back, &e) || back != fen)
        die("money_format_display does not parse back", fen, out, data, size);

    for (round_mode m = ROUND_HALF_UP; m <= ROUND_CEILING; m++) {
        int64_t r;
        if (money_ratio(fen, 7, 7, m, &r, &e) || r != fen) die("ratio(x, 7, 7) != x", fen, "", data, size);
        if (money_ratio(fen, -1, -1, m, &r, &e) || r != fen) die("ratio(x, -1, -1) != x", fen, "", data, size);
        /* a half: rounding may differ by mode but stays within one fen of x/2 */
        if (money_ratio(fen, 1, 2, m, &r, &e)) die("ratio(x, 1, 2) failed", fen, "", data, size);
        int64_t lo = fen / 2 - (fen < 0), hi = fen / 2 + (fen > 0);
        if (r < lo || r > hi) die("ratio(x, 1, 2) out of bounds", fen, "", data, size);
    }
    int64_t sum;
    if (money_add(fen, 0, &sum, &e) || sum != fen) die("x + 0 != x", fen, "", data, size);
    if (fen != INT64_MIN && (money_add(fen, -fen, &sum, &e) || sum != 0)) die("x + -x != 0", fen, "", data, size);
    if (fen < 0 && !money_add(fen, INT64_MIN, &sum, &e)) die("overflow not detected", fen, "", data, size);
    return 0;
}
