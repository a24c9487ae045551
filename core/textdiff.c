/* textdiff.c - unified line diffs (see textdiff.h).
 *
 * The edit script comes from Myers' O(ND) algorithm in its linear-space
 * form (E. W. Myers, "An O(ND) Difference Algorithm and Its Variations",
 * 1986), which finds a shortest one. When several shortest scripts exist,
 * which one is printed matters to people comparing our output with diff(1),
 * so the search visits diagonals in the same order as GNU diff and the
 * result goes through the same normalisation of ambiguous runs (see
 * shift_runs). The hunks are then byte for byte what `diff -u` prints,
 * except where GNU diff's own speed heuristics (it also drops lines that
 * are very frequent in the other file from the search) make it print a
 * longer diff than necessary; we keep the shortest one. */
#include "textdiff.h"
#include "err.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT 3

typedef struct line {
    const char *s;
    size_t len; /* includes the '\n', if the line has one */
} line;

typedef struct file {
    line *lines;
    long n;
    long *equiv;   /* equivalence class of each line: equal lines, equal class */
    char *changed; /* n flags, with a 0 sentinel at [-1] and at [n] */
    long *kept;    /* indexes of the lines that have a match in the other file */
    long nkept;
    long *seq;     /* their classes: what the Myers search runs on */
} file;

typedef struct myers {
    const long *xv, *yv;
    long *fd, *bd; /* furthest x reached on each diagonal (x - y), forward / backward */
    long too_expensive;
} myers;

typedef struct split {
    long xmid, ymid;
    int lo_minimal, hi_minimal;
} split;

typedef struct span {
    long xoff, xlim, yoff, ylim;
    int minimal;
} span;

typedef struct change {
    long line0, del, line1, ins;
} change;

static int split_lines(const char *text, size_t len, file *f)
{
    long n = 0;
    if (!text) text = ""; /* NULL + 0 is undefined behaviour */
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        n++;
        p = nl ? nl + 1 : end;
    }
    f->n = n;
    f->lines = malloc(sizeof *f->lines * (size_t)(n ? n : 1));
    f->equiv = malloc(sizeof *f->equiv * (size_t)(n ? n : 1));
    f->kept = malloc(sizeof *f->kept * (size_t)(n ? n : 1));
    f->seq = malloc(sizeof *f->seq * (size_t)(n ? n : 1));
    char *flags = calloc((size_t)n + 2, 1);
    if (!f->lines || !f->equiv || !f->kept || !f->seq || !flags) {
        free(flags);
        return ERR_NOMEM;
    }
    f->changed = flags + 1;
    p = text;
    for (long i = 0; i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        f->lines[i].s = p;
        f->lines[i].len = (size_t)(next - p);
        p = next;
    }
    return 0;
}

static void file_free(file *f)
{
    free(f->lines);
    free(f->equiv);
    free(f->kept);
    free(f->seq);
    if (f->changed) free(f->changed - 1);
}

static uint64_t hash_line(const line *l)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (size_t i = 0; i < l->len; i++) {
        h ^= (unsigned char)l->s[i];
        h *= 1099511628211u;
    }
    return h;
}

/* Numbers the distinct lines of both files, so that the search compares
 * integers instead of strings. Returns the number of classes or -1. */
static long classify(file *f0, file *f1)
{
    size_t total = (size_t)f0->n + (size_t)f1->n, cap = 16;
    while (cap < total * 2) cap *= 2;
    long *slots = malloc(sizeof *slots * cap); /* class + 1, 0 = empty */
    uint64_t *hashes = malloc(sizeof *hashes * (total ? total : 1));
    const line **reps = malloc(sizeof *reps * (total ? total : 1));
    if (!slots || !hashes || !reps) {
        free(slots);
        free(hashes);
        free(reps);
        return -1;
    }
    memset(slots, 0, sizeof *slots * cap);

    long nclass = 0;
    file *files[2] = {f0, f1};
    for (int k = 0; k < 2; k++) {
        file *f = files[k];
        for (long i = 0; i < f->n; i++) {
            const line *l = &f->lines[i];
            uint64_t h = hash_line(l);
            size_t slot = (size_t)h & (cap - 1);
            for (;;) {
                long c = slots[slot] - 1;
                if (c < 0) {
                    c = nclass++;
                    slots[slot] = c + 1;
                    hashes[c] = h;
                    reps[c] = l;
                    f->equiv[i] = c;
                    break;
                }
                if (hashes[c] == h && reps[c]->len == l->len &&
                    memcmp(reps[c]->s, l->s, l->len) == 0) {
                    f->equiv[i] = c;
                    break;
                }
                slot = (slot + 1) & (cap - 1);
            }
        }
    }
    free(slots);
    free(hashes);
    free(reps);
    return nclass;
}

/* Only lines [lo, hi) of each file are compared: the rest is a common
 * prefix and suffix. A line that occurs nowhere in the other file's part
 * cannot be part of any common subsequence, so it is marked changed right
 * away and left out of the search. This keeps two unrelated texts from
 * costing O(N*N). */
static int prune_unmatched(file *f0, file *f1, long nclass, long lo, long hi0, long hi1)
{
    long *count = calloc((size_t)(nclass ? nclass : 1) * 2, sizeof *count);
    if (!count) return ERR_NOMEM;
    for (long i = lo; i < hi0; i++) count[f0->equiv[i] * 2]++;
    for (long i = lo; i < hi1; i++) count[f1->equiv[i] * 2 + 1]++;

    file *files[2] = {f0, f1};
    long his[2] = {hi0, hi1};
    for (int k = 0; k < 2; k++) {
        file *f = files[k];
        f->nkept = 0;
        for (long i = lo; i < his[k]; i++) {
            if (count[f->equiv[i] * 2 + (1 - k)] == 0) {
                f->changed[i] = 1;
            } else {
                f->kept[f->nkept] = i;
                f->seq[f->nkept++] = f->equiv[i];
            }
        }
    }
    free(count);
    return 0;
}

/* Finds a point on a shortest edit path through the box, splitting it in
 * two halves of (about) equal cost: the furthest-reaching paths are grown
 * from both corners, one edit at a time, until they overlap.
 *
 * A search that runs past `too_expensive` edits gives up on optimality and
 * splits at the most advanced point so far, as GNU diff does: otherwise two
 * large, thoroughly reordered files would take O(N*N) time. */
static void middle_snake(const myers *m, long xoff, long xlim, long yoff, long ylim, int minimal,
                         split *sp)
{
    const long *xv = m->xv, *yv = m->yv;
    long *fd = m->fd, *bd = m->bd;
    const long dmin = xoff - ylim, dmax = xlim - yoff;
    const long fmid = xoff - yoff, bmid = xlim - ylim;
    long fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;
    const int odd = (fmid - bmid) % 2 != 0;

    fd[fmid] = xoff;
    bd[bmid] = xlim;
    for (long c = 1;; c++) {
        long d;

        /* Widen the forward frontier by one diagonal on each side, or
         * narrow it where it has run into the edge of the box. */
        if (fmin > dmin) fd[--fmin - 1] = -1;
        else fmin++;
        if (fmax < dmax) fd[++fmax + 1] = -1;
        else fmax--;
        for (d = fmax; d >= fmin; d -= 2) {
            long lo = fd[d - 1], hi = fd[d + 1];
            long x = lo < hi ? hi : lo + 1, y = x - d;
            while (x < xlim && y < ylim && xv[x] == yv[y]) {
                x++;
                y++;
            }
            fd[d] = x;
            if (odd && bmin <= d && d <= bmax && bd[d] <= x) {
                sp->xmid = x;
                sp->ymid = y;
                sp->lo_minimal = sp->hi_minimal = 1;
                return;
            }
        }

        if (bmin > dmin) bd[--bmin - 1] = LONG_MAX;
        else bmin++;
        if (bmax < dmax) bd[++bmax + 1] = LONG_MAX;
        else bmax--;
        for (d = bmax; d >= bmin; d -= 2) {
            long lo = bd[d - 1], hi = bd[d + 1];
            long x = lo < hi ? lo : hi - 1, y = x - d;
            while (x > xoff && y > yoff && xv[x - 1] == yv[y - 1]) {
                x--;
                y--;
            }
            bd[d] = x;
            if (!odd && fmin <= d && d <= fmax && x <= fd[d]) {
                sp->xmid = x;
                sp->ymid = y;
                sp->lo_minimal = sp->hi_minimal = 1;
                return;
            }
        }

        if (minimal || c < m->too_expensive) continue;

        long fxy = -1, fx = xoff, bxy = LONG_MAX, bx = xlim;
        for (d = fmax; d >= fmin; d -= 2) {
            long x = fd[d] < xlim ? fd[d] : xlim, y = x - d;
            if (y > ylim) {
                x = ylim + d;
                y = ylim;
            }
            if (x + y > fxy) {
                fxy = x + y;
                fx = x;
            }
        }
        for (d = bmax; d >= bmin; d -= 2) {
            long x = bd[d] > xoff ? bd[d] : xoff, y = x - d;
            if (y < yoff) {
                x = yoff + d;
                y = yoff;
            }
            if (x + y < bxy) {
                bxy = x + y;
                bx = x;
            }
        }
        if ((xlim + ylim) - bxy < fxy - (xoff + yoff)) {
            sp->xmid = fx;
            sp->ymid = fxy - fx;
            sp->lo_minimal = 1;
            sp->hi_minimal = 0;
        } else {
            sp->xmid = bx;
            sp->ymid = bxy - bx;
            sp->lo_minimal = 0;
            sp->hi_minimal = 1;
        }
        return;
    }
}

static int push_span(span **stack, size_t *n, size_t *cap, span s)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        span *p = realloc(*stack, sizeof *p * ncap);
        if (!p) return ERR_NOMEM;
        *stack = p;
        *cap = ncap;
    }
    (*stack)[(*n)++] = s;
    return 0;
}

/* Marks in f0/f1->changed the lines outside a longest common subsequence of
 * the pruned sequences. Divide and conquer with an explicit stack, since
 * the split is not always balanced and recursion depth would follow it. */
static int compare(file *f0, file *f1)
{
    long nx = f0->nkept, ny = f1->nkept;
    long *diags = malloc(sizeof *diags * (size_t)(nx + ny + 3) * 2);
    span *stack = NULL;
    size_t depth = 0, cap = 0;
    if (!diags) return ERR_NOMEM;

    myers m;
    m.xv = f0->seq;
    m.yv = f1->seq;
    m.fd = diags + ny + 1;
    m.bd = diags + (nx + ny + 3) + ny + 1;
    /* about the square root of the input size, but never below 4096 */
    m.too_expensive = 1;
    for (long k = nx + ny + 3; k != 0; k >>= 2) m.too_expensive <<= 1;
    if (m.too_expensive < 4096) m.too_expensive = 4096;

    int rc = push_span(&stack, &depth, &cap, (span){0, nx, 0, ny, 0});
    while (!rc && depth > 0) {
        span s = stack[--depth];
        while (s.xoff < s.xlim && s.yoff < s.ylim && m.xv[s.xoff] == m.yv[s.yoff]) {
            s.xoff++;
            s.yoff++;
        }
        while (s.xoff < s.xlim && s.yoff < s.ylim && m.xv[s.xlim - 1] == m.yv[s.ylim - 1]) {
            s.xlim--;
            s.ylim--;
        }
        if (s.xoff == s.xlim) {
            for (long y = s.yoff; y < s.ylim; y++) f1->changed[f1->kept[y]] = 1;
        } else if (s.yoff == s.ylim) {
            for (long x = s.xoff; x < s.xlim; x++) f0->changed[f0->kept[x]] = 1;
        } else {
            split sp;
            middle_snake(&m, s.xoff, s.xlim, s.yoff, s.ylim, s.minimal, &sp);
            rc = push_span(&stack, &depth, &cap,
                           (span){sp.xmid, s.xlim, sp.ymid, s.ylim, sp.hi_minimal});
            if (!rc)
                rc = push_span(&stack, &depth, &cap,
                               (span){s.xoff, sp.xmid, s.yoff, sp.ymid, sp.lo_minimal});
        }
    }
    free(stack);
    free(diags);
    return rc;
}

/* A run of changed lines next to an identical unchanged line can slide:
 * deleting the first of two equal lines is deleting the second. diff(1)
 * slides every run so that it merges with neighbouring runs where it can,
 * else as far down as it goes, unless some position lines it up with a
 * change in the other file (then the pair prints as one replacement).
 * Doing exactly the same keeps our hunks identical to diff's.
 *
 * Only lines [lo, hi) move (see textdiff_unified; lo is the same in both
 * files), so a run cannot slide further into the common prefix or suffix.
 *
 * j tracks the position in the other file that corresponds to the end of
 * the current run: unchanged lines pair up in order, and j is kept past any
 * changed lines of the other file at that point. */
static void shift_runs(file *f, const file *other, long lo, long hi)
{
    char *ch = f->changed;
    const char *och = other->changed;
    const long *eq = f->equiv;
    long n = hi, i = lo, j = lo;

    for (;;) {
        while (i < n && !ch[i]) {
            while (och[j]) j++;
            j++;
            i++;
        }
        if (i == n) break;

        long start = i, len, corresponding;
        while (ch[i]) i++;
        while (och[j]) j++;

        do {
            len = i - start;

            /* Slide up while the line above equals the run's last line,
             * swallowing any run that becomes adjacent. */
            while (start > lo && eq[start - 1] == eq[i - 1]) {
                ch[--start] = 1;
                ch[--i] = 0;
                while (start > lo && ch[start - 1]) start--;
                j--;
                while (och[j]) j--;
            }

            /* The lowest end position at which the run touches a change of
             * the other file; n if there is none. */
            corresponding = och[j - 1] ? i : n;

            /* Then down as far as possible, again merging. */
            while (i < n && eq[start] == eq[i]) {
                ch[start++] = 0;
                ch[i++] = 1;
                while (ch[i]) i++;
                j++;
                while (och[j]) {
                    corresponding = i;
                    j++;
                }
            }
        } while (len != i - start);

        while (corresponding < i) {
            ch[--start] = 1;
            ch[--i] = 0;
            j--;
            while (och[j]) j--;
        }
    }
}

static int collect_changes(const file *f0, const file *f1, change **out, long *nout)
{
    long cap = 16, n = 0, i0 = 0, i1 = 0;
    change *v = malloc(sizeof *v * (size_t)cap);
    if (!v) return ERR_NOMEM;
    while (i0 < f0->n || i1 < f1->n) {
        if (i0 < f0->n && i1 < f1->n && !f0->changed[i0] && !f1->changed[i1]) {
            i0++;
            i1++;
            continue;
        }
        change c = {i0, 0, i1, 0};
        while (i0 < f0->n && f0->changed[i0]) i0++;
        while (i1 < f1->n && f1->changed[i1]) i1++;
        c.del = i0 - c.line0;
        c.ins = i1 - c.line1;
        if (c.del == 0 && c.ins == 0) break; /* cannot happen: unchanged lines pair up */
        if (n == cap) {
            change *p = realloc(v, sizeof *v * (size_t)cap * 2);
            if (!p) {
                free(v);
                return ERR_NOMEM;
            }
            v = p;
            cap *= 2;
        }
        v[n++] = c;
    }
    *out = v;
    *nout = n;
    return 0;
}

static int put_line(buf *out, char prefix, const line *l)
{
    int rc = buf_putc(out, prefix);
    if (!rc) rc = buf_append(out, l->s, l->len);
    if (!rc && (l->len == 0 || l->s[l->len - 1] != '\n'))
        rc = buf_puts(out, "\n\\ No newline at end of file\n");
    return rc;
}

/* diff(1)'s range syntax: a single line is just its number; an empty range
 * is named by the line before it, with a count of 0. */
static int put_range(buf *out, long lo, long hi)
{
    if (hi - lo == 0) return buf_printf(out, "%ld,0", lo);
    if (hi - lo == 1) return buf_printf(out, "%ld", lo + 1);
    return buf_printf(out, "%ld,%ld", lo + 1, hi - lo);
}

/* One hunk: changes v[0..n), which are close enough to share context. */
static int put_hunk(buf *out, const file *f0, const file *f1, const change *v, long n)
{
    const change *first = &v[0], *last = &v[n - 1];
    long before = first->line0 < CONTEXT ? first->line0 : CONTEXT;
    long end0 = last->line0 + last->del, end1 = last->line1 + last->ins;
    long after = f0->n - end0 < CONTEXT ? f0->n - end0 : CONTEXT;
    long lo0 = first->line0 - before, hi0 = end0 + after;
    long lo1 = first->line1 - before, hi1 = end1 + after;

    int rc = buf_puts(out, "@@ -");
    if (!rc) rc = put_range(out, lo0, hi0);
    if (!rc) rc = buf_puts(out, " +");
    if (!rc) rc = put_range(out, lo1, hi1);
    if (!rc) rc = buf_puts(out, " @@\n");

    long i = lo0;
    for (long k = 0; k < n && !rc; k++) {
        const change *c = &v[k];
        for (; i < c->line0 && !rc; i++) rc = put_line(out, ' ', &f0->lines[i]);
        for (long d = 0; d < c->del && !rc; d++) rc = put_line(out, '-', &f0->lines[c->line0 + d]);
        for (long a = 0; a < c->ins && !rc; a++) rc = put_line(out, '+', &f1->lines[c->line1 + a]);
        i = c->line0 + c->del;
    }
    for (; i < hi0 && !rc; i++) rc = put_line(out, ' ', &f0->lines[i]);
    return rc;
}

static int put_diff(buf *out, const char *old_name, const char *new_name, const file *f0,
                    const file *f1, const change *v, long n)
{
    int rc = buf_printf(out, "--- %s\n+++ %s\n", old_name ? old_name : "",
                        new_name ? new_name : "");
    for (long k = 0; k < n && !rc;) {
        /* diff(1) joins two changes when their context would touch or
         * overlap: at most 2 * CONTEXT unchanged lines between them. */
        long e = k + 1;
        while (e < n && v[e].line0 - (v[e - 1].line0 + v[e - 1].del) <= 2 * CONTEXT) e++;
        rc = put_hunk(out, f0, f1, v + k, e - k);
        k = e;
    }
    return rc;
}

int textdiff_unified(const char *old_name, const char *old_text, size_t old_len,
                     const char *new_name, const char *new_text, size_t new_len, buf *out)
{
    file f0, f1;
    change *changes = NULL;
    long nchanges = 0;
    size_t mark = out->len;
    int rc;

    memset(&f0, 0, sizeof f0);
    memset(&f1, 0, sizeof f1);
    if (old_len == new_len && (old_len == 0 || memcmp(old_text, new_text, old_len) == 0))
        return 0;

    rc = split_lines(old_text, old_len, &f0);
    if (!rc) rc = split_lines(new_text, new_len, &f1);
    if (rc) goto done;

    long nclass = classify(&f0, &f1);
    if (nclass < 0) {
        rc = ERR_NOMEM;
        goto done;
    }

    /* diff(1) sets aside the common prefix and suffix of the files before
     * it compares them, except for CONTEXT lines of each; which lines it
     * then looks at decides where ambiguous changes end up, so we look at
     * the same ones. The suffix may take back lines of the prefix that was
     * set aside, but not more. */
    long prefix = 0, suffix = 0, lim = f0.n < f1.n ? f0.n : f1.n;
    while (prefix < lim && f0.equiv[prefix] == f1.equiv[prefix]) prefix++;
    long lo = prefix > CONTEXT ? prefix - CONTEXT : 0;
    while (suffix < lim - lo && f0.equiv[f0.n - 1 - suffix] == f1.equiv[f1.n - 1 - suffix])
        suffix++;
    long keep = suffix < CONTEXT ? suffix : CONTEXT;
    long hi0 = f0.n - suffix + keep, hi1 = f1.n - suffix + keep;

    if ((rc = prune_unmatched(&f0, &f1, nclass, lo, hi0, hi1))) goto done;
    if ((rc = compare(&f0, &f1))) goto done;
    shift_runs(&f0, &f1, lo, hi0);
    shift_runs(&f1, &f0, lo, hi1);
    if ((rc = collect_changes(&f0, &f1, &changes, &nchanges))) goto done;
    if (nchanges > 0) rc = put_diff(out, old_name, new_name, &f0, &f1, changes, nchanges);

done:
    if (rc) {
        /* leave out as it was: a half-written diff is worse than none */
        out->len = mark;
        if (out->data) out->data[mark] = '\0';
        rc = ERR_NOMEM;
    }
    free(changes);
    file_free(&f0);
    file_free(&f1);
    return rc;
}
