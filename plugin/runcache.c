/*
 * runcache.c - the result cache around one run (see runcache.h).
 *
 * The key covers what can change the result and is not in the netlist text:
 * ngspice's version and build, ngscale's format version, the --save filter, the
 * memory mode (it decides which vectors ngspice produces), spinit and the code
 * model libraries, and the .spiceinit files ngspice always reads.
 */
#include "plugin/runcache.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/cache_key.h"
#include "cache/record.h"
#include "codemodels/codemodels.h"

struct ngs_run_cache {
    ngs_cache *cache;
    ngs_cache_key key;
    char hit_path[4096];
    ngs_cache_hit_info info;
    ngs_recorder *rec;
    char rec_path[4096];
    const char *version;
    const char *work_dir;
};

/* The one way a spec becomes an open cache: NGS_ERR_ARG for a wrong spec or a
 * directory that is not a cache; another error for a cache that cannot be used now. */
static int open_spec(const char *spec, ngs_cache **cache, char *err, size_t errlen)
{
    char dir[4096], url[1024];
    ngs_cache_options copt;
    int r = ngs_cache_spec_parse(spec, dir, sizeof dir, url, sizeof url, err, errlen);
    *cache = NULL;
    if (r != NGS_OK) return r;
    ngs_cache_options_init(&copt);
    return ngs_cache_open(cache, dir[0] ? dir : NULL, url[0] ? url : NULL, &copt, err, errlen);
}

int ngs_run_cache_check(const char *spec, char *err, size_t errlen)
{
    ngs_cache *c;
    int r = open_spec(spec, &c, err, errlen);
    ngs_cache_close(c);
    return r == NGS_ERR_ARG ? r : NGS_OK;
}

int ngs_run_cache_begin(ngs_run_cache **out, ngs_engine *e, const char *spec, const ngs_deck *deck,
                        const char *netlist_path, const char *base_dir, const ngs_run_options *o,
                        int flat, int *hit, char *note, size_t notelen)
{
    ngs_run_cache *rc;
    char err[512] = "", save[600], mem[32], fmt[32], home_init[4096];
    const char *strings[6], *files[64], *search[3];
    char **cm = NULL;
    char *text;
    int n = 0, nf = 0, r;

    *out = NULL;
    *hit = 0;
    ngs_engine_search_dirs(e, search);
    rc = calloc(1, sizeof *rc);
    if (!rc) return NGS_ERR_NOMEM;
    r = open_spec(spec, &rc->cache, err, sizeof err);
    if (r != NGS_OK) {
        /* a wrong spec is the caller's to fix; a cache that cannot be used is a warning */
        if (r == NGS_ERR_ARG) snprintf(note, notelen, "cache: %s", err);
        else snprintf(note, notelen, "warning: cache unusable (%s); running without it", err);
        free(rc);
        return r == NGS_ERR_ARG ? r : NGS_OK;
    }
    strings[n++] = e->version;
    snprintf(fmt, sizeof fmt, "ngscale-format=%d", NGSCALE_FORMAT_VERSION);
    strings[n++] = fmt;
    snprintf(save, sizeof save, "save=%s", o->save ? o->save : "");
    strings[n++] = save;
    snprintf(mem, sizeof mem, "memory=%s", flat ? "flat" : "keep");
    strings[n++] = mem;
    strings[n] = NULL;
    files[nf++] = ".spiceinit";
    {   /* libngspice reads the account's home directory's, whatever $HOME says (strace) */
        struct passwd *pw = getpwuid(getuid());
        const char *home = pw && pw->pw_dir ? pw->pw_dir : getenv("HOME");
        if (home) {
            snprintf(home_init, sizeof home_init, "%s/.spiceinit", home);
            files[nf++] = home_init;
        }
    }
    if (ngs_codemodels_files(&cm) == NGS_OK)
        for (int i = 0; cm[i] && nf < 63; i++) files[nf++] = cm[i];
    files[nf] = NULL;
    text = ngs_deck_text(deck);
    r = text ? ngs_cache_key_compute(&rc->key, netlist_path, text, base_dir, search, strings, files,
                                     err, sizeof err)
             : NGS_ERR_NOMEM;
    free(text);
    for (int i = 0; cm && cm[i]; i++) free(cm[i]);
    free(cm);
    rc->version = e->version;
    rc->work_dir = e->work_dir;
    if (r != NGS_OK || !rc->key.cacheable) {
        snprintf(note, notelen, "not cached: %s", r != NGS_OK ? err : rc->key.reason);
        ngs_cache_close(rc->cache);
        free(rc);
        return NGS_OK;
    }
    if (ngs_cache_lookup(rc->cache, &rc->key, rc->hit_path, sizeof rc->hit_path, &rc->info) == NGS_OK) {
        *hit = 1;
        snprintf(note, notelen, "cache hit (%s, saves %.3g s of simulation)",
                 rc->info.tier == 2 ? "redis" : "local", rc->info.sim_seconds);
    } else {
        snprintf(note, notelen, "cache miss");
    }
    if (ngs_cache_take_warning(rc->cache, err, sizeof err)) {
        size_t len = strlen(note);
        snprintf(note + len, notelen - len, "; warning: %s", err);
    }
    *out = rc;
    return NGS_OK;
}

typedef struct {
    const ngs_sink *sinks;
    size_t n;
    int plots;
    uint64_t points;
} replay_ctx;

static int deliver(const ngs_event *ev, void *user)
{
    replay_ctx *c = user;
    int rc = 0;
    if (ev->kind == NGS_EV_PLOT_BEGIN) c->plots++;
    if (ev->kind == NGS_EV_ROWS) c->points += ev->nrows;
    for (size_t i = 0; i < c->n && rc == 0; i++)
        if ((c->sinks[i].mask & ev->kind) && c->sinks[i].on_event)
            rc = c->sinks[i].on_event(ev, c->sinks[i].user);
    return rc;
}

int ngs_run_cache_replay(ngs_run_cache *rc, const ngs_sink *sinks, size_t nsinks, int *nplots,
                         uint64_t *points, char *note, size_t notelen)
{
    replay_ctx c = {sinks, nsinks, 0, 0};
    char err[512] = "";
    int r = ngs_replay(rc->hit_path, deliver, &c, err, sizeof err);
    *nplots = c.plots;
    *points = c.points;
    if (r != NGS_OK && c.plots == 0) {
        /* refused before delivering anything: drop the entry and simulate */
        ngs_cache_remove(rc->cache, rc->key.hex);
        snprintf(note, notelen, "cache entry unusable (%s): simulating", err);
    }
    return r;
}

int ngs_run_cache_sink(ngs_run_cache *rc, ngs_sink *sink)
{
    char err[512];
    if (!rc) return NGS_ERR_ARG;
    snprintf(rc->rec_path, sizeof rc->rec_path, "%s/recording.ngsc", rc->work_dir);
    if (ngs_recorder_open(&rc->rec, rc->rec_path, 0, err, sizeof err) != NGS_OK) {
        rc->rec = NULL;
        return NGS_ERR_IO;
    }
    memset(sink, 0, sizeof *sink);
    sink->mask = NGS_RECORD_EVENTS;
    sink->on_event = ngs_recorder_sink;
    sink->user = rc->rec;
    return NGS_OK;
}

void ngs_run_cache_end(ngs_run_cache *rc, int status, double sim_seconds, char *note, size_t notelen)
{
    char err[512];
    if (!rc) return;
    if (rc->rec) {
        if (status == NGS_OK && ngs_recorder_finish(rc->rec, err, sizeof err) == NGS_OK) {
            if (ngs_cache_store(rc->cache, &rc->key, rc->rec_path, sim_seconds, rc->version) == NGS_OK) {
                size_t len = strlen(note);
                snprintf(note + len, notelen - len, ", stored");
            }
            unlink(rc->rec_path);
        } else if (status != NGS_OK) {
            ngs_recorder_abort(rc->rec);
        }
        if (ngs_cache_take_warning(rc->cache, err, sizeof err)) {
            size_t len = strlen(note);
            snprintf(note + len, notelen - len, "; warning: %s", err);
        }
    }
    ngs_cache_close(rc->cache);
    free(rc);
}

const char *ngs_run_cache_key(const ngs_run_cache *rc) { return rc ? rc->key.hex : ""; }
