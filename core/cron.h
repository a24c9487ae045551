/* cron.h - cron expressions: parsing and the next fire time.
 *
 * Five fields, as in crontab(5): minute hour day-of-month month day-of-week.
 * Each field takes '*', numbers, ranges 'a-b', steps '*\/n' and 'a-b/n',
 * and lists 'a,b,c'; months and weekdays also take English names (jan..dec,
 * sun..sat; 0 and 7 are both Sunday). As in Vixie cron, when both
 * day-of-month and day-of-week are restricted a day matches if either does.
 * Also accepted: @yearly @annually @monthly @weekly @daily @midnight @hourly.
 *
 * Times are evaluated in the process's local time zone (set TZ before use):
 * the scheduler sets it from the configured zone. */
#ifndef BB_CRON_H
#define BB_CRON_H

#include <stdint.h>
#include <time.h>

#include "err.h"

typedef struct cron_expr {
    uint64_t minute;   /* bit n set: minute n matches (0-59) */
    uint32_t hour;     /* 0-23 */
    uint32_t mday;     /* 1-31 */
    uint16_t month;    /* 1-12 */
    uint8_t wday;      /* 0-6, Sunday = 0 */
    uint8_t mday_star; /* day-of-month field was '*' */
    uint8_t wday_star; /* day-of-week field was '*' */
} cron_expr;

/* Parses s. Returns 0 or ERR_INVALID with a message naming the bad field. */
int cron_parse(const char *s, cron_expr *out, err *e);
/* The first matching minute strictly after `after` (seconds are dropped),
 * in local time; -1 if none within the next 5 years (e.g. "0 0 30 2 *").
 * A local time that does not exist (a DST gap) is skipped; one that exists
 * twice fires once, at its first occurrence. */
time_t cron_next(const cron_expr *c, time_t after);
/* The last matching minute at or before `at`, or -1 if none in 5 years. */
time_t cron_prev(const cron_expr *c, time_t at);

#endif
