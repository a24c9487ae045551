/* date.h - civil calendar dates as day numbers (days since 1970-01-01).
 *
 * Billing periods, due dates and proration all work on whole calendar days
 * in the operator's time zone; a day number makes them exact integers. */
#ifndef BB_DATE_H
#define BB_DATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define DATE_MIN_YEAR 1
#define DATE_MAX_YEAR 9999

int date_is_leap(int y);
int date_days_in_month(int y, int m);           /* 0 for an invalid month */
int date_valid(int y, int m, int d);
int32_t date_from_ymd(int y, int m, int d);     /* the arguments must be valid */
void date_to_ymd(int32_t days, int *y, int *m, int *d);
/* Strict "YYYY-MM-DD". Returns 0 or ERR_INVALID. */
int date_parse(const char *s, size_t n, int32_t *days, err *e);
/* Writes "YYYY-MM-DD" into out[11]. */
void date_format(int32_t days, char out[11]);
/* Adds months keeping the day, clamped to the end of the target month:
 * 2026-01-31 + 1 month = 2026-02-28. Returns 0 or ERR_INVALID out of range. */
int date_add_months(int32_t days, int months, int32_t *out, err *e);
int date_weekday(int32_t days);                 /* ISO: 1 = Monday .. 7 = Sunday */
/* The calendar day of a Unix time in the process time zone (see tz in cfg). */
int32_t date_of_time(time_t t);

#endif
