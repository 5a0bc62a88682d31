/*
 * runcache.h - the result cache around one run (plugin/run.c uses it).
 *
 * Before ngspice runs: compute the key, look it up, and on a hit replay the
 * recorded events into the run's sinks (the same HDF5 content and hook calls a
 * simulation would give). On a miss, a recorder sink is added to the run and a
 * run that completed is stored.
 */
#ifndef NGS_PLUGIN_RUNCACHE_H
#define NGS_PLUGIN_RUNCACHE_H

#include "plugin/deck.h"
#include "plugin/engine_internal.h"

typedef struct ngs_run_cache ngs_run_cache;

/* Opens the cache named by spec ("DIR", "redis://..." (with the default local
 * directory as first tier), or "DIR,redis://..."), computes the run's key and
 * looks it up. *hit is set when a verified recording is ready to replay. A cache
 * that cannot be used is not an error: note says why and the run goes on. A wrong
 * spec, or a directory that is not a cache, is NGS_ERR_ARG (note says why). */
int ngs_run_cache_begin(ngs_run_cache **rc, ngs_engine *e, const char *spec, const ngs_deck *deck,
                        const char *netlist_path, const char *base_dir, const ngs_run_options *o,
                        int flat, int *hit, char *note, size_t notelen);

/* NGS_ERR_ARG (err says why) when spec is wrong or names a directory that is not a
 * cache: what every run with it would refuse. A cache that merely cannot be used now
 * is NGS_OK (each run warns). For refusing up front, before many runs start. */
int ngs_run_cache_check(const char *spec, char *err, size_t errlen);

/* Replays the hit into sinks; counts plots and points. NGS_OK; NGS_ERR_INTERRUPTED
 * when a sink returned non-zero (every sink still got that event, the plot under way
 * then gets its PLOT_END with NGS_ERR_INTERRUPTED, and nothing follows); or another
 * error, before anything was delivered when *nplots is 0 (the entry is dropped;
 * simulate instead). */
int ngs_run_cache_replay(ngs_run_cache *rc, const ngs_sink *sinks, size_t nsinks, int *nplots,
                         uint64_t *points, char *note, size_t notelen);

/* The sink that records a simulated run (mask and function); NULL when not caching. */
int ngs_run_cache_sink(ngs_run_cache *rc, ngs_sink *sink);

/* After the run: stores a complete one, drops anything else; frees rc. */
void ngs_run_cache_end(ngs_run_cache *rc, int status, double sim_seconds, char *note, size_t notelen);

const char *ngs_run_cache_key(const ngs_run_cache *rc);

#endif
