/*
 * batch.c - many jobs on a pool of engines, one output file.
 *
 * Each worker thread owns one engine (its own copy of libngspice, its own copies of
 * the code models, one OpenMP thread) and takes the next job when it is free. Jobs
 * write their groups straight into the one output file (HDF5's lock serialises
 * the calls; each job has its own group and datasets). The calling thread appends
 * finished jobs to /summary and flushes the file at most once a second. So memory
 * stays bounded whatever the number of jobs, and a finished job reaches the file
 * without being written twice.
 */
#include <errno.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ngscale.h"
#include "hooks/clock.h"
#include "plugin/deck.h"
#include "plugin/engine_internal.h"
#include "plugin/runcache.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"
#include "storage/pool.h"

#define REPORT_MS 100 /* finished jobs reach /summary's queue and the progress line this often */

typedef struct finished {
    size_t job;
    int status;
    char *message;
    double wall_s;
    uint64_t points;
    int cache_hit;
    char *warning; /* the cache's trouble or --save's unmatched names; NULL: none */
    struct finished *next;
} finished;

typedef struct {
    const char *path; /* the job's pointer */
    ngs_deck deck;
} netlist_snapshot;

struct ngs_batch {
    ngs_batch_options opt;
    int nworkers;
    ngs_engine **engines;
    int started;       /* ngs_batch_create succeeded: every engine is there */
    char err[1024];
    atomic_int stop;
    atomic_int in_run;   /* ngs_batch_run under way (one at a time; destroy waits for it) */
    /* one run */
    const ngs_job *jobs;
    size_t njobs;
    atomic_size_t next;
    int64_t out_file; /* hid_t of the output, shared by the workers' writers */
    pthread_mutex_t file_lock; /* their stretches of HDF5 calls on it take turns */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    finished *queue, *queue_tail;
    size_t running, workers_left;
    /* netlists of jobs with overrides, read once at the start of the run: a sweep or
     * Monte Carlo runs one circuit even if its file is edited meanwhile */
    netlist_snapshot *snapshots;
    size_t nsnapshots;
    char seed_warning[384]; /* jobs' seeds that change nothing: said in the first report */
};

static void set_error(ngs_batch *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof b->err, fmt, ap);
    va_end(ap);
}

const char *ngs_batch_last_error(const ngs_batch *b) { return b ? b->err : ""; }

void ngs_job_init(ngs_job *job, const char *netlist)
{
    memset(job, 0, sizeof *job);
    job->netlist = netlist;
    job->seed = -1;
}

void ngs_batch_options_init(ngs_batch_options *o)
{
    memset(o, 0, sizeof *o);
    o->codec = NGS_CODEC_ZSTD;
    o->memory = NGS_MEMORY_AUTO;
}

typedef struct {
    ngs_engine **engine;
    int rc;
    pthread_t thread;
    int started;
} engine_start;

static void start_engine(engine_start *s)
{
    ngs_engine_config cfg;
    ngs_engine_config_init(&cfg);
    cfg.num_threads = 1;          /* many instances: one thread each */
    cfg.private_codemodels = 1;   /* shared .cm files give wrong results */
    s->rc = ngs_engine_create(s->engine, &cfg);
}

static void *start_engine_thread(void *arg)
{
    start_engine(arg);
    return NULL;
}

/* The engines are created side by side: copying libngspice and the code models and
 * loading them take ~9 ms each (only ngspice's Init goes one at a time), which one
 * after another grew with the core count before any job could start. */
static int start_engines(ngs_batch *b)
{
    engine_start *s = calloc((size_t)b->nworkers, sizeof *s);
    int rc = NGS_OK;
    if (!s) return NGS_ERR_NOMEM;
    for (int i = 0; i < b->nworkers; i++) {
        s[i].engine = &b->engines[i];
        s[i].started = i > 0 && pthread_create(&s[i].thread, NULL, start_engine_thread, &s[i]) == 0;
    }
    for (int i = 0; i < b->nworkers; i++) {
        if (s[i].started) pthread_join(s[i].thread, NULL);
        else start_engine(&s[i]); /* the first one, or no thread to spare */
    }
    for (int i = 0; i < b->nworkers && rc == NGS_OK; i++) {
        if ((rc = s[i].rc) != NGS_OK)
            set_error(b, "cannot start ngspice instance %d: %s", i + 1,
                      b->engines[i] ? ngs_engine_last_error(b->engines[i]) : ngs_strerror(rc));
    }
    free(s);
    return rc;
}

/* Every job runs with these; ngs_batch_create checks them once. */
static void job_run_options(const ngs_batch_options *bo, const char *group, ngs_run_options *o)
{
    ngs_run_options_init(o);
    o->output_path = bo->output_path;
    o->group = group;
    o->codec = bo->codec;
    o->level = bo->level;
    o->save = bo->save;
    o->memory = bo->memory;
    o->timeout_s = bo->timeout_s;
    o->encoder_threads = 1; /* the workers already use every core */
    o->cache = bo->cache;
    o->lossy = bo->lossy;
}

/* What every job would refuse is refused once, before any instance starts. */
static int check_batch_options(ngs_batch *b)
{
    ngs_run_options o;
    char why[768];
    int rc;
    if (b->opt.jobs < 0 || b->opt.jobs > NGS_BATCH_JOBS_MAX) {
        set_error(b, "jobs must be 0 (one per core) to %d, not %d", NGS_BATCH_JOBS_MAX, b->opt.jobs);
        return NGS_ERR_ARG;
    }
    job_run_options(&b->opt, "job", &o);
    if ((rc = ngs_run_options_check(&o, why, sizeof why)) != NGS_OK ||
        (b->opt.cache && (rc = ngs_run_cache_check(b->opt.cache, why, sizeof why)) != NGS_OK))
        set_error(b, "%s", why);
    return rc;
}

int ngs_batch_create(ngs_batch **out, const ngs_batch_options *options)
{
    ngs_batch *b;
    ngs_engine **engines;
    int rc, n;
    if (!out) return NGS_ERR_ARG;
    *out = NULL;
    if (!options || !options->output_path) return NGS_ERR_ARG;
    b = calloc(1, sizeof *b);
    if (!b) return NGS_ERR_NOMEM;
    b->opt = *options;
    atomic_init(&b->stop, 0);
    atomic_init(&b->in_run, 0);
    atomic_init(&b->next, 0);
    pthread_mutex_init(&b->lock, NULL);
    pthread_mutex_init(&b->file_lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    *out = b; /* on failure too: the caller reads the error, then destroys it */
    if ((rc = check_batch_options(b)) != NGS_OK) return rc;
    n = options->jobs > 0 ? options->jobs : ngs_cpu_count();
    if (!(engines = calloc((size_t)n, sizeof *engines))) {
        set_error(b, "out of memory");
        return NGS_ERR_NOMEM;
    }
    b->engines = engines; /* before the count: ngs_batch_interrupt may read both */
    b->nworkers = n;
    if ((rc = start_engines(b)) == NGS_OK) b->started = 1;
    return rc;
}

void ngs_batch_destroy(ngs_batch *b)
{
    if (!b) return;
    /* a run on another thread is stopped and waited for, as an engine's is */
    while (!ngs_claim_flag(&b->in_run)) {
        ngs_batch_interrupt(b);
        usleep(2000);
    }
    for (int i = 0; b->engines && i < b->nworkers; i++) ngs_engine_destroy(b->engines[i]);
    free(b->engines);
    pthread_mutex_destroy(&b->lock);
    pthread_mutex_destroy(&b->file_lock);
    pthread_cond_destroy(&b->cond);
    free(b);
}

void ngs_batch_interrupt(ngs_batch *b)
{
    if (!b) return;
    atomic_store(&b->stop, 1);
    for (int i = 0; i < b->nworkers; i++)
        if (b->engines[i]) ngs_engine_interrupt(b->engines[i]);
}

/* ------------------------------------------------------------- workers -- */

/* The job's temperature, NULL for the netlist's own (NULL or "", as a CSV's empty cell) */
static const char *job_temp(const ngs_job *job)
{
    return job->temp && *job->temp ? job->temp : NULL;
}

static int job_has_overrides(const ngs_job *job)
{
    return job->nparams || job_temp(job) || job->seed >= 0;
}

static const netlist_snapshot *find_snapshot(const ngs_batch *b, const char *path)
{
    for (size_t i = b->nsnapshots; i-- > 0;) /* the newest first: jobs of one netlist come together */
        if (strcmp(b->snapshots[i].path, path) == 0) return &b->snapshots[i];
    return NULL;
}

static void free_snapshots(ngs_batch *b)
{
    for (size_t i = 0; i < b->nsnapshots; i++) ngs_deck_free(&b->snapshots[i].deck);
    free(b->snapshots);
    b->snapshots = NULL;
    b->nsnapshots = 0;
}

/* Reads each netlist that jobs add overrides to, once, and refuses overrides that
 * ngspice would not apply: any in an *ng_script deck (it takes commands, not cards),
 * and a job's seed where the netlist sets its own (ngspice keeps the first seed it
 * reads, so every job would draw the same numbers). A netlist that cannot be read is
 * left to fail its jobs with the reason. */
static int snapshot_netlists(ngs_batch *b, const ngs_job *jobs, size_t njobs)
{
    b->seed_warning[0] = '\0';
    for (size_t i = 0; i < njobs; i++) {
        const ngs_job *j = &jobs[i];
        const netlist_snapshot *snap;
        char err[512];
        if (!job_has_overrides(j)) continue;
        if (!(snap = find_snapshot(b, j->netlist))) {
            netlist_snapshot *grown = realloc(b->snapshots, (b->nsnapshots + 1) * sizeof *grown);
            netlist_snapshot *n;
            char *abs;
            if (!grown) return NGS_ERR_NOMEM;
            b->snapshots = grown;
            n = &b->snapshots[b->nsnapshots];
            if (ngs_deck_load_file(&n->deck, j->netlist, err, sizeof err) != NGS_OK) continue;
            n->path = j->netlist;
            b->nsnapshots++;
            if ((abs = realpath(j->netlist, NULL)) != NULL) { /* a seed set in an included file counts */
                /* where the job's run will look */
                ngs_deck_add_included(&n->deck, dirname(abs), ngs_engine_search_dirs(b->engines[0]));
                free(abs);
            }
            snap = n;
        }
        if (snap->deck.is_script) {
            set_error(b, "job %zu: %s is an *ng_script deck (commands only): its parameters, temp and seed "
                         "cannot be added to it", i, j->netlist);
            return NGS_ERR_ARG;
        }
        if (j->seed >= 0 && snap->deck.sets_seed) {
            set_error(b, "job %zu: %s sets its own random seed (.options seed, setseed or rndseed), which "
                         "ngspice would keep instead of the job's seed %lld: remove it from the netlist",
                      i, j->netlist, j->seed);
            return NGS_ERR_ARG;
        }
        if (job_temp(j) && snap->deck.sets_temp) {
            set_error(b, "job %zu: %s sets the temperature in its .control block (set temp= or option "
                         "temp=), which ngspice would use instead of the job's temp %s: remove it from "
                         "the netlist", i, j->netlist, j->temp);
            return NGS_ERR_ARG;
        }
        /* a Monte Carlo of a circuit that draws nothing runs N times the same job */
        if (j->seed >= 0 && !b->seed_warning[0] && !ngs_deck_uses_random(&snap->deck))
            snprintf(b->seed_warning, sizeof b->seed_warning,
                     "%s names none of ngspice's random functions or noise sources (agauss, gauss, "
                     "aunif, unif, trnoise, trrandom...): the jobs' seeds change nothing, so jobs that "
                     "differ only in their seed give the same result", j->netlist);
    }
    return NGS_OK;
}

/* The job's deck: its netlist (as read at the start, for a job with overrides) with
 * its overrides before `.end` (a later .param wins over an earlier one in ngspice). */
static int job_deck(const ngs_batch *b, const ngs_job *job, ngs_deck *deck, char *err, size_t errlen)
{
    size_t n = job->nparams + 2, k = 0;
    char **extra;
    const netlist_snapshot *snap = job_has_overrides(job) ? find_snapshot(b, job->netlist) : NULL;
    int rc;
    if (snap) {
        rc = ngs_deck_from_lines(deck, (const char *const *)snap->deck.lines, snap->deck.nlines);
        if (rc != NGS_OK) snprintf(err, errlen, "out of memory");
        else deck->closed_control = snap->deck.closed_control;
    } else {
        rc = ngs_deck_load_file(deck, job->netlist, err, errlen);
    }
    if (rc != NGS_OK) return rc;
    extra = calloc(n, sizeof *extra);
    if (!extra) {
        ngs_deck_free(deck);
        snprintf(err, errlen, "out of memory");
        return NGS_ERR_NOMEM;
    }
    for (size_t i = 0; i < job->nparams; i++) {
        size_t len = strlen(job->param_names[i]) + strlen(job->param_values[i]) + 16;
        if ((extra[k] = malloc(len)))
            snprintf(extra[k++], len, ".param %s=%s", job->param_names[i], job->param_values[i]);
    }
    if (job_temp(job) && (extra[k] = malloc(strlen(job->temp) + 8)))
        sprintf(extra[k++], ".temp %s", job->temp);
    if (job->seed >= 0 && (extra[k] = malloc(48)))
        snprintf(extra[k++], 48, ".options seed=%lld", job->seed);
    rc = ngs_deck_insert_before_end(deck, (const char *const *)extra, k);
    for (size_t i = 0; i < k; i++) free(extra[i]);
    free(extra);
    return rc;
}

/* A job's label: its own, whole (a summary string has no length limit), or its index. */
static const char *job_label(const ngs_job *job, size_t i, char index[24])
{
    if (job->label) return job->label;
    snprintf(index, 24, "%zu", i);
    return index;
}

/* The attributes a job's group gets besides a run's: label, netlist, parameters. */
typedef struct {
    size_t n;
    char **keys, **values;
} job_attrs;

static void job_attrs_free(job_attrs *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->keys[i]);
        free(a->values[i]);
    }
    free(a->keys);
    free(a->values);
}

static int job_attrs_add(job_attrs *a, const char *prefix, const char *key, const char *value)
{
    size_t len = strlen(prefix) + strlen(key) + 1;
    a->keys[a->n] = malloc(len);
    a->values[a->n] = strdup(value);
    if (!a->keys[a->n] || !a->values[a->n]) {
        free(a->keys[a->n]);
        free(a->values[a->n]);
        return NGS_ERR_NOMEM;
    }
    snprintf(a->keys[a->n], len, "%s%s", prefix, key);
    a->n++;
    return NGS_OK;
}

static int job_attrs_make(const ngs_job *job, size_t i, job_attrs *a)
{
    char index[24], seed[32];
    size_t cap = job->nparams + 4;
    int rc;
    memset(a, 0, sizeof *a);
    a->keys = calloc(cap, sizeof *a->keys);
    a->values = calloc(cap, sizeof *a->values);
    if (!a->keys || !a->values) return NGS_ERR_NOMEM;
    rc = job_attrs_add(a, "", "job_label", job_label(job, i, index));
    if (rc == NGS_OK) rc = job_attrs_add(a, "", "job_netlist", job->netlist);
    for (size_t k = 0; rc == NGS_OK && k < job->nparams; k++)
        rc = job_attrs_add(a, "param.", job->param_names[k], job->param_values[k]);
    if (rc == NGS_OK && job_temp(job)) rc = job_attrs_add(a, "param.", "temp", job->temp);
    if (rc == NGS_OK && job->seed >= 0) {
        snprintf(seed, sizeof seed, "%lld", job->seed);
        rc = job_attrs_add(a, "param.", "seed", seed);
    }
    return rc;
}

static int run_job(ngs_batch *b, ngs_engine *e, size_t i, ngs_run_result *res, char *err, size_t errlen)
{
    const ngs_job *job = &b->jobs[i];
    ngs_deck deck;
    ngs_run_options o;
    ngs_run_into into;
    job_attrs attrs;
    char group[64], *abs, *dir;
    int rc = job_deck(b, job, &deck, err, errlen);
    if (rc != NGS_OK) return rc;
    if ((rc = job_attrs_make(job, i, &attrs)) != NGS_OK) {
        job_attrs_free(&attrs);
        ngs_deck_free(&deck);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    snprintf(group, sizeof group, "job_%08zu", i);
    job_run_options(&b->opt, group, &o);
    into.file = b->out_file;
    into.file_lock = &b->file_lock;
    into.attr_keys = (const char *const *)attrs.keys;
    into.attr_values = (const char *const *)attrs.values;
    into.nattrs = attrs.n;
    abs = realpath(job->netlist, NULL);
    into.netlist_path = abs ? abs : job->netlist;
    dir = abs ? strdup(abs) : NULL;
    rc = ngs_run_lines_into(e, (const char *const *)deck.lines, deck.nlines, dir ? dirname(dir) : NULL,
                            &o, &into, res);
    snprintf(err, errlen, "%s", rc == NGS_OK ? "" : ngs_engine_last_error(e));
    free(dir);
    free(abs);
    job_attrs_free(&attrs);
    ngs_deck_free(&deck);
    return rc;
}

typedef struct {
    ngs_batch *b;
    int index;
    int started; /* its thread runs and must be joined */
} worker_arg;

static void *worker_main(void *arg)
{
    ngs_batch *b = ((worker_arg *)arg)->b;
    ngs_engine *e = b->engines[((worker_arg *)arg)->index];
    for (;;) {
        size_t i;
        ngs_run_result res;
        char err[sizeof e->last_error] = ""; /* ngspice's whole text, as the job's group has it */
        finished *f;
        int rc;
        double t0;
        if (atomic_load(&b->stop)) break;
        i = atomic_fetch_add(&b->next, 1);
        if (i >= b->njobs) break;
        t0 = ngs_now_s();
        memset(&res, 0, sizeof res);
        rc = run_job(b, e, i, &res, err, sizeof err);
        f = calloc(1, sizeof *f);
        if (!f) continue; /* the summary will say "not run" */
        f->job = i;
        f->status = rc;
        f->message = strdup(err);
        f->wall_s = ngs_now_s() - t0;
        f->points = res.points;
        f->cache_hit = res.cache_hit;
        if (strstr(res.cache_note, "warning")) f->warning = strdup(res.cache_note);
        else if (res.warning[0]) f->warning = strdup(res.warning);
        if (rc == NGS_OK && res.warning[0]) { /* complete, with a note in /summary */
            free(f->message);
            f->message = strdup(res.warning);
        }
        pthread_mutex_lock(&b->lock);
        if (b->queue_tail) b->queue_tail->next = f; else b->queue = f;
        b->queue_tail = f;
        /* no wake-up per job: the calling thread looks every REPORT_MS (waking it for
         * each tiny job cost a context switch that the job's own thread waited on) */
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_lock(&b->lock);
    b->workers_left--;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* -------------------------------------------------------------- output -- */

typedef struct {
    int64_t job;
    const char *label, *status, *message, *netlist;
    double wall_s;
    int64_t points;
    int64_t cache_hit;
    double temp;
    int64_t seed;
} summary_fixed;

/* A /summary row waiting for the next flush; f NULL: the job never ran. */
typedef struct {
    size_t job;
    finished *f;
} pending_row;

typedef struct {
    hid_t file, summary, row_type;
    /* an existing file is replaced only when the batch ends: written at tmp beside it,
     * renamed over dest; NULL for a new file, written in place */
    char *tmp, *dest;
    int frozen; /* a flush failed: the file keeps its last good one (ngs_h5_freeze_file) */
    size_t nparams, row_size, rows;
    pending_row *pending;
    size_t npending, pending_cap;
} output;

static hid_t create_summary(hid_t file, hid_t row_type)
{
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = 256;
    hid_t space = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE), d;
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 4);
    d = H5Dcreate2(file, "summary", row_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

/* Whether HDF5 can store /summary with this row type, tried in a file in memory
 * with the output's format. */
static int summary_fits(hid_t row_type)
{
    static atomic_uint trials; /* a name of its own: batches may run side by side */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file, d = H5I_INVALID_HID;
    char name[64];
    snprintf(name, sizeof name, "ngscale-summary-trial-%u", atomic_fetch_add(&trials, 1));
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5E_BEGIN_TRY {
        file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (file >= 0) d = create_summary(file, row_type);
    } H5E_END_TRY;
    if (d >= 0) H5Dclose(d);
    if (file >= 0) H5Fclose(file);
    H5Pclose(fapl);
    return d >= 0;
}

/* /summary's row type: the fixed columns, then one double per parameter. Checked
 * before the output file is created, so a bad name leaves an existing file alone. */
static int summary_row_type(ngs_batch *b, output *out, const ngs_job *first)
{
    hid_t str;
    int ok;
    out->nparams = first ? first->nparams : 0;
    for (size_t i = 0; i < out->nparams; i++) {
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(first->param_names[k], first->param_names[i]) == 0) {
                /* ngspice does not tell case apart: only the last would count */
                set_error(b, "parameter '%s' is given twice ('%s')", first->param_names[i],
                          first->param_names[k]);
                return NGS_ERR_ARG;
            }
    }
    out->row_size = sizeof(summary_fixed) + out->nparams * sizeof(double);
    str = ngs_h5_vlen_str_type();
    out->row_type = H5Tcreate(H5T_COMPOUND, out->row_size);
    H5Tinsert(out->row_type, "job", HOFFSET(summary_fixed, job), H5T_NATIVE_INT64);
    H5Tinsert(out->row_type, "label", HOFFSET(summary_fixed, label), str);
    H5Tinsert(out->row_type, "status", HOFFSET(summary_fixed, status), str);
    H5Tinsert(out->row_type, "message", HOFFSET(summary_fixed, message), str);
    H5Tinsert(out->row_type, "netlist", HOFFSET(summary_fixed, netlist), str);
    H5Tinsert(out->row_type, "wall_s", HOFFSET(summary_fixed, wall_s), H5T_NATIVE_DOUBLE);
    H5Tinsert(out->row_type, "points", HOFFSET(summary_fixed, points), H5T_NATIVE_INT64);
    H5Tinsert(out->row_type, "cache_hit", HOFFSET(summary_fixed, cache_hit), H5T_NATIVE_INT64);
    H5Tinsert(out->row_type, "temp", HOFFSET(summary_fixed, temp), H5T_NATIVE_DOUBLE);
    H5Tinsert(out->row_type, "seed", HOFFSET(summary_fixed, seed), H5T_NATIVE_INT64);
    H5Tclose(str);
    for (size_t i = 0; i < out->nparams; i++) {
        H5E_BEGIN_TRY {
            ok = H5Tinsert(out->row_type, first->param_names[i], sizeof(summary_fixed) + i * sizeof(double),
                           H5T_NATIVE_DOUBLE) >= 0;
        } H5E_END_TRY;
        if (!ok) {
            set_error(b, "parameter '%s' has the name of a /summary column (job, label, status, message, "
                         "netlist, wall_s, points, cache_hit, temp, seed)", first->param_names[i]);
            return NGS_ERR_ARG;
        }
    }
    /* the type is stored in one object-header message, which HDF5 caps at 64 KiB:
     * try it in a file in memory */
    if (!summary_fits(out->row_type)) {
        set_error(b, "%zu parameters are more than /summary's row type can hold (HDF5 keeps it in "
                     "64 KiB): use fewer or shorter names", out->nparams);
        return NGS_ERR_ARG;
    }
    return NGS_OK;
}

static int output_open(ngs_batch *b, output *out, const ngs_job *first)
{
    ngs_h5_writer *w;
    ngs_h5_options ho;
    char err[512];
    const char *path; /* the file written: out->tmp, or the output itself */
    struct stat st;
    int rc;
    memset(out, 0, sizeof *out);
    out->file = out->summary = out->row_type = H5I_INVALID_HID;
    if ((rc = summary_row_type(b, out, first)) != NGS_OK) return rc;
    /* a batch that fails or is killed leaves the file it would replace as it was (an
     * interrupted one replaces it: its jobs are the ones asked for last) */
    if (stat(b->opt.output_path, &st) == 0 && S_ISREG(st.st_mode) &&
        ((rc = ngs_h5_check_replace(b->opt.output_path, err, sizeof err)) != NGS_OK ||
         (rc = ngs_h5_temp_beside(b->opt.output_path, &out->tmp, &out->dest, err, sizeof err)) != NGS_OK)) {
        set_error(b, "%s", err);
        return rc;
    }
    path = out->tmp ? out->tmp : b->opt.output_path;
    /* the writer creates the file with ngscale's root attributes */
    ngs_h5_options_init(&ho);
    ho.swmr = 0;
    if ((rc = ngs_h5_open(&w, path, &ho, err, sizeof err)) != NGS_OK) {
        set_error(b, "%s", err);
        return rc;
    }
    ngs_h5_close(w);
    {   /* the format the writer uses for files of its own */
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        out->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
        H5Pclose(fapl);
    }
    if (out->file < 0) {
        set_error(b, "%s: cannot reopen the output", b->opt.output_path);
        return NGS_ERR_HDF5;
    }
    out->summary = create_summary(out->file, out->row_type);
    if (out->summary < 0) {
        set_error(b, "%s: cannot create /summary", b->opt.output_path);
        return NGS_ERR_HDF5;
    }
    return NGS_OK;
}

static const char *status_text(int status, int ran)
{
    if (!ran) return "not run";
    return status == NGS_OK ? "complete"
           : status == NGS_ERR_TIMEOUT ? "timeout"
           : status == NGS_ERR_INTERRUPTED ? "interrupted" : "failed";
}

/* Queues the job's row (takes f); rows reach the file at the next flush. */
static int queue_summary(output *out, size_t job, finished *f)
{
    if (out->npending == out->pending_cap) {
        size_t cap = out->pending_cap ? 2 * out->pending_cap : 64;
        pending_row *p = realloc(out->pending, cap * sizeof *p);
        if (!p) return NGS_ERR_NOMEM;
        out->pending = p;
        out->pending_cap = cap;
    }
    out->pending[out->npending].job = job;
    out->pending[out->npending].f = f;
    out->npending++;
    return NGS_OK;
}

static void free_finished(finished *f)
{
    if (!f) return;
    free(f->message);
    free(f->warning);
    free(f);
}

/* Appends the queued rows to /summary in one write, then flushes the file. */
static int flush_output(ngs_batch *b, output *out)
{
    size_t n = out->npending;
    unsigned char *rows = n ? calloc(n, out->row_size) : NULL;
    char (*indexes)[24] = n ? calloc(n, sizeof *indexes) : NULL;
    hsize_t start = out->rows, count = n, size = out->rows + n;
    int rc = NGS_OK;
    if (n && (!rows || !indexes)) rc = NGS_ERR_NOMEM;
    for (size_t r = 0; rc == NGS_OK && r < n; r++) {
        const ngs_job *job = &b->jobs[out->pending[r].job];
        const finished *f = out->pending[r].f;
        summary_fixed *row = (summary_fixed *)(rows + r * out->row_size);
        row->job = (int64_t)out->pending[r].job;
        row->label = job_label(job, out->pending[r].job, indexes[r]);
        row->status = status_text(f ? f->status : NGS_OK, f != NULL);
        row->message = f && f->message ? f->message : "";
        row->netlist = job->netlist;
        row->wall_s = f ? f->wall_s : 0;
        row->points = f ? (int64_t)f->points : 0;
        row->cache_hit = f ? f->cache_hit : 0;
        row->temp = job_temp(job) ? ngs_spice_number(job->temp) : NAN;
        row->seed = job->seed;
        for (size_t k = 0; k < out->nparams; k++) {
            double v = k < job->nparams ? ngs_param_number(job->param_values[k]) : NAN;
            memcpy((unsigned char *)row + sizeof(summary_fixed) + k * sizeof(double), &v, sizeof v);
        }
    }
    pthread_mutex_lock(&b->file_lock);
    if (rc == NGS_OK && n) {
        hid_t fspace, mspace;
        if (H5Dset_extent(out->summary, &size) < 0) {
            rc = NGS_ERR_HDF5;
        } else {
            fspace = H5Dget_space(out->summary);
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
            mspace = H5Screate_simple(1, &count, NULL);
            if (H5Dwrite(out->summary, out->row_type, mspace, fspace, H5P_DEFAULT, rows) < 0) {
                hsize_t back = out->rows; /* no rows of fill values that look like job 0 */
                H5Dset_extent(out->summary, &back);
                rc = NGS_ERR_HDF5;
            }
            H5Sclose(mspace);
            H5Sclose(fspace);
        }
        if (rc == NGS_OK) out->rows += n;
    }
    if (rc != NGS_OK) {
        set_error(b, "%s: cannot write /summary", b->opt.output_path);
    } else {
        herr_t frc;
        H5E_BEGIN_TRY { frc = H5Fflush(out->file, H5F_SCOPE_GLOBAL); } H5E_END_TRY;
        if (frc < 0) {
            set_error(b, "%s: flush failed (disk full?)", b->opt.output_path);
            ngs_h5_freeze_file(out->file); /* it keeps its last flush: see h5writer.h */
            out->frozen = 1;
            rc = NGS_ERR_IO;
        }
    }
    pthread_mutex_unlock(&b->file_lock);
    for (size_t r = 0; r < n; r++) free_finished(out->pending[r].f);
    out->npending = 0;
    free(rows);
    free(indexes);
    return rc;
}

/* At most once a second: flushing after every tiny job cost more than the job. A
 * broken output stops the batch. */
static void flush_if_due(ngs_batch *b, output *out, double *last_flush, int *out_rc)
{
    if (*out_rc != NGS_OK || ngs_now_s() - *last_flush < 1.0) return;
    *last_flush = ngs_now_s();
    if ((*out_rc = flush_output(b, out)) != NGS_OK) ngs_batch_interrupt(b);
}

/* Closes the file and, when it replaces one, renames it over that one if keep, else
 * removes it. NGS_ERR_IO when the file could not be closed (its last writes failed)
 * or renamed; b's error then says so, and what happened to a file that was there. */
static int output_close(ngs_batch *b, output *out, int keep)
{
    herr_t closed = 0;
    int rc;
    for (size_t r = 0; r < out->npending; r++) free_finished(out->pending[r].f);
    free(out->pending);
    if (out->summary >= 0) H5E_BEGIN_TRY { H5Dclose(out->summary); } H5E_END_TRY; /* fails once frozen */
    if (out->row_type >= 0) H5Tclose(out->row_type);
    if (out->file >= 0) H5E_BEGIN_TRY { closed = H5Fclose(out->file); } H5E_END_TRY;
    rc = closed < 0 ? NGS_ERR_IO : NGS_OK;
    if (rc != NGS_OK && keep) set_error(b, "%s: closing it failed (disk full?)", b->opt.output_path);
    if (out->tmp && rc == NGS_OK && keep && rename(out->tmp, out->dest) != 0) {
        set_error(b, "%s: cannot replace it: %s", b->opt.output_path, strerror(errno));
        rc = NGS_ERR_IO;
    }
    if (out->tmp && (rc != NGS_OK || !keep)) {
        size_t k = strlen(b->err);
        unlink(out->tmp);
        snprintf(b->err + k, sizeof b->err - k, "; %s was left as it was", b->opt.output_path);
    } else if (out->frozen) {
        size_t k = strlen(b->err);
        snprintf(b->err + k, sizeof b->err - k, "; it keeps the jobs of its last flush: run 'h5clear -s %s' "
                 "before reading it", b->opt.output_path);
    }
    free(out->tmp);
    free(out->dest);
    return rc;
}

/* ----------------------------------------------------------------- run -- */

/* job_wall_s: the wall times of the finished jobs, summed */
static void report(ngs_batch *b, ngs_batch_progress *p, double t0, double job_wall_s, ngs_batch_progress_fn fn,
                   void *user)
{
    size_t started = atomic_load(&b->next), ended = p->done + p->interrupted;
    if (started > p->total) started = p->total;
    p->running = started > ended ? started - ended : 0;
    if (p->running > (size_t)b->nworkers) p->running = (size_t)b->nworkers; /* a finished job not yet counted */
    p->elapsed_s = ngs_now_s() - t0;
    /* what is left, at the mean job's length, spread over the instances */
    p->eta_s = p->done ? (double)(p->total - p->done) * (job_wall_s / (double)p->done) / (double)b->nworkers : -1;
    if (fn) fn(p, user);
}

/* What would fail only after the output exists, or silently: refused up front. */
static int check_jobs(ngs_batch *b, const ngs_job *jobs, size_t njobs)
{
    for (size_t i = 0; i < njobs; i++) {
        const ngs_job *j = &jobs[i];
        if (!j->netlist || (j->nparams && (!j->param_names || !j->param_values))) {
            set_error(b, "job %zu: no netlist, or parameters without names or values", i);
            return NGS_ERR_ARG;
        }
        if (job_temp(j) && isnan(ngs_spice_number(j->temp))) { /* ngspice only warns, at 27 C */
            set_error(b, "job %zu: temp '%s' is not a temperature (a number, in C)", i, j->temp);
            return NGS_ERR_ARG;
        }
        if (j->seed == 0 || j->seed > NGS_SEED_MAX) {
            set_error(b, "job %zu: seed %lld is outside ngspice's 1..%lld", i, j->seed, NGS_SEED_MAX);
            return NGS_ERR_ARG;
        }
        /* /summary has one column per parameter of the first job */
        for (size_t k = 0; k < j->nparams || k < jobs[0].nparams; k++) {
            if (k < j->nparams && (!j->param_names[k] || !*j->param_names[k] || !j->param_values[k])) {
                set_error(b, "job %zu: parameter %zu has no name or no value", i, k + 1);
                return NGS_ERR_ARG;
            }
            if (k < j->nparams && !ngs_param_name_ok(j->param_names[k])) { /* else another .param is set */
                set_error(b, "job %zu: parameter '%s' is not a name ngspice's .param takes (a letter or _, "
                             "then letters, digits or _)", i, j->param_names[k]);
                return NGS_ERR_ARG;
            }
            if (j->nparams != jobs[0].nparams || strcmp(j->param_names[k], jobs[0].param_names[k]) != 0) {
                set_error(b, "job %zu: its parameters differ from job 0's, which name the /summary columns", i);
                return NGS_ERR_ARG;
            }
        }
    }
    return NGS_OK;
}

static int batch_run(ngs_batch *b, const ngs_job *jobs, size_t njobs, ngs_batch_progress_fn fn,
                     void *user, ngs_batch_progress *final)
{
    pthread_t *threads;
    worker_arg *args;
    output out;
    ngs_batch_progress p;
    unsigned char *seen;
    double t0 = ngs_now_s(), last_flush = t0, job_wall_s = 0;
    int rc, started = 0, out_rc = NGS_OK, stopped;

    if (final) memset(final, 0, sizeof *final);
    if (!b || (!jobs && njobs)) return NGS_ERR_ARG;
    if (!b->started) {
        set_error(b, "this batch has no instances: ngs_batch_create failed");
        return NGS_ERR_STATE;
    }
    b->err[0] = '\0'; /* a previous run's error is not this one's */
    if ((rc = check_jobs(b, jobs, njobs)) != NGS_OK) return rc;
    if ((rc = snapshot_netlists(b, jobs, njobs)) != NGS_OK) {
        if (rc == NGS_ERR_NOMEM) set_error(b, "out of memory reading the netlists");
        free_snapshots(b);
        return rc;
    }
    memset(&p, 0, sizeof p);
    p.total = njobs;
    snprintf(p.warning, sizeof p.warning, "%s", b->seed_warning);
    b->jobs = jobs;
    b->njobs = njobs;
    atomic_store(&b->next, 0); /* stop stays: an interrupt before the run stops it */
    if ((rc = output_open(b, &out, njobs ? &jobs[0] : NULL)) != NGS_OK) {
        output_close(b, &out, 0);
        return rc;
    }
    b->out_file = out.file;
    threads = calloc((size_t)b->nworkers, sizeof *threads);
    args = calloc((size_t)b->nworkers, sizeof *args);
    seen = calloc(njobs ? njobs : 1, 1);
    if (!threads || !args || !seen) {
        free(threads);
        free(args);
        free(seen);
        set_error(b, "out of memory");
        output_close(b, &out, 0);
        return NGS_ERR_NOMEM;
    }
    b->workers_left = (size_t)b->nworkers;
    for (int i = 0; i < b->nworkers; i++) {
        args[i].b = b;
        args[i].index = i;
        if (pthread_create(&threads[i], NULL, worker_main, &args[i]) != 0) {
            b->workers_left--;
            continue;
        }
        args[i].started = 1;
        started++;
    }
    report(b, &p, t0, job_wall_s, fn, user);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        finished *f = b->queue;
        if (!f) {
            if (b->workers_left == 0) break;
            struct timespec dl = ngs_deadline_ms(REPORT_MS);
            pthread_cond_timedwait(&b->cond, &b->lock, &dl);
            pthread_mutex_unlock(&b->lock);
            /* while long jobs run, finished ones and the running ones' data still
             * reach the file every second */
            flush_if_due(b, &out, &last_flush, &out_rc);
            report(b, &p, t0, job_wall_s, fn, user); /* keeps the ETA line alive */
            pthread_mutex_lock(&b->lock);
            continue;
        }
        b->queue = f->next;
        if (!b->queue) b->queue_tail = NULL;
        pthread_mutex_unlock(&b->lock);

        seen[f->job] = 1;
        if (f->status == NGS_ERR_INTERRUPTED) { /* stopped by the interrupt: not the job's fault */
            p.interrupted++;
        } else {
            p.done++;
            job_wall_s += f->wall_s;
            if (f->status != NGS_OK) p.failed++;
        }
        if (f->cache_hit) p.cache_hits++;
        if (f->warning) snprintf(p.warning, sizeof p.warning, "%s", f->warning);
        if (out_rc == NGS_OK) {
            if (queue_summary(&out, f->job, f) != NGS_OK) {
                free_finished(f);
                set_error(b, "out of memory for /summary");
                out_rc = NGS_ERR_NOMEM;
            }
            if (out_rc != NGS_OK) ngs_batch_interrupt(b);
            flush_if_due(b, &out, &last_flush, &out_rc);
        } else {
            free_finished(f);
        }
        report(b, &p, t0, job_wall_s, fn, user);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->nworkers; i++)
        if (args[i].started) pthread_join(threads[i], NULL);
    /* jobs never started (interrupt, broken output) are in the summary too */
    for (size_t i = 0; out_rc == NGS_OK && i < njobs; i++)
        if (!seen[i] && queue_summary(&out, i, NULL) != NGS_OK) {
            set_error(b, "out of memory for /summary");
            out_rc = NGS_ERR_NOMEM;
        }
    if (out_rc == NGS_OK) out_rc = flush_output(b, &out);
    {   /* a file that cannot keep the finished jobs does not replace one that was there */
        int crc = output_close(b, &out, out_rc == NGS_OK);
        if (out_rc == NGS_OK) out_rc = crc;
    }
    free(threads);
    free(args);
    free(seen);
    report(b, &p, t0, job_wall_s, NULL, NULL);
    if (final) *final = p;
    stopped = atomic_exchange(&b->stop, 0); /* it was for this run */
    if (out_rc != NGS_OK) return out_rc;
    if (stopped) return NGS_ERR_INTERRUPTED;
    if (started == 0 && njobs) {
        set_error(b, "no worker thread could be started");
        return NGS_ERR_NOMEM;
    }
    if (p.failed) {
        set_error(b, "%zu of %zu jobs failed (each one's message is in /summary)", p.failed, njobs);
        return NGS_ERR_SIMULATION;
    }
    return NGS_OK;
}

int ngs_batch_run(ngs_batch *b, const ngs_job *jobs, size_t njobs, ngs_batch_progress_fn fn,
                  void *user, ngs_batch_progress *final)
{
    int rc;
    if (final) memset(final, 0, sizeof *final);
    if (!b) return NGS_ERR_ARG;
    if (!ngs_claim_flag(&b->in_run)) return NGS_ERR_STATE;
    rc = batch_run(b, jobs, njobs, fn, user, final);
    free_snapshots(b);
    /* an interrupt was for this run: an instance that took no job after it keeps its
     * request, and would stop its first job of the next run */
    for (int i = 0; i < b->nworkers; i++)
        if (b->engines[i]) atomic_store(&b->engines[i]->interrupted, 0);
    atomic_store(&b->in_run, 0);
    return rc;
}
