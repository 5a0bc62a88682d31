/*
 * ring.h - single-producer single-consumer ring of variable-length records.
 *
 * ngspice's simulation thread is the producer: in a callback it reserves space,
 * copies one row (or a small event) in and commits, and nothing else. The
 * dispatcher thread consumes. When the ring is full the producer waits: data is
 * never dropped, the simulation is slowed instead.
 */
#ifndef NGS_HOOKS_RING_H
#define NGS_HOOKS_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct ngs_ring ngs_ring;

/* capacity is rounded up to a power of two (at least 4 KiB). */
int ngs_ring_create(ngs_ring **ring, size_t capacity);
void ngs_ring_destroy(ngs_ring *ring);

/* Largest payload one record may have. */
size_t ngs_ring_max_payload(const ngs_ring *ring);

/* Producer: space for one record of `size` payload bytes, 8-byte aligned.
 * Blocks while the ring is full. NULL when size > max payload or the ring is closed. */
void *ngs_ring_reserve(ngs_ring *ring, uint32_t kind, size_t size);
/* urgent: wake a sleeping consumer now. Otherwise it is woken only once the ring is
 * an eighth full (or finds the record at its next timed check): one wake-up per
 * thousands of rows instead of one per row. */
void ngs_ring_commit(ngs_ring *ring, int urgent);

/* Consumer: the oldest record. Returns 1 with a record, 0 on timeout (timeout_ms < 0
 * waits forever), -1 when the ring is closed and empty. */
int ngs_ring_peek(ngs_ring *ring, int timeout_ms, uint32_t *kind,
                  const void **payload, size_t *size);
/* Waits for a record without taking it: 1 when one is there, 0 on timeout, -1 when
 * the ring is closed and empty. Lets a thread wait outside a lock that serialises
 * the consumers (peek and release must be called by one thread at a time). */
int ngs_ring_wait(ngs_ring *ring, int timeout_ms);
/* Non-blocking: 1 with a record, 0 when empty. */
int ngs_ring_try_peek(ngs_ring *ring, uint32_t *kind, const void **payload, size_t *size);
void ngs_ring_release(ngs_ring *ring);

/* No more records will come (producer side) or none will be read (consumer side:
 * wakes a waiting producer, whose reserve then returns NULL). */
void ngs_ring_close(ngs_ring *ring);

#endif
