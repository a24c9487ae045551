/* textdiff.h - line diffs in unified format, for `bandbill rules diff`. */
#ifndef BB_TEXTDIFF_H
#define BB_TEXTDIFF_H

#include <stddef.h>

#include "buf.h"

/* Appends a unified diff (3 lines of context, "@@ -a,b +c,d @@" hunks) of
 * old -> new to out, with "--- old_name" / "+++ new_name" headers. Appends
 * nothing when the texts are equal. Lines are split on '\n'; a missing final
 * newline is marked "\ No newline at end of file" as diff(1) does.
 * Returns 0 or ERR_NOMEM. Inputs of up to 100,000 lines each. */
int textdiff_unified(const char *old_name, const char *old_text, size_t old_len,
                     const char *new_name, const char *new_text, size_t new_len, buf *out);

#endif
