/*
 * cache.h - the result cache: a local content-addressed store, and optionally a
 * Redis server shared by a team as a second tier.
 *
 * An entry is a recording (cache/record.h) of a finished run, named by its key
 * (cache/cache_key.h). A hit hands back the path of a verified local file that
 * ngs_replay() turns into the run's events again; a Redis hit is downloaded into
 * the local tier, verified, and then served like a local one.
 *
 * Local layout: DIR/ab/abcdef....ngsc (the recording), DIR/ab/abcdef....meta
 * (checksummed metadata; its mtime is the entry's last use), DIR/stats (counters),
 * DIR/lock (flock), DIR/CACHEDIR.TAG. Files are written under temporary names
 * (".tmp-*", flock'ed by their writer), fsync'ed and renamed into place; when two
 * processes store one key at once, the first complete entry wins.
 *
 * Redis layout: "ngscale:v1:<key>" holds a text manifest (size, chunk count and
 * size, SHA-256 of the whole file, metadata); the file itself is split into chunks
 * "ngscale:v1:<key>:<first 16 hex of the recording's checksum>:<n>". Chunks are
 * written first, the manifest last, all with a TTL; a reader checks the SHA-256.
 *
 * Failures of the cache never fail a run: a Redis that is unreachable, slow or
 * refusing gives a warning (callback and ngs_cache_take_warning) and is skipped for
 * redis_retry_s, by every ngs_cache of the process on the same URL; a corrupt entry is deleted and counted as a miss.
 *
 * Threads: one ngs_cache may be shared by several threads. Local operations are
 * serialized between threads and processes by flock on DIR/lock where needed; the
 * Redis connection is one per ngs_cache, used by one thread at a time (a thread
 * doing a long transfer makes the others wait for Redis, never for the local tier
 * beyond that).
 *
 * Typical use around a run:
 *   ngs_cache_key_compute(&key, netlist, NULL, NULL, search_dirs, strings, files, err, n);
 *   if (key.cacheable && ngs_cache_lookup(cache, &key, hit, sizeof hit, &info) == NGS_OK &&
 *       ngs_replay(hit, deliver, sinks, err, n) == NGS_OK)
 *       -> done: the sinks saw the recorded run (if ngs_replay fails with IO/FORMAT,
 *          nothing was delivered: ngs_cache_remove() and run normally);
 *   else: ngs_recorder_open(&rec, tmp, 0, ...), add ngs_recorder_sink with mask
 *       NGS_RECORD_EVENTS, run; only a run that completed: ngs_recorder_finish() then
 *       ngs_cache_store(cache, &key, tmp, seconds, version) and unlink(tmp);
 *       otherwise ngs_recorder_abort().
 */
#ifndef NGS_CACHE_H
#define NGS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "ngscale.h"
#include "cache/cache_key.h"

/* ngs_cache_lookup's "not in the cache" (positive: not an error). */
#define NGS_CACHE_MISS 1
/* ngs_cache_store's "over the local size cap: not kept locally" (positive: not an error). */
#define NGS_CACHE_NOT_STORED 2

typedef struct ngs_cache ngs_cache;

/* Called for every warning (Redis unreachable, corrupt entry...), from the thread
 * that met it. It must not call back into the same ngs_cache. */
typedef void (*ngs_cache_warn_fn)(const char *message, void *user);

typedef struct ngs_cache_options {
    uint64_t max_bytes;           /* local tier size cap, LRU eviction; 0: $NGSCALE_CACHE_SIZE
                                     ("20G"; not a size: ngs_cache_open fails, NGS_ERR_ARG), else 10 GiB */
    int redis_ttl_s;              /* expiry of Redis keys (refreshed on hits); 0: 30 days */
    int redis_connect_timeout_ms; /* 0: 200 ms */
    int redis_command_timeout_ms; /* per socket read/write; 0: 2000 ms */
    size_t redis_chunk_bytes;     /* 0: 4 MiB */
    int redis_retry_s;            /* after a Redis failure, skip Redis this long; 0: 30 s, <0: never skip */
    int tmp_grace_s;              /* gc leaves unlocked temp files younger than this; 0: 60 s, <0: none */
    ngs_cache_warn_fn warn;       /* NULL: warnings are only kept for ngs_cache_take_warning */
    void *warn_user;
} ngs_cache_options;

void ngs_cache_options_init(ngs_cache_options *options);

/* $XDG_CACHE_HOME/ngscale, else $HOME/.cache/ngscale. NGS_OK, NGS_ERR_ARG (neither
 * variable set) or NGS_ERR_IO (does not fit in n). */
int ngs_cache_default_dir(char *out, size_t n);

/*
 * Opens (creating it if needed) the local tier at local_dir (NULL: the default
 * directory), with Redis as second tier when redis_url is not NULL:
 * redis://[[user]:password@]host[:port][/db] (port 6379 and db 0 by default;
 * "%xx" escapes allowed in user and password; "redis://secret@host" gives a
 * password). Redis is connected lazily: opening never waits for it.
 * options may be NULL (defaults). A directory that already holds files must carry
 * ngscale's CACHEDIR.TAG: another directory is never taken over. An existing cache
 * this process may not write (permissions, a read-only mount) opens read-only:
 * lookups hit, a store warns and keeps nothing locally. With a Redis URL, a default
 * directory that cannot be used (none, not a cache, not creatable) or a named one
 * that cannot be created opens as Redis alone: hits are staged in a directory in
 * $TMPDIR removed at close, and the warning says so. Returns NGS_OK, NGS_ERR_ARG
 * (bad URL or options, a directory that is not a cache), NGS_ERR_IO (the directory
 * cannot be created, or written when it is no cache yet) or NGS_ERR_NOMEM.
 */
int ngs_cache_open(ngs_cache **cache, const char *local_dir, const char *redis_url,
                   const ngs_cache_options *options, char *err, size_t errlen);
void ngs_cache_close(ngs_cache *cache);

/* Splits a cache spec: "DIR", "redis://URL" (the default directory is then the first
 * tier) or "DIR,redis://URL", and checks the URL's form; nothing is opened. dir and
 * url get "" where the spec has none. NGS_OK, or NGS_ERR_ARG (err says why). */
int ngs_cache_spec_parse(const char *spec, char *dir, size_t dn, char *url, size_t un, char *err,
                         size_t errlen);

const char *ngs_cache_dir(const ngs_cache *cache);

typedef struct ngs_cache_hit_info {
    int tier;                  /* 1: local store, 2: Redis (now also local) */
    uint64_t bytes;            /* size of the recording */
    double sim_seconds;        /* run time the entry saves */
    int64_t created;           /* when it was stored (Unix seconds) */
    char ngspice_version[128];
} ngs_cache_hit_info;

/*
 * Looks a key up: the local tier, then Redis. A Redis entry larger than the local
 * size cap (or any, when the local tier is read-only) is staged in a directory of
 * the handle's own, removed at close, and the warning says so. On a hit, path
 * receives the path of a verified recording (pass it to ngs_replay; it stays valid until evicted, and if
 * another process evicts it first, ngs_replay fails before delivering any event:
 * then run the simulation). info may be NULL. Counts a hit or a miss.
 * Returns NGS_OK (hit), NGS_CACHE_MISS (not found, corrupt, or Redis failing), or
 * NGS_ERR_ARG (key not cacheable, path buffer too small).
 */
int ngs_cache_lookup(ngs_cache *cache, const ngs_cache_key *key, char *path, size_t n,
                     ngs_cache_hit_info *info);

/*
 * Stores a finished recording (ngs_recorder_finish) under key: copied into the local
 * tier (the caller keeps and may delete its file), then uploaded to Redis if
 * configured. sim_seconds: how long the run took (reported as time saved by hits);
 * ngspice_version may be NULL. Returns NGS_OK (stored, or an equal entry was already
 * there), NGS_CACHE_NOT_STORED (the entry, recording and metadata, is larger than
 * max_bytes: not kept locally; or, Redis alone, Redis did not take it; the warning
 * says so), NGS_ERR_ARG (key not cacheable), NGS_ERR_FORMAT (the recording fails
 * verification), NGS_ERR_IO (local tier: disk full, permissions) or NGS_ERR_NOMEM.
 * A Redis failure is only a warning.
 */
int ngs_cache_store(ngs_cache *cache, const ngs_cache_key *key, const char *recording_path,
                    double sim_seconds, const char *ngspice_version);

/* Removes one local entry (e.g. after ngs_replay refused it). NGS_OK (also when it
 * was not there), NGS_ERR_ARG, NGS_ERR_IO. */
int ngs_cache_remove(ngs_cache *cache, const char *key_hex);

typedef struct ngs_cache_stats {
    uint64_t entries, bytes, max_bytes; /* local tier now */
    uint64_t hits, misses;              /* lookups, all processes, since the last reset */
    uint64_t redis_hits;                /* hits served from Redis */
    uint64_t stores, evictions, corrupt;
    uint64_t bytes_served;
    double sim_seconds_saved;
} ngs_cache_stats;

/* Counters are kept in DIR/stats, updated under flock by every process. */
int ngs_cache_get_stats(ngs_cache *cache, ngs_cache_stats *stats);

typedef struct ngs_cache_entry {
    char key[65];
    uint64_t bytes;
    int64_t created, last_used; /* Unix seconds */
    double sim_seconds;
    char ngspice_version[128];
} ngs_cache_entry;

/* Calls fn for every local entry, most recently used first; a non-zero return
 * stops the walk. Returns NGS_OK, NGS_ERR_NOMEM, NGS_ERR_IO. */
typedef int (*ngs_cache_list_fn)(const ngs_cache_entry *entry, void *user);
int ngs_cache_list(ngs_cache *cache, ngs_cache_list_fn fn, void *user);

typedef struct ngs_cache_gc_result {
    uint64_t temp_removed;    /* stray temporary files (dead writers) */
    uint64_t corrupt_removed; /* entries failing their checks, halves of entries */
    uint64_t evicted;         /* least recently used entries over the cap */
    uint64_t entries, bytes;  /* what is left */
} ngs_cache_gc_result;

/* Removes stray temporary files and corrupt entries, then evicts down to the cap.
 * verify_data: also check every recording's SHA-256 (reads everything). result may
 * be NULL. Returns NGS_OK, NGS_ERR_IO, NGS_ERR_NOMEM. */
int ngs_cache_gc(ngs_cache *cache, int verify_data, ngs_cache_gc_result *result);

/* Removes every local entry (Redis is left alone); reset_stats also zeroes the
 * counters. removed may be NULL. Returns NGS_OK, NGS_ERR_IO. */
int ngs_cache_clear(ngs_cache *cache, int reset_stats, uint64_t *removed);

/* Copies the last warning into buf and forgets it. Returns 1 if there was one, 0 if not. */
int ngs_cache_take_warning(ngs_cache *cache, char *buf, size_t n);

#endif
