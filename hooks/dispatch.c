/*
 * dispatch.c - the dispatcher thread: ring records -> ngs_event -> sinks.
 *
 * Rows are the hot path: consecutive row records are gathered into one batch and
 * handed over as a single NGS_EV_ROWS event. Several ngspice threads may produce
 * (the background thread and the caller's), so producers take a mutex, which is
 * uncontended in practice.
 *
 * Consumers take consume_lock: the dispatcher thread while a run goes on, and the
 * thread that drains, which delivers what is left itself instead of waking the
 * dispatcher and waiting for it (two thread hand-overs at the end of every run).
 */
#include "hooks/dispatch.h"
#include "hooks/ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* REC_ROW_PART: a piece of a row larger than one ring record (see row_begin). */
enum { REC_PLOT_BEGIN = 1, REC_ROW, REC_PLOT_END, REC_MESSAGE, REC_PROGRESS, REC_ROW_PART };

#define IDLE_MS 50 /* rows reach the sinks at least this often */
#define BATCH_BYTES (1u << 20)

struct ngs_dispatch {
    ngs_ring *ring;
    pthread_t thread;
    pthread_mutex_t produce_lock;
    unsigned char *stage;        /* under produce_lock: a row too large for one record */
    size_t stage_cap, stage_len;
    ngs_sink *sinks;
    size_t nsinks;
    atomic_int error;
    atomic_uint_fast64_t queued; /* records put in the ring */
    /* consumer side, under consume_lock */
    pthread_mutex_t consume_lock;
    uint64_t handled;            /* records taken out of the ring */
    ngs_plot_desc *plot;
    uint64_t plot_rows;
    double *batch;
    size_t batch_rows, batch_cap_rows, batch_row_bytes;
    unsigned char *part;         /* a large row put together from its pieces */
    size_t part_cap, part_len;
    int part_lost;               /* no memory for it: the row is dropped, the run fails */
    pthread_mutex_t sinks_lock; /* set_sinks vs. the consumer */
};

/* The first failure stays. */
static void fail(ngs_dispatch *d, int rc)
{
    int expected = NGS_OK;
    atomic_compare_exchange_strong(&d->error, &expected, rc);
}

int ngs_sinks_deliver(const ngs_sink *sinks, size_t nsinks, const ngs_event *ev)
{
    int rc = 0;
    for (size_t i = 0; i < nsinks; i++)
        if ((sinks[i].mask & ev->kind) && sinks[i].on_event) {
            int r = sinks[i].on_event(ev, sinks[i].user);
            if (r != 0 && rc == 0) rc = r;
        }
    return rc;
}

static void deliver(ngs_dispatch *d, const ngs_event *ev)
{
    int rc;
    pthread_mutex_lock(&d->sinks_lock);
    rc = ngs_sinks_deliver(d->sinks, d->nsinks, ev);
    pthread_mutex_unlock(&d->sinks_lock);
    if (rc != 0) fail(d, rc < 0 ? rc : NGS_ERR_INTERRUPTED);
}

static void flush_batch(ngs_dispatch *d)
{
    ngs_event ev;
    if (d->batch_rows == 0) return;
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_ROWS;
    ev.plot = d->plot;
    ev.rows = d->batch;
    ev.nrows = d->batch_rows;
    ev.first_row = d->plot_rows;
    d->plot_rows += d->batch_rows;
    d->batch_rows = 0;
    deliver(d, &ev);
}

static void idle(ngs_dispatch *d)
{
    flush_batch(d);
    pthread_mutex_lock(&d->sinks_lock);
    for (size_t i = 0; i < d->nsinks; i++)
        if (d->sinks[i].on_idle) d->sinks[i].on_idle(d->sinks[i].user);
    pthread_mutex_unlock(&d->sinks_lock);
}

static void add_row(ngs_dispatch *d, const void *row, size_t size)
{
    if (!d->plot || size == 0) return;
    if (size != d->batch_row_bytes) { /* first row of a plot: size the batch */
        size_t cap = BATCH_BYTES / size ? BATCH_BYTES / size : 1;
        double *b;
        flush_batch(d);
        b = realloc(d->batch, cap * size);
        if (!b) {
            fail(d, NGS_ERR_NOMEM);
            return;
        }
        d->batch = b;
        d->batch_cap_rows = cap;
        d->batch_row_bytes = size;
    } else if (d->batch_rows == d->batch_cap_rows) {
        flush_batch(d);
    }
    memcpy((char *)d->batch + d->batch_rows * size, row, size);
    d->batch_rows++;
}

/* Pieces of one row come one after the other (the producer holds its lock). */
static void add_part(ngs_dispatch *d, const void *piece, size_t size)
{
    size_t row = d->plot ? (size_t)d->plot->row_doubles * sizeof(double) : 0;
    if (!row) return;
    if (d->part_len == 0) {
        d->part_lost = 0;
        if (d->part_cap < row) {
            unsigned char *p = realloc(d->part, row);
            if (p) {
                d->part = p;
                d->part_cap = row;
            } else {
                d->part_lost = 1;
                fail(d, NGS_ERR_NOMEM);
            }
        }
    }
    if (d->part_len + size > row) size = row - d->part_len;
    if (!d->part_lost) memcpy(d->part + d->part_len, piece, size);
    d->part_len += size;
    if (d->part_len == row) {
        if (!d->part_lost) add_row(d, d->part, row);
        d->part_len = 0;
    }
}

static void handle(ngs_dispatch *d, uint32_t kind, const void *payload, size_t size)
{
    ngs_event ev;
    memset(&ev, 0, sizeof ev);
    if (kind != REC_ROW && kind != REC_ROW_PART) flush_batch(d);
    switch (kind) {
    case REC_ROW:
        add_row(d, payload, size);
        return;
    case REC_ROW_PART:
        add_part(d, payload, size);
        return;
    case REC_PLOT_BEGIN:
        if (d->plot) ngs_plot_desc_free(d->plot); /* an end was lost: never leak */
        memcpy(&d->plot, payload, sizeof d->plot);
        d->plot_rows = 0;
        d->part_len = 0;
        d->batch_rows = 0;
        d->batch_row_bytes = 0; /* row size changes with the plot */
        ev.kind = NGS_EV_PLOT_BEGIN;
        ev.plot = d->plot;
        deliver(d, &ev);
        return;
    case REC_PLOT_END: {
        int status;
        memcpy(&status, payload, sizeof status);
        if (!d->plot) return;
        ev.kind = NGS_EV_PLOT_END;
        ev.plot = d->plot;
        ev.status = status;
        ev.total_rows = d->plot_rows;
        ev.text = size > sizeof(int) && ((const char *)payload)[sizeof(int)]
                      ? (const char *)payload + sizeof(int) : NULL;
        deliver(d, &ev);
        ngs_plot_desc_free(d->plot);
        d->plot = NULL;
        return;
    }
    case REC_MESSAGE:
        ev.kind = NGS_EV_MESSAGE;
        memcpy(&ev.is_error, payload, sizeof(int));
        ev.text = (const char *)payload + sizeof(int);
        deliver(d, &ev);
        return;
    case REC_PROGRESS:
        ev.kind = NGS_EV_PROGRESS;
        memcpy(&ev.percent, payload, sizeof(double));
        deliver(d, &ev);
        return;
    default:
        return;
    }
}

/* Under consume_lock: delivers every record in the ring, then the gathered rows.
 * Returns how many records it took. */
static size_t consume_available(ngs_dispatch *d)
{
    uint32_t kind;
    const void *payload;
    size_t size, n = 0;
    while (ngs_ring_try_peek(d->ring, &kind, &payload, &size) == 1) {
        handle(d, kind, payload, size);
        ngs_ring_release(d->ring);
        n++;
    }
    d->handled += n;
    flush_batch(d); /* the ring ran dry: deliver what we have */
    return n;
}

static void *consumer(void *arg)
{
    ngs_dispatch *d = arg;
    for (;;) {
        int rc = ngs_ring_wait(d->ring, IDLE_MS); /* outside the lock: a drain may run */
        if (rc < 0) break;
        pthread_mutex_lock(&d->consume_lock);
        if (rc == 0) idle(d);
        else consume_available(d);
        pthread_mutex_unlock(&d->consume_lock);
    }
    return NULL;
}

int ngs_dispatch_create(ngs_dispatch **out, size_t ring_bytes)
{
    ngs_dispatch *d = calloc(1, sizeof *d);
    int rc;
    if (!d) return NGS_ERR_NOMEM;
    rc = ngs_ring_create(&d->ring, ring_bytes ? ring_bytes : (8u << 20));
    if (rc != NGS_OK) {
        free(d);
        return rc;
    }
    pthread_mutex_init(&d->produce_lock, NULL);
    pthread_mutex_init(&d->sinks_lock, NULL);
    pthread_mutex_init(&d->consume_lock, NULL);
    atomic_init(&d->error, NGS_OK);
    atomic_init(&d->queued, 0);
    if (pthread_create(&d->thread, NULL, consumer, d) != 0) {
        ngs_ring_destroy(d->ring);
        free(d);
        return NGS_ERR_NOMEM;
    }
    *out = d;
    return NGS_OK;
}

void ngs_dispatch_destroy(ngs_dispatch *d)
{
    if (!d) return;
    ngs_ring_close(d->ring);
    pthread_join(d->thread, NULL);
    ngs_plot_desc_free(d->plot);
    ngs_ring_destroy(d->ring);
    pthread_mutex_destroy(&d->produce_lock);
    pthread_mutex_destroy(&d->sinks_lock);
    pthread_mutex_destroy(&d->consume_lock);
    free(d->sinks);
    free(d->batch);
    free(d->stage);
    free(d->part);
    free(d);
}

int ngs_dispatch_set_sinks(ngs_dispatch *d, const ngs_sink *sinks, size_t n)
{
    ngs_sink *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy) return NGS_ERR_NOMEM;
        memcpy(copy, sinks, n * sizeof *copy);
    }
    ngs_dispatch_drain(d);
    pthread_mutex_lock(&d->sinks_lock);
    free(d->sinks);
    d->sinks = copy;
    d->nsinks = n;
    pthread_mutex_unlock(&d->sinks_lock);
    return NGS_OK;
}

/* Copies a small record in under the producer lock. */
static void put(ngs_dispatch *d, uint32_t kind, const void *a, size_t alen, const void *b,
                size_t blen)
{
    unsigned char *dst;
    size_t max;
    pthread_mutex_lock(&d->produce_lock);
    max = ngs_ring_max_payload(d->ring);
    if (b && alen + blen > max) blen = max - alen; /* truncate over-long text */
    dst = ngs_ring_reserve(d->ring, kind, alen + blen);
    if (dst) {
        memcpy(dst, a, alen);
        if (b && blen) memcpy(dst + alen, b, blen);
        if (blen && (kind == REC_MESSAGE || kind == REC_PLOT_END)) dst[alen + blen - 1] = '\0';
        /* no wake-up: waking the dispatcher for every line ngspice prints doubled a
         * small batch job's context switches; records reach the sinks within
         * IDLE_MS, or at the next drain */
        atomic_fetch_add(&d->queued, 1);
        ngs_ring_commit(d->ring, 0);
    }
    pthread_mutex_unlock(&d->produce_lock);
}

void ngs_dispatch_plot_begin(ngs_dispatch *d, ngs_plot_desc *plot)
{
    put(d, REC_PLOT_BEGIN, &plot, sizeof plot, NULL, 0);
}

double *ngs_dispatch_row_begin(ngs_dispatch *d, size_t ndoubles)
{
    size_t bytes = ndoubles * sizeof(double);
    double *row;
    pthread_mutex_lock(&d->produce_lock);
    if (bytes > ngs_ring_max_payload(d->ring)) {
        /* A row no record can hold (over 262144 values with the engine's 8 MiB ring: a
         * huge post-layout plot) is filled here and sent in pieces by commit; the ring
         * refused it, and every point of such a plot was lost without a word. */
        if (d->stage_cap < bytes) {
            unsigned char *p = realloc(d->stage, bytes);
            if (!p) {
                fail(d, NGS_ERR_NOMEM);
                pthread_mutex_unlock(&d->produce_lock);
                return NULL;
            }
            d->stage = p;
            d->stage_cap = bytes;
        }
        d->stage_len = bytes;
        return (double *)d->stage;
    }
    row = ngs_ring_reserve(d->ring, REC_ROW, bytes);
    if (!row) pthread_mutex_unlock(&d->produce_lock);
    return row;
}

void ngs_dispatch_row_commit(ngs_dispatch *d)
{
    if (d->stage_len) {
        size_t max = ngs_ring_max_payload(d->ring);
        for (size_t off = 0; off < d->stage_len;) {
            size_t n = d->stage_len - off < max ? d->stage_len - off : max;
            void *dst = ngs_ring_reserve(d->ring, REC_ROW_PART, n);
            if (!dst) break; /* closed */
            memcpy(dst, d->stage + off, n);
            atomic_fetch_add(&d->queued, 1);
            ngs_ring_commit(d->ring, 0);
            off += n;
        }
        d->stage_len = 0;
    } else {
        atomic_fetch_add(&d->queued, 1);
        ngs_ring_commit(d->ring, 0);
    }
    pthread_mutex_unlock(&d->produce_lock);
}

void ngs_dispatch_plot_end(ngs_dispatch *d, int status, const char *message)
{
    put(d, REC_PLOT_END, &status, sizeof status, message ? message : "",
        message ? strlen(message) + 1 : 1);
}

void ngs_dispatch_message(ngs_dispatch *d, const char *text, int is_error)
{
    put(d, REC_MESSAGE, &is_error, sizeof is_error, text, strlen(text) + 1);
}

void ngs_dispatch_progress(ngs_dispatch *d, double percent)
{
    put(d, REC_PROGRESS, &percent, sizeof percent, NULL, 0);
}

int ngs_dispatch_drain(ngs_dispatch *d)
{
    /* a record is counted before it is committed: wait for the few in flight */
    uint64_t target = atomic_load(&d->queued);
    pthread_mutex_lock(&d->consume_lock);
    while (d->handled < target)
        if (consume_available(d) == 0 && ngs_ring_wait(d->ring, 1) < 0) break;
    idle(d);
    pthread_mutex_unlock(&d->consume_lock);
    return atomic_load(&d->error);
}

int ngs_dispatch_error(const ngs_dispatch *d) { return atomic_load(&((ngs_dispatch *)d)->error); }

void ngs_dispatch_reset_error(ngs_dispatch *d) { atomic_store(&d->error, NGS_OK); }
