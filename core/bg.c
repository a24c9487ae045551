/* bg.c - a fixed pool of worker threads with completion on the loop. */
#include "bg.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"

#define BG_MAX_THREADS 8
#define BG_MAX_QUEUED 1024

typedef struct task {
    bg_fn work, done;
    void *arg;
    struct task *next;
} task;

struct bg {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    task *queue, *queue_tail, *finished;
    int queued, stopping, nthreads;
    pthread_t threads[BG_MAX_THREADS];
    struct event *wake;   /* fires on the loop thread when work finished */
};

static void *worker(void *arg)
{
    bg *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (!b->queue && !b->stopping) pthread_cond_wait(&b->cv, &b->mu);
        task *t = b->queue;
        if (!t) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        b->queue = t->next;
        if (!b->queue) b->queue_tail = NULL;
        b->queued--;
        pthread_mutex_unlock(&b->mu);
        t->work(t->arg);
        pthread_mutex_lock(&b->mu);
        t->next = b->finished;
        b->finished = t;
        pthread_mutex_unlock(&b->mu);
        event_active(b->wake, 0, 0);
    }
    log_release();
    return NULL;
}

static void run_finished(bg *b)
{
    pthread_mutex_lock(&b->mu);
    task *t = b->finished;
    b->finished = NULL;
    pthread_mutex_unlock(&b->mu);
    while (t) {
        task *n = t->next;
        t->done(t->arg);
        free(t);
        t = n;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_finished(arg);
}

int bg_start(struct event_base *base, int threads, bg **out, err *e)
{
    bg *b = calloc(1, sizeof *b);
    if (!b) return ERR_NOMEM_RET(e);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->wake = event_new(base, -1, 0, on_wake, b);
    if (!b->wake) {
        free(b);
        return ERR_NOMEM_RET(e);
    }
    if (threads > BG_MAX_THREADS) threads = BG_MAX_THREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&b->threads[i], NULL, worker, b) != 0) break;
        b->nthreads++;
    }
    if (b->nthreads == 0) {
        event_free(b->wake);
        free(b);
        return err_set(e, ERR_INTERNAL, "cannot start worker threads");
    }
    *out = b;
    return 0;
}

int bg_submit(bg *b, bg_fn work, bg_fn done, void *arg)
{
    task *t = calloc(1, sizeof *t);
    if (!t) return ERR_NOMEM;
    t->work = work;
    t->done = done;
    t->arg = arg;
    pthread_mutex_lock(&b->mu);
    if (b->stopping || b->queued >= BG_MAX_QUEUED) {
        pthread_mutex_unlock(&b->mu);
        free(t);
        return ERR_BUSY;
    }
    if (b->queue_tail) b->queue_tail->next = t;
    else b->queue = t;
    b->queue_tail = t;
    b->queued++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void bg_stop(bg *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->nthreads; i++) pthread_join(b->threads[i], NULL);
    run_finished(b);
    event_free(b->wake);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}
