/* bg.h - work off the event loop: CPU-heavy steps (password hashing) run on
 * a small pool of worker threads and finish back on the loop thread. */
#ifndef BB_BG_H
#define BB_BG_H

#include "err.h"

struct event_base;
typedef struct bg bg;
typedef void (*bg_fn)(void *arg);

/* Starts `threads` workers bound to the loop `base`. */
int bg_start(struct event_base *base, int threads, bg **out, err *e);
/* Queues work(arg) on a worker; done(arg) then runs on the loop thread.
 * Returns ERR_BUSY when the queue is full or the pool is stopping. */
int bg_submit(bg *b, bg_fn work, bg_fn done, void *arg);
/* Finishes queued work, joins the workers, and runs every pending done
 * callback on the calling thread. */
void bg_stop(bg *b);

#endif
