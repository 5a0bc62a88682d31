/*
 * ring.c - SPSC ring of variable-length records (see ring.h).
 *
 * head and tail are byte counters that only grow; position = counter & mask. A
 * record is an 8-byte header {kind, size} followed by its payload padded to 8
 * bytes. A record never wraps: when it does not fit before the end, a PAD record
 * fills the rest. Each side sleeps on a condition variable only after announcing
 * it (waiting flag), so the fast path costs two atomic operations per record.
 */
#include "hooks/ring.h"
#include "hooks/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#include "ngscale.h"

#define RING_PAD UINT32_MAX

typedef struct {
    uint32_t kind;
    uint32_t size;
} record_header;

struct ngs_ring {
    unsigned char *buf;
    size_t capacity, mask;
    _Alignas(64) atomic_uint_fast64_t head; /* written by producer */
    _Alignas(64) atomic_uint_fast64_t tail; /* written by consumer */
    uint64_t reserved_end;                  /* producer-private: head after commit */
    uint64_t peeked_end;                    /* consumer-private: tail after release */
    atomic_int closed;
    atomic_int producer_waiting, consumer_waiting;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

int ngs_ring_create(ngs_ring **out, size_t capacity)
{
    size_t cap = 4096;
    ngs_ring *r;
    if (!out) return NGS_ERR_ARG;
    *out = NULL;
    while (cap < capacity) {
        if (cap > SIZE_MAX / 2) return NGS_ERR_ARG;
        cap <<= 1;
    }
    r = calloc(1, sizeof *r);
    if (!r) return NGS_ERR_NOMEM;
    if (posix_memalign((void **)&r->buf, 64, cap) != 0) {
        free(r);
        return NGS_ERR_NOMEM;
    }
    r->capacity = cap;
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->closed, 0);
    atomic_init(&r->producer_waiting, 0);
    atomic_init(&r->consumer_waiting, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    *out = r;
    return NGS_OK;
}

void ngs_ring_destroy(ngs_ring *r)
{
    if (!r) return;
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->buf);
    free(r);
}

size_t ngs_ring_max_payload(const ngs_ring *r) { return r->capacity / 4; }

static void wake(ngs_ring *r, atomic_int *waiting)
{
    if (atomic_load(waiting)) {
        pthread_mutex_lock(&r->lock);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
}

/* Sleeps until ready(r) holds, the ring closes, or timeout_ms passes (<0: never). */
static int wait_until(ngs_ring *r, atomic_int *waiting, int (*ready)(ngs_ring *, size_t),
                      size_t arg, int timeout_ms)
{
    struct timespec deadline = ngs_deadline_ms(timeout_ms >= 0 ? timeout_ms : 0);
    int ok;
    pthread_mutex_lock(&r->lock);
    atomic_store(waiting, 1);
    while (!(ok = ready(r, arg)) && !atomic_load(&r->closed)) {
        if (timeout_ms < 0)
            pthread_cond_wait(&r->cond, &r->lock);
        else if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
            break;
    }
    atomic_store(waiting, 0);
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static int has_space(ngs_ring *r, size_t need)
{
    uint64_t head = atomic_load(&r->head);
    uint64_t tail = atomic_load(&r->tail);
    return r->capacity - (size_t)(head - tail) >= need;
}

static int has_data(ngs_ring *r, size_t unused)
{
    (void)unused;
    return atomic_load(&r->head) != atomic_load(&r->tail);
}

void *ngs_ring_reserve(ngs_ring *r, uint32_t kind, size_t size)
{
    size_t rec = sizeof(record_header) + pad8(size);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t pos = (size_t)(head & r->mask);
    size_t to_end = r->capacity - pos;
    size_t need = rec <= to_end ? rec : to_end + rec; /* pad to the end, then wrap */
    record_header *h;

    if (size > ngs_ring_max_payload(r) || atomic_load(&r->closed)) return NULL;
    if (!has_space(r, need)) {
        wait_until(r, &r->producer_waiting, has_space, need, -1);
        if (!has_space(r, need)) return NULL; /* closed by the consumer */
    }
    if (rec > to_end) {
        h = (record_header *)(r->buf + pos);
        h->kind = RING_PAD;
        h->size = (uint32_t)(to_end - sizeof(record_header));
        head += to_end;
        pos = 0;
    }
    h = (record_header *)(r->buf + pos);
    h->kind = kind;
    h->size = (uint32_t)size;
    r->reserved_end = head + rec;
    if (rec > to_end) {
        /* publish the pad now so the consumer can skip it while we fill */
        atomic_store_explicit(&r->head, head, memory_order_release);
    }
    return h + 1;
}

void ngs_ring_commit(ngs_ring *r, int urgent)
{
    /* seq_cst: the store must be ordered before the load of consumer_waiting */
    atomic_store(&r->head, r->reserved_end);
    if (urgent || (size_t)(r->reserved_end - atomic_load(&r->tail)) >= r->capacity / 8)
        wake(r, &r->consumer_waiting);
}

int ngs_ring_try_peek(ngs_ring *r, uint32_t *kind, const void **payload, size_t *size)
{
    for (;;) {
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        const record_header *h;
        if (!has_data(r, 0)) return 0;
        h = (const record_header *)(r->buf + (tail & r->mask));
        if (h->kind == RING_PAD) {
            atomic_store(&r->tail, tail + sizeof *h + h->size);
            wake(r, &r->producer_waiting);
            continue;
        }
        *kind = h->kind;
        *payload = h + 1;
        *size = h->size;
        r->peeked_end = tail + sizeof *h + pad8(h->size);
        return 1;
    }
}

int ngs_ring_wait(ngs_ring *r, int timeout_ms)
{
    if (has_data(r, 0)) return 1;
    wait_until(r, &r->consumer_waiting, has_data, 0, timeout_ms);
    if (has_data(r, 0)) return 1;
    return atomic_load(&r->closed) ? -1 : 0;
}

int ngs_ring_peek(ngs_ring *r, int timeout_ms, uint32_t *kind, const void **payload,
                  size_t *size)
{
    /* a first try skips padding, so the wait is for a real record */
    if (ngs_ring_try_peek(r, kind, payload, size)) return 1;
    if (ngs_ring_wait(r, timeout_ms) == 1 && ngs_ring_try_peek(r, kind, payload, size)) return 1;
    return atomic_load(&r->closed) ? -1 : 0;
}

void ngs_ring_release(ngs_ring *r)
{
    atomic_store(&r->tail, r->peeked_end);
    /* a waiting producer needs at most a quarter plus padding: wake it when that is free */
    if (r->capacity - (size_t)(atomic_load(&r->head) - r->peeked_end) >= r->capacity / 2)
        wake(r, &r->producer_waiting);
}

void ngs_ring_close(ngs_ring *r)
{
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->closed, 1);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}
