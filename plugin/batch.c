/*
 * batch.c - many jobs on a pool of engines, one output file.
 *
 * Each worker thread owns one engine (its own copy of libngspice, its own copies of
 * the code models, one OpenMP thread) and takes the next job when it is free. A
 * job is written to its own temporary HDF5 file with the ordinary writer; the
 * calling thread merges each finished job into the output (H5Ocopy copies the
 * compressed chunks as they are), appends its row to /summary and flushes. So
 * memory stays bounded whatever the number of jobs, finished jobs survive a
 * crash or Ctrl-C, and only one thread ever writes the output file.
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
#include <unistd.h>

#include "ngscale.h"
#include "hooks/clock.h"
#include "plugin/deck.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"
#include "storage/pool.h"

typedef struct finished {
    size_t job;
    int status;
    char *message;
    double wall_s;
    uint64_t points;
    int has_file;
    struct finished *next;
} finished;

struct ngs_batch {
    ngs_batch_options opt;
    int nworkers;
    ngs_engine **engines;
    char err[1024];
    atomic_int stop;
    /* one run */
    const ngs_job *jobs;
    size_t njobs;
    atomic_size_t next;
    char *parts_dir;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    finished *queue, *queue_tail;
    size_t running, workers_left;
};

static void set_error(ngs_batch *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, sizeof b->err, fmt, ap);
    va_end(ap);
}

const char *ngs_batch_last_error(const ngs_batch *b) { return b ? b->err : ""; }

void ngs_batch_options_init(ngs_batch_options *o)
{
    memset(o, 0, sizeof *o);
    o->codec = NGS_CODEC_ZSTD;
    o->memory = NGS_MEMORY_AUTO;
}

int ngs_batch_create(ngs_batch **out, const ngs_batch_options *options)
{
    ngs_batch *b;
    if (!out || !options || !options->output_path) return NGS_ERR_ARG;
    *out = NULL;
    b = calloc(1, sizeof *b);
    if (!b) return NGS_ERR_NOMEM;
    b->opt = *options;
    b->nworkers = options->jobs > 0 ? options->jobs : ngs_cpu_count();
    atomic_init(&b->stop, 0);
    atomic_init(&b->next, 0);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->engines = calloc((size_t)b->nworkers, sizeof *b->engines);
    if (!b->engines) {
        ngs_batch_destroy(b);
        return NGS_ERR_NOMEM;
    }
    for (int i = 0; i < b->nworkers; i++) {
        ngs_engine_config cfg;
        int rc;
        ngs_engine_config_init(&cfg);
        cfg.num_threads = 1;          /* many instances: one thread each */
        cfg.private_codemodels = 1;   /* shared .cm files give wrong results */
        rc = ngs_engine_create(&b->engines[i], &cfg);
        if (rc != NGS_OK) {
            set_error(b, "cannot start ngspice instance %d: %s", i + 1,
                      b->engines[i] ? ngs_engine_last_error(b->engines[i]) : ngs_strerror(rc));
            *out = b;
            return rc;
        }
    }
    *out = b;
    return NGS_OK;
}

void ngs_batch_destroy(ngs_batch *b)
{
    if (!b) return;
    for (int i = 0; b->engines && i < b->nworkers; i++) ngs_engine_destroy(b->engines[i]);
    free(b->engines);
    pthread_mutex_destroy(&b->lock);
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

static void part_path(const ngs_batch *b, size_t job, char *path, size_t n)
{
    snprintf(path, n, "%s/job-%08zu.h5", b->parts_dir, job);
}

/* The job's deck: the netlist with its overrides before `.end` (a later .param
 * wins over an earlier one in ngspice). */
static int job_deck(const ngs_job *job, ngs_deck *deck, char *err, size_t errlen)
{
    size_t n = job->nparams + 2, k = 0;
    char **extra;
    int rc = ngs_deck_load_file(deck, job->netlist, err, errlen);
    if (rc != NGS_OK) return rc;
    extra = calloc(n, sizeof *extra);
    if (!extra) return NGS_ERR_NOMEM;
    for (size_t i = 0; i < job->nparams; i++) {
        size_t len = strlen(job->param_names[i]) + strlen(job->param_values[i]) + 16;
        if ((extra[k] = malloc(len)))
            snprintf(extra[k++], len, ".param %s=%s", job->param_names[i], job->param_values[i]);
    }
    if (job->temp && (extra[k] = malloc(strlen(job->temp) + 8)))
        sprintf(extra[k++], ".temp %s", job->temp);
    if (job->seed >= 0 && (extra[k] = malloc(48)))
        snprintf(extra[k++], 48, ".options seed=%lld", job->seed);
    rc = ngs_deck_insert_before_end(deck, (const char *const *)extra, k);
    for (size_t i = 0; i < k; i++) free(extra[i]);
    free(extra);
    return rc;
}

typedef struct {
    ngs_batch *b;
    int index;
} worker_arg;

static void *worker_main(void *arg)
{
    ngs_batch *b = ((worker_arg *)arg)->b;
    ngs_engine *e = b->engines[((worker_arg *)arg)->index];
    for (;;) {
        size_t i;
        const ngs_job *job;
        ngs_deck deck;
        ngs_run_options o;
        ngs_run_result res;
        char path[4096], err[512] = "";
        finished *f;
        int rc;
        double t0;
        if (atomic_load(&b->stop)) break;
        i = atomic_fetch_add(&b->next, 1);
        if (i >= b->njobs) break;
        job = &b->jobs[i];
        t0 = ngs_now_s();
        part_path(b, i, path, sizeof path);
        memset(&res, 0, sizeof res);
        rc = job_deck(job, &deck, err, sizeof err);
        if (rc == NGS_OK) {
            char *abs = realpath(job->netlist, NULL), *dir = abs ? strdup(abs) : NULL;
            ngs_run_options_init(&o);
            o.output_path = path;
            o.codec = b->opt.codec;
            o.level = b->opt.level;
            o.save = b->opt.save;
            o.memory = b->opt.memory;
            o.timeout_s = b->opt.timeout_s;
            o.swmr = 0;            /* nobody follows a part file */
            o.encoder_threads = 1; /* the workers already use every core */
            o.cache = b->opt.cache;
            o.lossy = b->opt.lossy;
            rc = ngs_run_lines(e, (const char *const *)deck.lines, deck.nlines,
                               dir ? dirname(dir) : NULL, &o, &res);
            snprintf(err, sizeof err, "%s", rc == NGS_OK ? "" : ngs_engine_last_error(e));
            free(dir);
            free(abs);
            ngs_deck_free(&deck);
        }
        f = calloc(1, sizeof *f);
        if (!f) continue; /* the summary will say "not run" */
        f->job = i;
        f->status = rc;
        f->message = strdup(err);
        f->wall_s = ngs_now_s() - t0;
        f->points = res.points;
        f->has_file = access(path, F_OK) == 0;
        pthread_mutex_lock(&b->lock);
        if (b->queue_tail) b->queue_tail->next = f; else b->queue = f;
        b->queue_tail = f;
        pthread_cond_signal(&b->cond);
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
    double temp;
    int64_t seed;
} summary_fixed;

typedef struct {
    hid_t file, summary, row_type;
    size_t nparams, row_size, rows;
    unsigned char *row;
} output;

static int output_open(ngs_batch *b, output *out, const ngs_job *first)
{
    ngs_h5_writer *w;
    ngs_h5_options ho;
    char err[512];
    hid_t str, space, dcpl;
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = 256;
    int rc;
    memset(out, 0, sizeof *out);
    out->file = out->summary = out->row_type = H5I_INVALID_HID;
    /* the writer creates the file with ngscale's root attributes */
    ngs_h5_options_init(&ho);
    ho.swmr = 0;
    if ((rc = ngs_h5_open(&w, b->opt.output_path, &ho, err, sizeof err)) != NGS_OK) {
        set_error(b, "%s", err);
        return rc;
    }
    ngs_h5_close(w);
    {   /* the same format bounds as the part files, so H5Ocopy converts nothing */
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        out->file = H5Fopen(b->opt.output_path, H5F_ACC_RDWR, fapl);
        H5Pclose(fapl);
    }
    if (out->file < 0) {
        set_error(b, "%s: cannot reopen the output", b->opt.output_path);
        return NGS_ERR_HDF5;
    }
    out->nparams = first ? first->nparams : 0;
    out->row_size = sizeof(summary_fixed) + out->nparams * sizeof(double);
    out->row = calloc(1, out->row_size);
    if (!out->row) return NGS_ERR_NOMEM;
    str = ngs_h5_vlen_str_type();
    out->row_type = H5Tcreate(H5T_COMPOUND, out->row_size);
    H5Tinsert(out->row_type, "job", HOFFSET(summary_fixed, job), H5T_NATIVE_INT64);
    H5Tinsert(out->row_type, "label", HOFFSET(summary_fixed, label), str);
    H5Tinsert(out->row_type, "status", HOFFSET(summary_fixed, status), str);
    H5Tinsert(out->row_type, "message", HOFFSET(summary_fixed, message), str);
    H5Tinsert(out->row_type, "netlist", HOFFSET(summary_fixed, netlist), str);
    H5Tinsert(out->row_type, "wall_s", HOFFSET(summary_fixed, wall_s), H5T_NATIVE_DOUBLE);
    H5Tinsert(out->row_type, "points", HOFFSET(summary_fixed, points), H5T_NATIVE_INT64);
    H5Tinsert(out->row_type, "temp", HOFFSET(summary_fixed, temp), H5T_NATIVE_DOUBLE);
    H5Tinsert(out->row_type, "seed", HOFFSET(summary_fixed, seed), H5T_NATIVE_INT64);
    for (size_t i = 0; i < out->nparams; i++)
        if (H5Tinsert(out->row_type, first->param_names[i], sizeof(summary_fixed) + i * sizeof(double),
                      H5T_NATIVE_DOUBLE) < 0) {
            set_error(b, "parameter name '%s' is used twice or clashes with a summary column",
                      first->param_names[i]);
            H5Tclose(str);
            return NGS_ERR_ARG;
        }
    H5Tclose(str);
    space = H5Screate_simple(1, &dims, &maxdims);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_deflate(dcpl, 4);
    out->summary = H5Dcreate2(out->file, "summary", out->row_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
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

static void default_label(const ngs_job *job, size_t i, char *buf, size_t n)
{
    if (job->label) snprintf(buf, n, "%s", job->label);
    else snprintf(buf, n, "%zu", i);
}

static int append_summary(ngs_batch *b, output *out, size_t i, const finished *f)
{
    const ngs_job *job = &b->jobs[i];
    summary_fixed *row = (summary_fixed *)out->row;
    char label[256];
    hsize_t start = out->rows, one = 1, size = out->rows + 1;
    hid_t fspace, mspace;
    herr_t rc;
    default_label(job, i, label, sizeof label);
    row->job = (int64_t)i;
    row->label = label;
    row->status = status_text(f ? f->status : NGS_OK, f != NULL);
    row->message = f && f->message ? f->message : "";
    row->netlist = job->netlist;
    row->wall_s = f ? f->wall_s : 0;
    row->points = f ? (int64_t)f->points : 0;
    row->temp = job->temp ? ngs_spice_number(job->temp) : NAN;
    row->seed = job->seed;
    for (size_t k = 0; k < out->nparams; k++) {
        double v = k < job->nparams ? ngs_spice_number(job->param_values[k]) : NAN;
        memcpy(out->row + sizeof(summary_fixed) + k * sizeof(double), &v, sizeof v);
    }
    if (H5Dset_extent(out->summary, &size) < 0) return NGS_ERR_HDF5;
    fspace = H5Dget_space(out->summary);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &one, NULL);
    mspace = H5Screate_simple(1, &one, NULL);
    rc = H5Dwrite(out->summary, out->row_type, mspace, fspace, H5P_DEFAULT, out->row);
    H5Sclose(mspace);
    H5Sclose(fspace);
    out->rows++;
    return rc < 0 ? NGS_ERR_HDF5 : NGS_OK;
}

/* Group copying. H5Ocopy of a group crashes in HDF5 1.10.8 when the group keeps
 * variable-length string attributes in dense storage (more than 8 attributes), so
 * groups and their attributes are copied here; datasets, whose few attributes stay
 * compact, go through H5Ocopy, which moves their compressed chunks untouched. */
static herr_t copy_attr(hid_t src, const char *name, const H5A_info_t *info, void *dst_ptr)
{
    hid_t dst = *(hid_t *)dst_ptr, a = H5Aopen(src, name, H5P_DEFAULT), ft, mt, sp, na;
    size_t size;
    void *buf;
    herr_t rc = -1;
    (void)info;
    if (a < 0) return -1;
    ft = H5Aget_type(a);
    mt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
    sp = H5Aget_space(a);
    size = H5Tget_size(mt) * (size_t)(H5Sget_simple_extent_npoints(sp) > 0 ? H5Sget_simple_extent_npoints(sp) : 1);
    buf = calloc(1, size ? size : 1);
    if (buf && H5Aread(a, mt, buf) >= 0) {
        na = H5Acreate2(dst, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (na >= 0) {
            rc = H5Awrite(na, mt, buf);
            H5Aclose(na);
        }
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, buf); /* frees vlen strings, no-op otherwise */
    }
    free(buf);
    H5Sclose(sp);
    H5Tclose(mt);
    H5Tclose(ft);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static int copy_group(hid_t src_parent, const char *src_name, hid_t dst_parent, const char *dst_name);

static herr_t copy_member(hid_t src, const char *name, const H5L_info_t *li, void *dst_ptr)
{
    hid_t dst = *(hid_t *)dst_ptr;
    H5O_info_t oi;
    (void)li;
    if (H5Oget_info_by_name(src, name, &oi, H5P_DEFAULT) < 0) return -1;
    if (oi.type == H5O_TYPE_GROUP) return copy_group(src, name, dst, name) == 0 ? 0 : -1;
    return H5Ocopy(src, name, dst, name, H5P_DEFAULT, H5P_DEFAULT) < 0 ? -1 : 0;
}

static int copy_group(hid_t src_parent, const char *src_name, hid_t dst_parent, const char *dst_name)
{
    hid_t src = H5Gopen2(src_parent, src_name, H5P_DEFAULT), gcpl, dst;
    hsize_t idx = 0;
    int rc = -1;
    if (src < 0) return -1;
    gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    dst = H5Gcreate2(dst_parent, dst_name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (dst >= 0 && H5Aiterate2(src, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, copy_attr, &dst) >= 0) {
        idx = 0;
        if (H5Literate(src, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, copy_member, &dst) >= 0) rc = 0;
    }
    if (dst >= 0) H5Gclose(dst);
    H5Gclose(src);
    return rc;
}

/* Copies the job's run group into the output as /job_NNNNNNNN with its parameters. */
static int merge_job(ngs_batch *b, output *out, size_t i, const finished *f)
{
    const ngs_job *job = &b->jobs[i];
    char path[4096], name[64], label[256];
    hid_t src, g;
    herr_t rc;
    if (!f->has_file) return NGS_OK;
    part_path(b, i, path, sizeof path);
    src = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (src < 0) {
        set_error(b, "%s: cannot read the part file of job %zu", path, i);
        return NGS_ERR_HDF5;
    }
    snprintf(name, sizeof name, "job_%08zu", i);
    rc = copy_group(src, "run", out->file, name);
    H5Fclose(src);
    unlink(path);
    if (rc < 0) {
        set_error(b, "%s: cannot copy job %zu into the output", b->opt.output_path, i);
        return NGS_ERR_HDF5;
    }
    g = H5Gopen2(out->file, name, H5P_DEFAULT);
    if (g >= 0) {
        default_label(job, i, label, sizeof label);
        ngs_h5_attr_write_str(g, "job_label", label);
        ngs_h5_attr_write_str(g, "job_netlist", job->netlist);
        for (size_t k = 0; k < job->nparams; k++) {
            char key[300];
            snprintf(key, sizeof key, "param.%s", job->param_names[k]);
            ngs_h5_attr_write_str(g, key, job->param_values[k]);
        }
        if (job->temp) ngs_h5_attr_write_str(g, "param.temp", job->temp);
        if (job->seed >= 0) {
            char seed[32];
            snprintf(seed, sizeof seed, "%lld", job->seed);
            ngs_h5_attr_write_str(g, "param.seed", seed);
        }
        H5Gclose(g);
    }
    return NGS_OK;
}

static void output_close(output *out)
{
    if (out->summary >= 0) H5Dclose(out->summary);
    if (out->row_type >= 0) H5Tclose(out->row_type);
    if (out->file >= 0) H5Fclose(out->file);
    free(out->row);
}

/* ----------------------------------------------------------------- run -- */

static int make_parts_dir(ngs_batch *b)
{
    const char *o = b->opt.output_path;
    b->parts_dir = malloc(strlen(o) + 32);
    if (!b->parts_dir) return NGS_ERR_NOMEM;
    /* next to the output: same file system, and /tmp may be small */
    sprintf(b->parts_dir, "%s.parts-XXXXXX", o);
    if (!mkdtemp(b->parts_dir)) {
        set_error(b, "cannot create a directory next to %s: %s", o, strerror(errno));
        free(b->parts_dir);
        b->parts_dir = NULL;
        return NGS_ERR_IO;
    }
    return NGS_OK;
}

static void report(ngs_batch *b, ngs_batch_progress *p, double t0, ngs_batch_progress_fn fn, void *user)
{
    p->elapsed_s = ngs_now_s() - t0;
    p->eta_s = p->done ? p->elapsed_s / (double)p->done * (double)(p->total - p->done) : -1;
    (void)b;
    if (fn) fn(p, user);
}

int ngs_batch_run(ngs_batch *b, const ngs_job *jobs, size_t njobs, ngs_batch_progress_fn fn,
                  void *user, ngs_batch_progress *final)
{
    pthread_t *threads;
    worker_arg *args;
    output out;
    ngs_batch_progress p;
    unsigned char *seen;
    double t0 = ngs_now_s(), last_flush = t0;
    int rc, started = 0, out_rc = NGS_OK;

    if (!b || (!jobs && njobs)) return NGS_ERR_ARG;
    memset(&p, 0, sizeof p);
    p.total = njobs;
    b->jobs = jobs;
    b->njobs = njobs;
    atomic_store(&b->next, 0);
    atomic_store(&b->stop, 0);
    if ((rc = output_open(b, &out, njobs ? &jobs[0] : NULL)) != NGS_OK) {
        output_close(&out);
        return rc;
    }
    if ((rc = make_parts_dir(b)) != NGS_OK) {
        output_close(&out);
        return rc;
    }
    threads = calloc((size_t)b->nworkers, sizeof *threads);
    args = calloc((size_t)b->nworkers, sizeof *args);
    seen = calloc(njobs ? njobs : 1, 1);
    if (!threads || !args || !seen) {
        free(threads);
        free(args);
        free(seen);
        output_close(&out);
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
        started++;
    }
    report(b, &p, t0, fn, user);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        finished *f = b->queue;
        if (!f) {
            if (b->workers_left == 0) break;
            struct timespec dl = {0, 0};
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&b->cond, &b->lock, &dl);
            pthread_mutex_unlock(&b->lock);
            report(b, &p, t0, fn, user); /* keeps the ETA line alive */
            pthread_mutex_lock(&b->lock);
            continue;
        }
        b->queue = f->next;
        if (!b->queue) b->queue_tail = NULL;
        pthread_mutex_unlock(&b->lock);

        if (out_rc == NGS_OK) out_rc = merge_job(b, &out, f->job, f);
        if (out_rc == NGS_OK) out_rc = append_summary(b, &out, f->job, f) != NGS_OK
                                           ? (set_error(b, "%s: cannot write /summary", b->opt.output_path), NGS_ERR_HDF5)
                                           : NGS_OK;
        /* at most once a second: flushing after every tiny job cost more than the job */
        if (out_rc == NGS_OK && ngs_now_s() - last_flush >= 1.0 &&
            (last_flush = ngs_now_s(), H5Fflush(out.file, H5F_SCOPE_GLOBAL) < 0)) {
            set_error(b, "%s: flush failed (disk full?)", b->opt.output_path);
            out_rc = NGS_ERR_IO;
        }
        if (out_rc != NGS_OK) ngs_batch_interrupt(b); /* the output is broken: stop */
        seen[f->job] = 1;
        p.done++;
        if (f->status != NGS_OK) p.failed++;
        free(f->message);
        free(f);
        report(b, &p, t0, fn, user);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->nworkers; i++)
        if (i < started) pthread_join(threads[i], NULL);
    /* jobs never started (interrupt, broken output) are in the summary too */
    for (size_t i = 0; out_rc == NGS_OK && i < njobs; i++)
        if (!seen[i]) out_rc = append_summary(b, &out, i, NULL);
    output_close(&out);
    rmdir(b->parts_dir);
    free(b->parts_dir);
    b->parts_dir = NULL;
    free(threads);
    free(args);
    free(seen);
    report(b, &p, t0, NULL, NULL);
    if (final) *final = p;
    if (out_rc != NGS_OK) return out_rc;
    if (atomic_load(&b->stop)) return NGS_ERR_INTERRUPTED;
    if (started == 0 && njobs) {
        set_error(b, "no worker thread could be started");
        return NGS_ERR_NOMEM;
    }
    return p.failed ? NGS_ERR_SIMULATION : NGS_OK;
}
