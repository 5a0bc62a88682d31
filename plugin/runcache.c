/*
 * runcache.c - the result cache around one run (see runcache.h).
 *
 * The key covers what can change the result and is not in the netlist text:
 * ngspice's version and build, ngscale's format version, the --save filter, the
 * memory mode (it decides which vectors ngspice produces), spinit and the code
 * model libraries, and the .spiceinit files ngspice always reads (commands: the
 * key follows what they source and load, as in a .control block).
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

/* What the key is computed from, kept to compute it again when the run ends. */
typedef struct key_inputs {
    ngs_engine *e;
    char *text;         /* the deck as run */
    char *netlist_path; /* NULL: lines given */
    char *base_dir;
    char *save;
    int flat;
} key_inputs;

struct ngs_run_cache {
    ngs_cache *cache;
    ngs_cache_key key;
    char hit_path[4096];
    ngs_cache_hit_info info;
    ngs_recorder *rec;
    char rec_path[4096];
    const char *version;
    const char *work_dir;
    key_inputs inputs; /* for the check at the end */
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


static void key_inputs_free(key_inputs *k)
{
    free(k->text);
    free(k->netlist_path);
    free(k->base_dir);
    free(k->save);
}

static int compute_key(const key_inputs *k, ngs_cache_key *key, char *err, size_t errlen)
{
    char save[600], mem[32], fmt[32], home_init[4096];
    const char *strings[6], *files[64];
    char **cm = NULL;
    int n = 0, nf = 0, r;
    strings[n++] = k->e->version;
    snprintf(fmt, sizeof fmt, "ngscale-format=%d", NGSCALE_FORMAT_VERSION);
    strings[n++] = fmt;
    snprintf(save, sizeof save, "save=%s", k->save ? k->save : "");
    strings[n++] = save;
    snprintf(mem, sizeof mem, "memory=%s", k->flat ? "flat" : "keep");
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
    r = ngs_cache_key_compute(key, k->netlist_path, k->text, k->base_dir, ngs_engine_search_dirs(k->e), strings,
                              files, err, errlen);
    for (int i = 0; cm && cm[i]; i++) free(cm[i]);
    free(cm);
    return r;
}

int ngs_run_cache_begin(ngs_run_cache **out, ngs_engine *e, const char *spec, const ngs_deck *deck,
                        const char *netlist_path, const char *base_dir, const ngs_run_options *o,
                        int flat, int *hit, char *note, size_t notelen)
{
    ngs_run_cache *rc;
    char err[512] = "";
    key_inputs *k;
    int r;

    *out = NULL;
    *hit = 0;
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
    k = &rc->inputs;
    k->e = e;
    k->flat = flat;
    k->text = ngs_deck_text(deck);
    k->netlist_path = netlist_path ? strdup(netlist_path) : NULL;
    k->base_dir = base_dir ? strdup(base_dir) : NULL;
    k->save = o->save ? strdup(o->save) : NULL;
    if (!k->text || (netlist_path && !k->netlist_path) || (base_dir && !k->base_dir) || (o->save && !k->save))
        r = NGS_ERR_NOMEM;
    else
        r = compute_key(k, &rc->key, err, sizeof err);
    rc->version = e->version;
    rc->work_dir = e->work_dir;
    if (r != NGS_OK || !rc->key.cacheable) {
        snprintf(note, notelen, "not cached: %s", r != NGS_OK ? (err[0] ? err : ngs_strerror(r)) : rc->key.reason);
        ngs_cache_close(rc->cache);
        key_inputs_free(k);
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
    const ngs_plot_desc *open; /* the plot begun and not ended, and its rows so far */
    uint64_t open_rows;
} replay_ctx;

static int deliver(const ngs_event *ev, void *user)
{
    replay_ctx *c = user;
    int rc;
    if (ev->kind == NGS_EV_PLOT_BEGIN) {
        c->plots++;
        c->open = ev->plot;
        c->open_rows = 0;
    }
    if (ev->kind == NGS_EV_ROWS) {
        c->points += ev->nrows;
        c->open_rows += ev->nrows;
    }
    if (ev->kind == NGS_EV_PLOT_END) c->open = NULL;
    rc = ngs_sinks_deliver(c->sinks, c->n, ev);
    if (rc != 0 && c->open) {
        /* a sink stops the replay (ngs_replay delivers nothing more): its plot ends as
         * a live run's stopped plot does, while its descriptor is still valid */
        ngs_event end;
        memset(&end, 0, sizeof end);
        end.kind = NGS_EV_PLOT_END;
        end.plot = c->open;
        end.total_rows = c->open_rows;
        end.status = NGS_ERR_INTERRUPTED;
        end.text = "the analysis was stopped before its end";
        c->open = NULL;
        ngs_sinks_deliver(c->sinks, c->n, &end);
    }
    return rc;
}

int ngs_run_cache_replay(ngs_run_cache *rc, const ngs_sink *sinks, size_t nsinks, int *nplots,
                         uint64_t *points, char *note, size_t notelen)
{
    replay_ctx c = {sinks, nsinks, 0, 0, NULL, 0};
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
            /* a file the run reads edited meanwhile (a script sourced late, an include):
             * the result is of neither version, and the old key would hand it out */
            ngs_cache_key now;
            size_t len = strlen(note);
            if (compute_key(&rc->inputs, &now, err, sizeof err) != NGS_OK || !now.cacheable ||
                strcmp(now.hex, rc->key.hex) != 0)
                snprintf(note + len, notelen - len, ", not stored: a file the run reads changed while it ran");
            else if (ngs_cache_store(rc->cache, &rc->key, rc->rec_path, sim_seconds, rc->version) == NGS_OK)
                snprintf(note + len, notelen - len, ", stored");
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
    key_inputs_free(&rc->inputs);
    free(rc);
}

const char *ngs_run_cache_key(const ngs_run_cache *rc) { return rc ? rc->key.hex : ""; }
