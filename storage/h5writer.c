/*
 * h5writer.c - streaming HDF5 writer (see h5writer.h and SCHEMA.md).
 *
 * Data path: rows (row-major) -> transpose into per-vector column buffers (one
 * "block" of chunk_points rows) -> encode each vector's chunk on all cores
 * (storage/pool.c) -> H5Dwrite_chunk. Chunk encoding matches the dataset's filter
 * pipeline, so stock readers decode it.
 *
 * SWMR: HDF5 1.10 forbids creating objects or attributes while a file is in SWMR
 * write mode. The file therefore alternates between two modes: "structure"
 * (plain read-write: groups, datasets and attributes are created) and "swmr"
 * (only chunk writes and extents). Going back to structure mode means closing and
 * reopening the file; it happens a few times per plot, never per row.
 *
 * Datasets are created lazily, at the first write of a plot: a plot that ends
 * before its first chunk fills gets a chunk size equal to its length, so an
 * operating point does not occupy a full chunk per vector, and a fixed size, so
 * HDF5 keeps no chunk index for it.
 *
 * Memory does not follow the number of vectors (post-layout plots save 20k-100k
 * nodes): a wide plot's block may grow to 64 MiB, then its chunks get shorter; it
 * opens each dataset only while writing to it, and runs HDF5's metadata cache small.
 */
#include "storage/h5writer.h"
#include "storage/codec.h"
#include "storage/bounded.h"
#include "storage/pool.h"
#include "storage/h5attr.h"
#include "hooks/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_TARGET_BYTES (8u << 20) /* automatic chunking: a block of rows ~ 8 MiB */
#define CHUNK_MIN 1024u
/* A plot of more than 1024 doubles per row has a larger block, up to this, before its
 * chunks get shorter than CHUNK_MIN (short chunks compress worse, and each costs a
 * dataset open): 8k vectors keep 1024 points, 20k get 256, 100k 64. */
#define BLOCK_WIDE_MAX_BYTES (64u << 20)
/* ... and chunks no shorter than this, so that the block stays bounded however many
 * vectors the plot has. */
#define CHUNK_MIN_WIDE 16u
/* HDF5's metadata cache for a wide plot (see ngs_h5_fit_cache) */
#define WIDE_CACHE_BYTES (256u << 10)
#define PARTIAL_AGE 10 /* flush intervals a point may wait in a partial chunk */
#define CHUNK_MAX 65536u

/* Where an object's header is in the file. A wide plot reopens its datasets there: the
 * lookup of a name among the plot's 20k links is a third of an open, and every
 * dataset is opened once per block. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5O_token_t obj_at;
#define OBJ_AT_INFO H5O_info2_t
#define OBJ_AT_GET(obj, info) H5Oget_info3(obj, info, H5O_INFO_BASIC)
#define OBJ_AT_OF(info) ((info).token)
#define OBJ_AT_OPEN(file, at) H5Oopen_by_token(file, at)
#elif H5_VERSION_GE(1, 10, 3)
typedef haddr_t obj_at;
#define OBJ_AT_INFO H5O_info_t
#define OBJ_AT_GET(obj, info) H5Oget_info2(obj, info, H5O_INFO_BASIC)
#define OBJ_AT_OF(info) ((info).addr)
#define OBJ_AT_OPEN(file, at) H5Oopen_by_addr(file, at)
#else
typedef int obj_at; /* older: found by name */
#endif

static int obj_at_get(hid_t obj, obj_at *at)
{
#ifdef OBJ_AT_GET
    OBJ_AT_INFO i;
    if (OBJ_AT_GET(obj, &i) < 0) return 0;
    *at = OBJ_AT_OF(i);
    return 1;
#else
    (void)obj;
    (void)at;
    return 0;
#endif
}

static hid_t obj_at_open(hid_t file, const obj_at *at)
{
#ifdef OBJ_AT_OPEN
    return OBJ_AT_OPEN(file, *at);
#else
    (void)file;
    (void)at;
    return H5I_INVALID_HID;
#endif
}

typedef struct {
    char *dset_name; /* link name (RAW name, '/' escaped) */
    char *name, *ngspice_name, *type_name, *unit;
    int type, is_complex, is_scale, column;
    size_t elem; /* 8 or 16 bytes */
    hid_t dset;
    obj_at at;               /* where dset is, when has_at */
    int has_at;
    ngs_codec codec;         /* what this vector uses: a scale stays lossless */
    ngs_bounded_params bp;   /* codec bounded */
    double max_err;          /* largest error bound used by its chunks (lossy) */
} vec_state;

typedef struct {
    char *group_path;
    char *name, *plotname, *analysis, *title, *date;
    int index, nvec, is_complex, row_doubles, scale_index;
    vec_state *vecs;
    size_t chunk_points;  /* fixed once datasets exist */
    int keep_open;        /* datasets stay open between blocks (not a wide plot) */
    int fixed_size;       /* ended within its first chunk: datasets of exactly one chunk */
    size_t block_capacity;/* rows the column buffers hold (>= chunk_points) */
    int created;
    double started;       /* when the plot began, to estimate its data rate */
    uint64_t chunks_done; /* complete chunks written */
    double partial_gap;   /* time between rewrites of a partial chunk (backs off) */
    double last_partial;
    double block_started; /* when the first row of the unwritten block arrived */
    unsigned char *block; /* column buffers, vector i at block_offset[i] */
    size_t *block_offset;
    size_t block_rows;    /* rows in the current, unwritten block */
    uint64_t done_rows;   /* rows in complete chunks already written */
    int block_written;    /* the partial block is in the file as it is now */
    /* set by plot_end before its last write: a plot whose objects are created only
     * then gets its final status at once, not "incomplete" rewritten a moment later */
    int end_status;
    const char *end_message;
    int status_written;
} plot_state;

struct ngs_h5_writer {
    char *path;
    ngs_h5_options opt;
    hid_t fapl, fcpl, dapl, file, run_group, complex_type;
    int in_use_fd; /* holds the lock that tells others the file is being written */
    int swmr_active;
    int frozen;    /* a write failed: the file gets nothing more (ngs_h5_freeze_file) */
    char *run_path;
    int run_open;
    int plot_count;
    plot_state *plot;
    /* encoder slots: one per pool worker, each holding one encoded chunk and a
     * shuffle scratch */
    ngs_pool *pool;
    int nthreads, nslots;
    ngs_bounded_ctx **bctx; /* one per slot, for codec bounded */
    int bits;               /* codec bitround */
    unsigned char **enc, **scratch;
    size_t *enc_size;
    int *enc_rc;
    size_t slot_bytes;
    double last_flush;
    int lock_depth;         /* how deep this writer holds opt.shared_lock */
    char err[512];
};

/* ---------------------------------------------------------------- helpers -- */

/* opt.shared_lock, counted so that public functions calling each other nest */
static void hold(ngs_h5_writer *w)
{
    if (w->opt.shared_lock && w->lock_depth++ == 0) pthread_mutex_lock(w->opt.shared_lock);
}

static void release(ngs_h5_writer *w)
{
    if (w->opt.shared_lock && --w->lock_depth == 0) pthread_mutex_unlock(w->opt.shared_lock);
}

/* 0 for the caller's shared_file, which the caller flushes and closes. */
static int owns_file(const ngs_h5_writer *w) { return w->opt.shared_file == 0; }

int ngs_h5_is_foreign_file(const char *path)
{
    struct stat st;
    htri_t is_hdf5;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
    H5E_BEGIN_TRY {
        is_hdf5 = H5Fis_hdf5(path);
    } H5E_END_TRY;
    return is_hdf5 <= 0;
}

/* Whether another open file description holds a lock on path: HDF5's readers and
 * plain writers hold flock() locks, but HDF5 drops its lock in SWMR mode, so an
 * ngscale writer also holds an OFD lock (mark_in_use), which does not conflict with
 * HDF5's flock. Replacing such a file would destroy it under its reader or writer. */
int ngs_h5_file_in_use(const char *path)
{
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET}; /* the whole file */
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), busy = 0; /* a FIFO must not block */
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { /* HDF5 says what is wrong with it */
        close(fd);
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) busy = errno == EWOULDBLOCK;
    else flock(fd, LOCK_UN);
    if (!busy && fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK) busy = 1;
    close(fd);
    return busy;
}

typedef struct {
    char *buf;
    size_t n;
} text_out;

/* H5Ewalk2 callback: copies the description of HDF5's "truncated file" error. */
static herr_t find_truncation(unsigned n, const H5E_error2_t *e, void *data)
{
    text_out *t = data;
    (void)n;
    if (e->desc && strstr(e->desc, "truncated file"))
        snprintf(t->buf, t->n, "the file is truncated (HDF5: %s): it ends before the data it indexes (a copy "
                 "or download cut short, a full disk?)", e->desc);
    return 0;
}

int ngs_h5_open_failed_truncated(char *why, size_t n)
{
    text_out t = {why, n};
    if (!why || !n) return 0;
    why[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_truncation, &t);
    return why[0] != '\0';
}

int64_t ngs_h5_open_read(const char *path, int *live, int *busy, char *cut, size_t cutlen)
{
    hid_t f;
    *live = *busy = 0;
    if (cut && cutlen) cut[0] = '\0';
    H5E_BEGIN_TRY {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) { /* still being written, or left by a killed writer */
            f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
            *live = f >= 0;
        }
    } H5E_END_TRY;
    if (f < 0) {
        ngs_h5_open_failed_truncated(cut, cutlen);
        *busy = ngs_h5_file_in_use(path);
    }
    return f;
}

int ngs_h5_check_replace(const char *path, char *err, size_t errlen)
{
    const char *why = ngs_h5_is_foreign_file(path) ? "exists and is not an HDF5 file: not overwriting it (remove it first)"
                      : ngs_h5_file_in_use(path) ? "is open in another program (an HDF5 reader, or an ngscale run or "
                                                   "batch writing it): not replacing it; close it or write elsewhere"
                                                 : NULL;
    if (!why) return NGS_OK;
    if (err && errlen) snprintf(err, errlen, "%s %s", path, why);
    return NGS_ERR_IO;
}

/* "path.tmp-PID-N" opened O_EXCL, so that two writers never share one. */
int ngs_h5_temp_beside(const char *path, char **tmp, char **dest, char *err, size_t errlen)
{
    struct stat st;
    int have = stat(path, &st) == 0;
    *dest = have ? realpath(path, NULL) : strdup(path);
    *tmp = *dest ? malloc(strlen(*dest) + 32) : NULL;
    if (!*tmp) {
        free(*dest);
        *dest = NULL;
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NGS_ERR_NOMEM;
    }
    for (unsigned k = 0;; k++) {
        sprintf(*tmp, "%s.tmp-%ld-%u", *dest, (long)getpid(), k);
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            if (have)
                fchmod(fd, st.st_mode & 07777);
            close(fd);
            return NGS_OK;
        }
        if (errno != EEXIST || k == 1000) {
            int e = errno;
            free(*tmp);
            free(*dest);
            *tmp = *dest = NULL;
            if (err && errlen) snprintf(err, errlen, "%s: cannot create a file beside it: %s", path, strerror(e));
            return NGS_ERR_IO;
        }
    }
}

static void mark_in_use(ngs_h5_writer *w)
{
    struct flock lock = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    w->in_use_fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (w->in_use_fd >= 0 && fcntl(w->in_use_fd, F_OFD_SETLK, &lock) != 0) {
        close(w->in_use_fd); /* a filesystem without such locks: HDF5's own must do */
        w->in_use_fd = -1;
    }
}

static int fail(ngs_h5_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    if (w->frozen) return code; /* the write that failed first is the reason */
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return code;
}

int ngs_h5_replacement_of(const char *path, char *tmp, size_t tmplen)
{
    char *real = realpath(path, NULL), *slash, *base;
    const char *dir;
    DIR *d;
    struct dirent *e;
    int found = 0;
    if (!real) return 0;
    slash = strrchr(real, '/');
    *slash = '\0';
    dir = slash == real ? "/" : real;
    base = slash + 1;
    if ((d = opendir(dir))) {
        size_t n = strlen(base);
        while (!found && (e = readdir(d)))
            if (strncmp(e->d_name, base, n) == 0 && strncmp(e->d_name + n, ".tmp-", 5) == 0) {
                snprintf(tmp, tmplen, "%s/%s", slash == real ? "" : dir, e->d_name);
                found = ngs_h5_file_in_use(tmp); /* a killed writer's holds no lock */
            }
        closedir(d);
    }
    free(real);
    return found;
}

/* HDF5 offers no close without a flush: pointing its descriptor at a read-only one of
 * the same file (reopened through /proc, whatever its name now) makes every later
 * write fail, so what is on disk stays as it was. */
void ngs_h5_freeze_file(int64_t file)
{
    void *handle = NULL;
    hid_t fapl;
    int ro, sec2;
    char self[64];
    H5E_BEGIN_TRY {
        fapl = H5Fget_access_plist(file);
        sec2 = fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2; /* its handle is the int fd */
        if (fapl >= 0) H5Pclose(fapl);
        if (sec2 && H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0) handle = NULL;
    } H5E_END_TRY;
    if (!handle) return;
    snprintf(self, sizeof self, "/proc/self/fd/%d", *(int *)handle);
    if ((ro = open(self, O_RDONLY | O_CLOEXEC)) < 0) return;
    dup2(ro, *(int *)handle);
    close(ro);
}

/* A failed write of data or metadata (a full disk): the first message stays, and the
 * file is frozen at what its last flush left, a state SWMR readers open (HDF5's own
 * close would write a superblock whose end lies past the data that did not fit, and
 * no reader would open the file again). */
static int fail_write(ngs_h5_writer *w, const char *fmt, ...)
{
    va_list ap;
    if (w->frozen) return NGS_ERR_IO;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    ngs_h5_freeze_file(w->file); /* a batch's shared file too: the disk is full */
    w->frozen = 1;
    return NGS_ERR_IO;
}

static char *dup_str(const char *s) { return strdup(s ? s : ""); }

/* HDF5 link names cannot contain '/', and "." is reserved. */
static char *escape_link_name(const char *name)
{
    size_t n = strlen(name), o = 0;
    char *out = malloc(3 * n + 2);
    if (!out) return NULL;
    if (n == 0 || strcmp(name, ".") == 0) out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '/' || name[i] == '%') {
            o += (size_t)sprintf(out + o, "%%%02X", (unsigned char)name[i]);
        } else {
            out[o++] = name[i];
        }
    }
    out[o] = '\0';
    return out;
}

const char *ngs_h5_status_name(int status)
{
    if (status == NGS_OK) return "complete";
    if (status == NGS_ERR_INTERRUPTED || status == NGS_ERR_TIMEOUT) return "incomplete";
    return "failed";
}

static void iso_time(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------ file modes -- */

static hid_t open_group(hid_t file, const char *path)
{
    return H5Gopen2(file, path, H5P_DEFAULT);
}

/* A SWMR reader holds the file's lock for a moment while it opens the file, and
 * reopening the file or starting SWMR writing needs that lock: wait for it, about
 * two seconds at most. Returns 0 when it is time to give up. */
static int wait_for_lock(int attempt)
{
    if (attempt >= 100) return 0;
    usleep(attempt < 10 ? 1000 : 20000);
    return 1;
}

/* A wide plot visits each dataset's metadata once per block, so no cache size would
 * give hits; but HDF5's cache grows to its limit (32 MiB counted as on disk, ~10x that
 * in memory, decoded) while it does. A wide plot gets a small fixed cache, and the
 * next plot of normal width HDF5's default back: its blocks reuse their metadata.
 * Writers sharing a file (a batch) share its cache: the last plot decides. */
void ngs_h5_fit_cache(int64_t file_id, int nvec)
{
    H5AC_cache_config_t now = {.version = H5AC__CURR_CACHE_CONFIG_VERSION};
    H5AC_cache_config_t c = {.version = H5AC__CURR_CACHE_CONFIG_VERSION};
    int wide = nvec > NGS_H5_OPEN_VECTORS_MAX, ok;
    hid_t file = (hid_t)file_id, fapl;
    if (H5Fget_mdc_config(file, &now) < 0 || (now.max_size == WIDE_CACHE_BYTES) == wide) return;
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    ok = fapl >= 0 && H5Pget_mdc_config(fapl, &c) >= 0; /* HDF5's default */
    if (fapl >= 0) H5Pclose(fapl);
    if (!ok) return;
    if (wide) {
        c.set_initial_size = 1;
        c.initial_size = c.min_size = c.max_size = WIDE_CACHE_BYTES;
        c.incr_mode = H5C_incr__off;
        c.flash_incr_mode = H5C_flash_incr__off;
        c.decr_mode = H5C_decr__off;
    }
    H5Fset_mdc_config(file, &c); /* a failure only costs memory or speed */
}

/* Opens the dataset of vector i unless it is open. A wide plot's datasets are open
 * only while written to (NGS_H5_OPEN_VECTORS_MAX): vec_release closes them again. */
static int vec_open(ngs_h5_writer *w, plot_state *p, int i)
{
    vec_state *v = &p->vecs[i];
    char *path;
    if (v->dset > 0) return NGS_OK;
    if (v->has_at && (v->dset = obj_at_open(w->file, &v->at)) > 0) return NGS_OK;
    if (!(path = malloc(strlen(p->group_path) + strlen(v->dset_name) + 2))) return NGS_ERR_NOMEM;
    sprintf(path, "%s/%s", p->group_path, v->dset_name);
    v->dset = H5Dopen2(w->file, path, w->dapl);
    free(path);
    return v->dset < 0 ? fail(w, NGS_ERR_HDF5, "%s: cannot open %s/%s", w->path, p->group_path, v->dset_name)
                       : NGS_OK;
}

static void vec_release(plot_state *p, int i)
{
    if (!p->keep_open && p->vecs[i].dset > 0) {
        H5E_BEGIN_TRY { H5Dclose(p->vecs[i].dset); } H5E_END_TRY; /* fails once frozen */
        p->vecs[i].dset = H5I_INVALID_HID;
    }
}

/* Closes the file with the run's group and the plot's datasets, and opens them
 * again in plain read-write mode. */
static int reopen_file(ngs_h5_writer *w)
{
    plot_state *p = w->plot;
    H5E_BEGIN_TRY { /* a failed H5Fstart_swmr_write may have closed them already */
        if (p && p->created)
            for (int i = 0; i < p->nvec; i++) {
                H5Dclose(p->vecs[i].dset);
                p->vecs[i].dset = H5I_INVALID_HID;
            }
        if (w->run_group >= 0) H5Gclose(w->run_group);
        H5Fclose(w->file);
    } H5E_END_TRY;
    w->run_group = H5I_INVALID_HID;
    w->swmr_active = 0;
    for (int attempt = 0;; attempt++) {
        H5E_BEGIN_TRY {
            w->file = H5Fopen(w->path, H5F_ACC_RDWR, w->fapl);
        } H5E_END_TRY;
        if (w->file >= 0 || !wait_for_lock(attempt)) break;
    }
    if (w->file < 0)
        return fail(w, NGS_ERR_HDF5, "%s: cannot reopen the file (locked by another process?)", w->path);
    if (w->run_open) {
        w->run_group = open_group(w->file, w->run_path);
        if (w->run_group < 0) return fail(w, NGS_ERR_HDF5, "%s: cannot reopen %s", w->path, w->run_path);
    }
    if (p) ngs_h5_fit_cache(w->file, p->nvec); /* reopened with the default cache */
    for (int i = 0; p && p->created && p->keep_open && i < p->nvec; i++) {
        int rc = vec_open(w, p, i);
        if (rc != NGS_OK) return rc;
    }
    return NGS_OK;
}

/* Back to plain read-write so objects and attributes can be created. */
static int enter_structure_mode(ngs_h5_writer *w)
{
    if (w->frozen) return NGS_ERR_IO;
    return w->swmr_active ? reopen_file(w) : NGS_OK;
}

static int enter_swmr_mode(ngs_h5_writer *w)
{
    if (w->frozen) return NGS_ERR_IO;
    if (!w->opt.swmr || w->swmr_active) return NGS_OK;
    for (int attempt = 0;; attempt++) {
        herr_t rc;
        int r;
        H5E_BEGIN_TRY {
            rc = H5Fstart_swmr_write(w->file);
        } H5E_END_TRY;
        if (rc >= 0) break;
        /* each attempt may wait in reopen_file too: a few attempts are seconds */
        if (attempt >= 10 || !wait_for_lock(attempt))
            return fail(w, NGS_ERR_HDF5, "%s: cannot start SWMR writing (locked by another process?)", w->path);
        /* it closes and reopens the open objects; failing half way leaves their ids dead */
        if ((r = reopen_file(w)) != NGS_OK) return r;
    }
    w->swmr_active = 1;
    return NGS_OK;
}

/* ------------------------------------------------------------ open/close -- */

void ngs_h5_options_init(ngs_h5_options *o)
{
    memset(o, 0, sizeof *o);
    o->codec = NGS_CODEC_ZSTD;
    o->swmr = 1;
    o->flush_interval_s = 1.0;
}

static int check_ngscale_file(ngs_h5_writer *w)
{
    htri_t ok = H5Aexists(w->file, "ngscale_format");
    if (ok <= 0)
        return fail(w, NGS_ERR_FORMAT, "%s: not an ngscale file (no ngscale_format attribute)", w->path);
    return NGS_OK;
}

static int refuse_option(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return NGS_ERR_ARG;
}

/* 0 or a finite positive number: 0 means unset */
static int lossy_bound_ok(double x) { return x == 0 || (isfinite(x) && x > 0); }

/* The codec whose levels a codec takes: the lossy ones compress what they keep with
 * zstd (bounded) or deflate (bitround). */
static ngs_codec level_codec(ngs_codec codec)
{
    return codec == NGS_CODEC_BOUNDED ? NGS_CODEC_ZSTD : codec == NGS_CODEC_BITROUND ? NGS_CODEC_DEFLATE : codec;
}

int ngs_h5_options_check(const ngs_h5_options *o, char *err, size_t errlen)
{
    const ngs_lossy_options *l;
    if (!o) return NGS_OK;
    l = &o->lossy;
    if (!ngs_codec_name(o->codec))
        return refuse_option(err, errlen, "unknown codec %d", (int)o->codec);
    if (ngs_codec_check_level(level_codec(o->codec), o->level) != NGS_OK)
        return refuse_option(err, errlen, "level %d does not suit codec %s (zstd: 1..22 or a negative fast "
                                          "level; deflate and bitround: 1..9)", o->level, ngs_codec_name(o->codec));
    if (!lossy_bound_ok(l->abs_err) || !lossy_bound_ok(l->rel_err))
        return refuse_option(err, errlen, "abs_err and rel_err must be positive and finite (0: unset)");
    if (l->bits < 0 || l->bits > 52)
        return refuse_option(err, errlen, "bits must be 1..52 mantissa bits (0: unset), not %d", l->bits);
    if (o->codec != NGS_CODEC_BOUNDED && o->codec != NGS_CODEC_BITROUND &&
        (l->abs_err > 0 || l->rel_err > 0 || l->bits > 0))
        return refuse_option(err, errlen, "abs_err, rel_err and bits apply to codec bounded or bitround, not %s",
                             ngs_codec_name(o->codec));
    if (o->codec == NGS_CODEC_BITROUND && l->abs_err > 0)
        return refuse_option(err, errlen, "bitround bounds the relative error only: give rel_err or bits, "
                                          "or use codec bounded for abs_err");
    if (o->codec == NGS_CODEC_BITROUND && l->bits > 0 && l->rel_err > 0) /* bits won, silently */
        return refuse_option(err, errlen, "bitround takes bits or rel_err, not both (bits %d keeps a "
                                          "relative error of %g)", l->bits, ngs_bitround_max_rel_err(l->bits));
    if (o->codec == NGS_CODEC_BOUNDED && l->bits > 0)
        return refuse_option(err, errlen, "bits applies to codec bitround; bounded takes abs_err or rel_err");
    if (o->chunk_points > NGS_H5_CHUNK_POINTS_MAX)
        return refuse_option(err, errlen, "chunk_points %zu is over the limit of %u", o->chunk_points,
                             NGS_H5_CHUNK_POINTS_MAX);
    if (o->encoder_threads < 0 || o->encoder_threads > NGS_H5_ENCODER_THREADS_MAX)
        return refuse_option(err, errlen, "encoder_threads must be 0..%d, not %d", NGS_H5_ENCODER_THREADS_MAX,
                             o->encoder_threads);
    if (isnan(o->flush_interval_s))
        return refuse_option(err, errlen, "flush_interval_s is not a number");
    return NGS_OK;
}

static int open_writer(ngs_h5_writer **out, const char *path, const ngs_h5_options *options,
                char *err, size_t errlen)
{
    ngs_h5_writer *w;
    int rc = NGS_OK;
    if (!out || !path) return NGS_ERR_ARG;
    *out = NULL;
    if ((rc = ngs_h5_options_check(options, err, errlen)) != NGS_OK) return rc;
    w = calloc(1, sizeof *w);
    if (!w) return NGS_ERR_NOMEM;
    if (options) w->opt = *options; else ngs_h5_options_init(&w->opt);
    if (!w->opt.shared_file) w->opt.shared_lock = NULL;
    else if (w->opt.shared_lock) w->lock_depth = 1; /* ngs_h5_open holds it */
    /* bounded keeps 0: its own zstd default (bounded.h), not the zstd codec's */
    if (w->opt.level == 0 && w->opt.codec != NGS_CODEC_BOUNDED)
        w->opt.level = ngs_codec_default_level(level_codec(w->opt.codec));
    if (w->opt.codec == NGS_CODEC_BITROUND) {
        w->bits = w->opt.lossy.bits;
        if (!w->bits && w->opt.lossy.rel_err > 0) ngs_bitround_bits_for_rel_err(w->opt.lossy.rel_err, &w->bits);
        if (!w->bits) w->bits = 24;
    }
    w->path = strdup(path);
    w->file = w->run_group = w->complex_type = H5I_INVALID_HID;
    w->in_use_fd = -1;
    w->last_flush = ngs_now_s();
    ngs_codec_register_zstd();
    ngs_bounded_register();

    w->fapl = H5Pcreate(H5P_FILE_ACCESS);
    w->fcpl = H5Pcreate(H5P_FILE_CREATE);
    w->dapl = H5Pcreate(H5P_DATASET_ACCESS);
    /* Chunks go in with H5Dwrite_chunk, past HDF5's chunk cache: an empty one saves its
     * slot table (4 KB per open dataset by default). */
    H5Pset_chunk_cache(w->dapl, 1, 0, 1.0);
    H5Pset_link_creation_order(w->fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    /* Free space is not tracked across sessions: records saved by a writer that was
     * later killed describe space it went on to use, and a file repaired with h5clear
     * would hand that space out twice ("duplicate entry in cache"). What a partial
     * chunk's rewrite frees is reused within a session; SWMR reuses none anyway. */
    H5Pset_file_space_strategy(w->fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 0, 1);
    /* SWMR needs the latest format; it also gives checksummed metadata. */
    H5Pset_libver_bounds(w->fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    if (w->opt.shared_file) {
        w->file = (hid_t)w->opt.shared_file;
        w->opt.swmr = 0; /* other writers share the file: its owner decides */
        if (H5Iget_type(w->file) != H5I_FILE) {
            w->file = H5I_INVALID_HID;
            rc = fail(w, NGS_ERR_ARG, "%s: the shared file is not open", path);
        }
        goto file_ready;
    }
    if (!w->opt.append && (rc = ngs_h5_check_replace(path, w->err, sizeof w->err)) != NGS_OK) goto out;
    for (int attempt = 0;; attempt++) {
        errno = 0;
        H5E_BEGIN_TRY {
            if (w->opt.append) {
                w->file = H5Fopen(path, H5F_ACC_RDWR, w->fapl);
            } else {
                w->file = H5Fcreate(path, H5F_ACC_TRUNC, w->fcpl, w->fapl);
            }
        } H5E_END_TRY;
        /* a reader may have opened the new, empty file before we locked it */
        if (w->file >= 0 || errno != EAGAIN || !wait_for_lock(attempt)) break;
    }
    if (w->file < 0) {
        int why = errno; /* what the last system call HDF5 made said, when it says anything */
        rc = fail(w, NGS_ERR_IO, "%s: cannot %s the HDF5 file%s%s", path,
                  w->opt.append ? "open (for appending)" : "create", why ? ": " : "",
                  why ? strerror(why) : "");
        goto out;
    }
    mark_in_use(w);
#if H5_VERSION_GE(1, 10, 7)
    /* Reopening for structure changes takes HDF5's file lock, which a SWMR reader
     * holds as long as it has the file open: the run failed under the reader that
     * followed it. From here the writer goes without HDF5's lock; its own (above)
     * keeps other writers out, and a SWMR reader retries what it reads mid-change. */
    H5Pset_file_locking(w->fapl, 0, 1);
#endif
    if (w->opt.append) {
        rc = check_ngscale_file(w);
    } else {
        char created[32];
        iso_time(created, sizeof created);
        if (ngs_h5_attr_write_str(w->file, "ngscale_format", "ngscale-hdf5") < 0 ||
            ngs_h5_attr_write_i64(w->file, "ngscale_format_version", NGSCALE_FORMAT_VERSION) < 0 ||
            ngs_h5_attr_write_str(w->file, "ngscale_version", NGSCALE_VERSION) < 0 ||
            ngs_h5_attr_write_str(w->file, "created", created) < 0)
            rc = fail(w, NGS_ERR_HDF5, "%s: cannot write file attributes", path);
    }
file_ready:
    w->complex_type = H5Tcreate(H5T_COMPOUND, 2 * sizeof(double));
    H5Tinsert(w->complex_type, "r", 0, H5T_NATIVE_DOUBLE);
    H5Tinsert(w->complex_type, "i", sizeof(double), H5T_NATIVE_DOUBLE);
    /* one core stays with ngspice's simulation thread: encoding on every core
     * would preempt it and slow the run down more than compression gains */
    if (rc == NGS_OK && ngs_pool_create(&w->pool, w->opt.encoder_threads > 0 ? w->opt.encoder_threads
                                                  : ngs_cpu_count() > 1 ? ngs_cpu_count() - 1 : 1) != NGS_OK)
        rc = fail(w, NGS_ERR_NOMEM, "out of memory");
    w->nthreads = w->pool ? ngs_pool_size(w->pool) : 1;
out:
    if (rc != NGS_OK) {
        if (err) snprintf(err, errlen, "%s", w->err);
        ngs_h5_close(w);
        return rc;
    }
    *out = w;
    return NGS_OK;
}

static void plot_free(plot_state *p)
{
    if (!p) return;
    for (int i = 0; i < p->nvec; i++) {
        vec_state *v = &p->vecs[i];
        if (v->dset > 0) /* also those of a half-created plot (0: never set); fails once frozen */
            H5E_BEGIN_TRY { H5Dclose(v->dset); } H5E_END_TRY;
        free(v->dset_name);
        free(v->name);
        free(v->ngspice_name);
        free(v->type_name);
        free(v->unit);
    }
    free(p->vecs);
    free(p->block);
    free(p->block_offset);
    free(p->group_path);
    free(p->name);
    free(p->plotname);
    free(p->analysis);
    free(p->title);
    free(p->date);
    free(p);
}

static void free_slots(ngs_h5_writer *w)
{
    for (int i = 0; i < w->nslots; i++) {
        free(w->enc[i]);
        free(w->scratch[i]);
        if (w->bctx) ngs_bounded_ctx_free(w->bctx[i]);
    }
    free(w->bctx);
    w->bctx = NULL;
    free(w->enc);
    free(w->scratch);
    free(w->enc_size);
    free(w->enc_rc);
    w->enc = w->scratch = NULL;
    w->enc_size = NULL;
    w->enc_rc = NULL;
    w->nslots = 0;
    w->slot_bytes = 0;
}

static int close_held(ngs_h5_writer *w)
{
    int rc = NGS_OK;
    if (!w) return NGS_OK;
    if (w->file >= 0) {
        if (w->plot) rc = ngs_h5_plot_end(w, NGS_ERR_INTERRUPTED, "the file was closed during the analysis");
        if (w->run_open) {
            int r2 = ngs_h5_run_end(w, NGS_ERR_INTERRUPTED, "the file was closed during the run");
            if (rc == NGS_OK) rc = r2;
        }
        if (w->run_group >= 0) H5Gclose(w->run_group);
        if (owns_file(w)) {
            herr_t crc;
            H5E_BEGIN_TRY { crc = H5Fclose(w->file); } H5E_END_TRY; /* frozen: it fails */
            if (crc < 0 && rc == NGS_OK) rc = fail(w, NGS_ERR_IO, "%s: close failed (disk full?)", w->path);
        }
    }
    if (w->in_use_fd >= 0) close(w->in_use_fd);
    plot_free(w->plot);
    if (w->complex_type >= 0) H5Tclose(w->complex_type);
    if (w->fapl >= 0) H5Pclose(w->fapl);
    if (w->fcpl >= 0) H5Pclose(w->fcpl);
    if (w->dapl >= 0) H5Pclose(w->dapl);
    free_slots(w);
    ngs_pool_destroy(w->pool);
    free(w->run_path);
    free(w->path);
    free(w);
    return rc;
}

const char *ngs_h5_error(const ngs_h5_writer *w) { return w ? w->err : ""; }

/* ------------------------------------------------------------------ runs -- */

static int run_begin_held(ngs_h5_writer *w, const char *group)
{
    char started[32];
    hid_t gcpl;
    int rc;
    if (w->run_open) return fail(w, NGS_ERR_STATE, "a run is already open in %s", w->path);
    if ((rc = enter_structure_mode(w)) != NGS_OK) return rc;
    free(w->run_path);
    w->run_path = escape_link_name(group && *group ? group : "run");
    if (!w->run_path) return NGS_ERR_NOMEM;
    if (strcmp(w->run_path, NGS_H5_SPECTRUM_TABLE) == 0)
        return fail(w, NGS_ERR_ARG, "group name '%s' is taken by the spectrum metrics table: pick another",
                    w->run_path);
    if (H5Lexists(w->file, w->run_path, H5P_DEFAULT) > 0)
        return fail(w, NGS_ERR_ARG, "%s: group '%s' already exists", w->path, w->run_path);
    gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    /* compact attributes, as for datasets: a run's ~20 would otherwise go to dense
     * storage (a heap and a B-tree per group), a quarter slower to write */
    H5Pset_attr_phase_change(gcpl, 32, 24);
    w->run_group = H5Gcreate2(w->file, w->run_path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (w->run_group < 0) return fail(w, NGS_ERR_HDF5, "%s: cannot create group '%s'", w->path, w->run_path);
    w->run_open = 1;
    w->plot_count = 0;
    iso_time(started, sizeof started);
    if (ngs_h5_attr_write_str(w->run_group, "status", "incomplete") < 0 ||
        ngs_h5_attr_write_str(w->run_group, "message", "the run has not finished (or was killed)") < 0 ||
        ngs_h5_attr_write_str(w->run_group, "started", started) < 0 ||
        ngs_h5_attr_write_str(w->run_group, "ngscale_version", NGSCALE_VERSION) < 0 ||
        ngs_h5_attr_write_str(w->run_group, "codec", ngs_codec_name(w->opt.codec)) < 0)
        return fail(w, NGS_ERR_HDF5, "%s: cannot write run attributes", w->path);
    if (owns_file(w)) H5Fflush(w->file, H5F_SCOPE_GLOBAL);
    return NGS_OK;
}

static int run_attr_prepare(ngs_h5_writer *w)
{
    if (!w->run_open) return fail(w, NGS_ERR_STATE, "no run is open");
    return enter_structure_mode(w);
}

static int run_attr_str_held(ngs_h5_writer *w, const char *key, const char *value)
{
    int rc = run_attr_prepare(w);
    if (rc != NGS_OK) return rc;
    return ngs_h5_attr_write_str(w->run_group, key, value) < 0
               ? fail(w, NGS_ERR_HDF5, "%s: cannot write attribute %s", w->path, key) : NGS_OK;
}

static int run_attr_f64_held(ngs_h5_writer *w, const char *key, double value)
{
    int rc = run_attr_prepare(w);
    if (rc != NGS_OK) return rc;
    return ngs_h5_attr_write_f64(w->run_group, key, value) < 0
               ? fail(w, NGS_ERR_HDF5, "%s: cannot write attribute %s", w->path, key) : NGS_OK;
}

static int run_attr_i64_held(ngs_h5_writer *w, const char *key, int64_t value)
{
    int rc = run_attr_prepare(w);
    if (rc != NGS_OK) return rc;
    return ngs_h5_attr_write_i64(w->run_group, key, value) < 0
               ? fail(w, NGS_ERR_HDF5, "%s: cannot write attribute %s", w->path, key) : NGS_OK;
}

static int run_end_held(ngs_h5_writer *w, int status, const char *message)
{
    char finished[32];
    int rc;
    if (!w->run_open) return fail(w, NGS_ERR_STATE, "no run is open");
    if (w->plot) ngs_h5_plot_end(w, status == NGS_OK ? NGS_ERR_INTERRUPTED : status, message);
    if ((rc = enter_structure_mode(w)) != NGS_OK) return rc;
    iso_time(finished, sizeof finished);
    if (ngs_h5_attr_write_str(w->run_group, "status", ngs_h5_status_name(status)) < 0 ||
        ngs_h5_attr_write_str(w->run_group, "message", status == NGS_OK ? "" : (message ? message : ngs_strerror(status))) < 0 ||
        ngs_h5_attr_write_str(w->run_group, "finished", finished) < 0 ||
        ngs_h5_attr_write_i64(w->run_group, "plots", w->plot_count) < 0)
        rc = fail(w, NGS_ERR_HDF5, "%s: cannot write run status", w->path);
    H5Gclose(w->run_group);
    w->run_group = H5I_INVALID_HID;
    w->run_open = 0;
    if (owns_file(w) && !w->frozen) {
        herr_t frc;
        H5E_BEGIN_TRY { frc = H5Fflush(w->file, H5F_SCOPE_GLOBAL); } H5E_END_TRY;
        if (frc < 0 && rc == NGS_OK) rc = fail_write(w, "%s: flush failed (disk full?)", w->path);
    }
    return rc;
}

/* ----------------------------------------------------------------- plots -- */

static size_t auto_chunk_points(const plot_state *p)
{
    size_t row_bytes = (size_t)p->row_doubles * sizeof(double), c = CHUNK_MAX;
    if (row_bytes == 0) return CHUNK_MIN;
    while (c > CHUNK_MIN && c * row_bytes > BLOCK_TARGET_BYTES) c >>= 1;
    while (c > CHUNK_MIN_WIDE && c * row_bytes > BLOCK_WIDE_MAX_BYTES) c >>= 1;
    return c;
}

static int alloc_block(plot_state *p)
{
    size_t off = 0;
    p->block_capacity = p->chunk_points;
    p->block_offset = malloc((size_t)p->nvec * sizeof *p->block_offset);
    if (!p->block_offset && p->nvec) return NGS_ERR_NOMEM;
    for (int i = 0; i < p->nvec; i++) {
        p->block_offset[i] = off;
        off += p->chunk_points * p->vecs[i].elem;
    }
    /* not zeroed: write_block zeroes the tail of a partial chunk */
    p->block = malloc(off ? off : 1);
    return p->block ? NGS_OK : NGS_ERR_NOMEM;
}

/* Encoder slots sized for the largest chunk of the plot, allocated at its first
 * write, when the chunk size is final: a short plot (a batch's tiny job) gets
 * small slots instead of ones for the full automatic chunk. */
static int ensure_slots(ngs_h5_writer *w, const plot_state *p)
{
    size_t chunk_bytes_max = 0;
    int n = 8 * w->nthreads; /* one pool run covers many vectors: fewer barriers */
    for (int i = 0; i < p->nvec; i++)
        if (p->chunk_points * p->vecs[i].elem > chunk_bytes_max) chunk_bytes_max = p->chunk_points * p->vecs[i].elem;
    if (chunk_bytes_max <= w->slot_bytes) return NGS_OK;
    free_slots(w);
    w->enc = calloc((size_t)n, sizeof *w->enc);
    w->scratch = calloc((size_t)n, sizeof *w->scratch);
    w->enc_size = calloc((size_t)n, sizeof *w->enc_size);
    w->enc_rc = calloc((size_t)n, sizeof *w->enc_rc);
    w->bctx = calloc((size_t)n, sizeof *w->bctx);
    if (!w->enc || !w->scratch || !w->enc_size || !w->enc_rc || !w->bctx) return NGS_ERR_NOMEM;
    w->nslots = n;
    for (int i = 0; i < n; i++) {
        /* room for whichever codec a vector uses (a scale stays on zstd) */
        size_t bound = ngs_codec_bound(NGS_CODEC_ZSTD, chunk_bytes_max);
        if (ngs_codec_bound(NGS_CODEC_DEFLATE, chunk_bytes_max) > bound)
            bound = ngs_codec_bound(NGS_CODEC_DEFLATE, chunk_bytes_max);
        if (ngs_bounded_bound(chunk_bytes_max) > bound) bound = ngs_bounded_bound(chunk_bytes_max);
        w->enc[i] = malloc(bound);
        w->scratch[i] = malloc(2 * chunk_bytes_max); /* bitround needs two */
        if (!w->enc[i] || !w->scratch[i]) return NGS_ERR_NOMEM;
        if (w->opt.codec == NGS_CODEC_BOUNDED && ngs_bounded_ctx_create(&w->bctx[i]) != NGS_OK)
            return NGS_ERR_NOMEM;
    }
    w->slot_bytes = chunk_bytes_max;
    return NGS_OK;
}

/* The same RAW name twice: both are kept, the later one as "name#index". A hash table
 * of the names so far, as a plot may have 100k vectors. */
static int unique_names(plot_state *p)
{
    struct hsearch_data seen;
    int rc = NGS_OK;
    memset(&seen, 0, sizeof seen);
    if (!hcreate_r(2 * (size_t)p->nvec + 1, &seen)) return NGS_ERR_NOMEM;
    for (int i = 0; rc == NGS_OK && i < p->nvec; i++) {
        vec_state *v = &p->vecs[i];
        ENTRY e = {v->dset_name, NULL}, *found;
        while (rc == NGS_OK && hsearch_r(e, FIND, &found, &seen)) {
            char *n = malloc(strlen(v->dset_name) + 16);
            if (!n) rc = NGS_ERR_NOMEM;
            else {
                sprintf(n, "%s#%d", v->dset_name, i);
                free(v->dset_name);
                e.key = v->dset_name = n;
            }
        }
        if (rc == NGS_OK && !hsearch_r(e, ENTER, &found, &seen)) rc = NGS_ERR_NOMEM;
    }
    hdestroy_r(&seen);
    return rc;
}

/* Touches no HDF5 object (the plot's group is created with its first block), so it
 * runs without the shared lock, which a batch's workers take turns on; ending a plot
 * left open takes it, through ngs_h5_plot_end. */
int ngs_h5_plot_begin(ngs_h5_writer *w, const ngs_plot_desc *d)
{
    plot_state *p;
    int rc;
    char *leaf;
    if (!w->run_open) return fail(w, NGS_ERR_STATE, "no run is open");
    if (w->plot) ngs_h5_plot_end(w, NGS_ERR_SIMULATION, "the analysis ended without notice");
    p = calloc(1, sizeof *p);
    if (!p) return NGS_ERR_NOMEM;
    w->plot = p;
    p->name = dup_str(d->name);
    p->plotname = dup_str(d->plotname);
    p->analysis = dup_str(d->analysis);
    p->title = dup_str(d->title);
    p->date = dup_str(d->date);
    p->index = d->index;
    p->nvec = d->nvectors;
    p->is_complex = d->is_complex;
    p->row_doubles = d->row_doubles;
    p->scale_index = d->scale_index;
    leaf = escape_link_name(d->name && *d->name ? d->name : "plot");
    p->group_path = leaf ? malloc(strlen(w->run_path) + strlen(leaf) + 2) : NULL;
    if (p->group_path) sprintf(p->group_path, "%s/%s", w->run_path, leaf);
    free(leaf);
    p->vecs = calloc((size_t)(p->nvec ? p->nvec : 1), sizeof *p->vecs);
    if (!p->name || !p->group_path || !p->vecs) return NGS_ERR_NOMEM;
    for (int i = 0; i < p->nvec; i++) {
        const ngs_vector_desc *src = &d->vectors[i];
        vec_state *v = &p->vecs[i];
        v->dset = H5I_INVALID_HID;
        v->dset_name = escape_link_name(src->name);
        v->name = dup_str(src->name);
        v->ngspice_name = dup_str(src->ngspice_name);
        v->type_name = dup_str(src->type_name);
        v->unit = dup_str(src->unit);
        v->type = src->type;
        v->is_complex = src->is_complex;
        v->is_scale = src->is_scale;
        v->column = src->column;
        v->elem = src->is_complex ? 16 : 8;
        v->codec = w->opt.codec;
        if ((v->codec == NGS_CODEC_BOUNDED || v->codec == NGS_CODEC_BITROUND) && src->is_scale)
            v->codec = NGS_CODEC_ZSTD; /* time and frequency stay exact */
        if (v->codec == NGS_CODEC_BOUNDED) {
            memset(&v->bp, 0, sizeof v->bp);
            v->bp.abs_err = w->opt.lossy.abs_err;
            v->bp.rel_err = w->opt.lossy.rel_err;
            /* no default bound for a time, frequency or sweep that is not the scale (a
             * RAW file's second time column): stored exactly, like the scale */
            if (v->bp.abs_err <= 0 && v->bp.rel_err <= 0 &&
                ngs_bounded_default_params(src->type_name, &v->bp) != NGS_OK)
                v->codec = NGS_CODEC_ZSTD;
            v->bp.zstd_level = w->opt.level; /* --level was checked, then ignored */
        }
        if (!v->dset_name || !v->name || !v->ngspice_name || !v->type_name || !v->unit)
            return NGS_ERR_NOMEM;
    }
    if ((rc = unique_names(p)) != NGS_OK) return fail(w, rc, "out of memory for plot %s", d->name);
    p->chunk_points = w->opt.chunk_points ? w->opt.chunk_points : auto_chunk_points(p);
    p->keep_open = p->nvec <= NGS_H5_OPEN_VECTORS_MAX;
    if ((rc = alloc_block(p)) != NGS_OK) return fail(w, rc, "out of memory for plot %s", d->name);
    p->started = p->last_partial = ngs_now_s();
    p->partial_gap = w->opt.flush_interval_s * PARTIAL_AGE;
    w->plot_count++;
    return NGS_OK;
}

/* status, message and points: final once the plot has ended (only plot_end passes
 * plot_ended, after setting end_status), "incomplete" before */
static int plot_status_attrs(hid_t group, const plot_state *p, int plot_ended)
{
    const char *message;
    if (!plot_ended)
        return ngs_h5_attr_write_str(group, "status", "incomplete") < 0 || ngs_h5_attr_write_i64(group, "points", 0) < 0 ? -1 : 0;
    message = p->end_status == NGS_OK ? "" : p->end_message ? p->end_message : ngs_strerror(p->end_status);
    return ngs_h5_attr_write_str(group, "status", ngs_h5_status_name(p->end_status)) < 0 ||
           ngs_h5_attr_write_str(group, "message", message) < 0 ||
           ngs_h5_attr_write_i64(group, "points", (int64_t)(p->done_rows + p->block_rows)) < 0 ? -1 : 0;
}

/* Creates the plot's group and datasets; chunk size is final from here on. */
static int create_plot_objects(ngs_h5_writer *w, plot_state *p, int plot_ended)
{
    hid_t gcpl, group;
    int rc = NGS_OK;
    if ((rc = enter_structure_mode(w)) != NGS_OK) return rc;
    ngs_h5_fit_cache(w->file, p->nvec);
    if (plot_ended && p->block_rows < p->chunk_points && p->done_rows == 0) {
        p->chunk_points = p->block_rows ? p->block_rows : 1; /* small plot: one exact chunk */
        p->fixed_size = p->block_rows > 0;
    } else if (!w->opt.chunk_points && p->block_rows < p->chunk_points &&
               w->opt.flush_interval_s > 0) {
        /* A slow run had to write before its first chunk filled. Chunks that fill
         * within PARTIAL_AGE intervals are rarely rewritten half-full, and each
         * rewrite wastes file space (SWMR does not reuse the old copy's space). */
        double elapsed = ngs_now_s() - p->started;
        double per_age = (double)p->block_rows / (elapsed > 0.05 ? elapsed : 0.05) *
                         w->opt.flush_interval_s * PARTIAL_AGE;
        size_t c = CHUNK_MIN;
        while (c * 2 <= p->chunk_points && (double)(c * 2) <= per_age) c *= 2;
        while (c < p->block_rows) c *= 2; /* the rows already buffered fit one chunk */
        if (c < p->chunk_points) p->chunk_points = c;
    }
    gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_phase_change(gcpl, 32, 24);
    group = H5Gcreate2(w->file, p->group_path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (group < 0) return fail(w, NGS_ERR_HDF5, "%s: cannot create group %s", w->path, p->group_path);
    if (ngs_h5_attr_write_str(group, "plot_name", p->name) < 0 || ngs_h5_attr_write_str(group, "plotname", p->plotname) < 0 ||
        ngs_h5_attr_write_str(group, "analysis", p->analysis) < 0 || ngs_h5_attr_write_str(group, "title", p->title) < 0 ||
        ngs_h5_attr_write_str(group, "date", p->date) < 0 ||
        ngs_h5_attr_write_str(group, "flags", p->is_complex ? "complex" : "real") < 0 ||
        ngs_h5_attr_write_i64(group, "index", p->index) < 0 ||
        ngs_h5_attr_write_str(group, "scale", p->scale_index >= 0 ? p->vecs[p->scale_index].dset_name : "") < 0 ||
        plot_status_attrs(group, p, plot_ended) < 0)
        rc = fail(w, NGS_ERR_HDF5, "%s: cannot write attributes of %s", w->path, p->group_path);
    if (rc == NGS_OK && plot_ended) p->status_written = 1;
    for (int i = 0; rc == NGS_OK && i < p->nvec; i++) {
        vec_state *v = &p->vecs[i];
        hsize_t chunk = p->chunk_points, dims = p->fixed_size ? chunk : 0;
        hsize_t maxdims = p->fixed_size ? chunk : H5S_UNLIMITED;
        hid_t space = H5Screate_simple(1, &dims, &maxdims);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk);
        H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED);
        /* keep the few, small attributes compact: HDF5 1.10.8's H5Ocopy (h5copy and
         * readers' copies) crashes on dense variable-length string attributes */
        H5Pset_attr_phase_change(dcpl, 32, 24);
        int frc = v->codec == NGS_CODEC_BOUNDED ? ngs_bounded_set_filters(dcpl, &v->bp, v->elem)
                  : ngs_codec_set_filters(dcpl, v->codec == NGS_CODEC_BITROUND ? NGS_CODEC_DEFLATE : v->codec,
                                          v->codec == NGS_CODEC_ZSTD && w->opt.codec != NGS_CODEC_ZSTD
                                              ? ngs_codec_default_level(NGS_CODEC_ZSTD) : w->opt.level,
                                          v->elem);
        if (frc != NGS_OK) {
            rc = fail(w, NGS_ERR_CODEC, "cannot set up codec %s", ngs_codec_name(v->codec));
        } else {
            v->dset = H5Dcreate2(group, v->dset_name, v->is_complex ? w->complex_type : H5T_NATIVE_DOUBLE,
                                 space, H5P_DEFAULT, dcpl, w->dapl);
            if (v->dset < 0 || ngs_h5_attr_write_str(v->dset, "name", v->name) < 0 ||
                ngs_h5_attr_write_str(v->dset, "ngspice_name", v->ngspice_name) < 0 ||
                ngs_h5_attr_write_str(v->dset, "type", v->type_name) < 0 || ngs_h5_attr_write_str(v->dset, "unit", v->unit) < 0 ||
                ngs_h5_attr_write_i64(v->dset, "index", i) < 0 || ngs_h5_attr_write_i64(v->dset, "is_scale", v->is_scale) < 0 ||
                (v->codec == NGS_CODEC_BOUNDED &&
                 (ngs_h5_attr_write_str(v->dset, "lossy_codec", "bounded") < 0 ||
                  ngs_h5_attr_write_f64(v->dset, "lossy_abs_err", v->bp.abs_err) < 0 ||
                  ngs_h5_attr_write_f64(v->dset, "lossy_rel_err", v->bp.rel_err) < 0)) ||
                (v->codec == NGS_CODEC_BITROUND &&
                 (ngs_h5_attr_write_str(v->dset, "lossy_codec", "bitround") < 0 ||
                  ngs_h5_attr_write_i64(v->dset, "lossy_bits", w->bits) < 0 ||
                  ngs_h5_attr_write_f64(v->dset, "lossy_rel_err", ngs_bitround_max_rel_err(w->bits)) < 0)))
                rc = fail(w, NGS_ERR_HDF5, "%s: cannot create dataset %s/%s", w->path, p->group_path, v->dset_name);
            if (rc == NGS_OK && !p->keep_open) v->has_at = obj_at_get(v->dset, &v->at);
            vec_release(p, i);
        }
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Gclose(group);
    if (rc == NGS_OK) p->created = 1;
    return rc;
}

typedef struct {
    ngs_h5_writer *w;
    plot_state *p;
    int first, count;
} encode_batch;

/* Pool task: vector first+k into slot k (slots are per task, not per worker). */
static void encode_one(void *ctx, size_t k, int worker)
{
    encode_batch *b = ctx;
    ngs_h5_writer *w = b->w;
    vec_state *v = &b->p->vecs[b->first + (int)k];
    size_t bytes = b->p->chunk_points * v->elem;
    const void *src = b->p->block + b->p->block_offset[b->first + (int)k];
    double used = 0;
    (void)worker;
    switch (v->codec) {
    case NGS_CODEC_BOUNDED:
        /* only the valid rows: the zeroed tail of a partial chunk must not widen its range */
        w->enc_rc[k] = ngs_bounded_encode(w->bctx[k], &v->bp, v->elem, src, bytes, b->p->block_rows,
                                          w->enc[k], ngs_bounded_bound(bytes), &w->enc_size[k], &used);
        if (w->enc_rc[k] == NGS_OK && used > v->max_err) v->max_err = used;
        break;
    case NGS_CODEC_BITROUND:
        w->enc_rc[k] = ngs_bitround_encode(w->bits, w->opt.level, v->elem, src, bytes, w->enc[k],
                                           ngs_codec_bound(NGS_CODEC_DEFLATE, bytes), &w->enc_size[k],
                                           w->scratch[k]);
        break;
    default:
        w->enc_rc[k] = ngs_codec_encode(v->codec, v->codec == w->opt.codec ? w->opt.level
                                                  : ngs_codec_default_level(v->codec),
                                        v->elem, src, bytes, w->enc[k], ngs_codec_bound(v->codec, bytes),
                                        &w->enc_size[k], w->scratch[k]);
        break;
    }
}

/* Writes the current block (full or partial) as one chunk per vector. */
static int write_block_held(ngs_h5_writer *w, plot_state *p, int plot_ended, size_t rows);

static int write_block(ngs_h5_writer *w, plot_state *p, int plot_ended)
{
    size_t rows = p->block_rows;
    int rc;
    if (rows == 0 || p->block_written) return NGS_OK;
    hold(w);
    rc = write_block_held(w, p, plot_ended, rows);
    release(w);
    return rc;
}

static int write_block_held(ngs_h5_writer *w, plot_state *p, int plot_ended, size_t rows)
{
    int rc = NGS_OK;
    hsize_t extent, offset;
    if (!p->created && (rc = create_plot_objects(w, p, plot_ended)) != NGS_OK) return rc;
    /* the last block of a plot is written in whichever mode the file is in: going to
     * SWMR and back (reopening the file and every dataset) would only delay the end */
    if (!plot_ended && (rc = enter_swmr_mode(w)) != NGS_OK) return rc;
    if ((rc = ensure_slots(w, p)) != NGS_OK) return fail(w, rc, "out of memory for the encoders");
    extent = p->done_rows + rows;
    offset = p->done_rows;
    for (int i = 0; i < p->nvec; i++)
        if (rows < p->chunk_points) /* zero the tail: deterministic, compresses to nothing */
            memset(p->block + p->block_offset[i] + rows * p->vecs[i].elem, 0,
                   (p->chunk_points - rows) * p->vecs[i].elem);
    /* encode one vector per worker in parallel, then write them in order */
    for (int first = 0; first < p->nvec && rc == NGS_OK; first += w->nslots) {
        encode_batch b = {w, p, first, p->nvec - first < w->nslots ? p->nvec - first : w->nslots};
        int depth = w->lock_depth;
        if (w->opt.shared_lock && depth) { /* other writers may use HDF5 meanwhile */
            w->lock_depth = 0;
            pthread_mutex_unlock(w->opt.shared_lock);
        }
        ngs_pool_run(w->pool, (size_t)b.count, encode_one, &b);
        if (w->opt.shared_lock && depth) {
            pthread_mutex_lock(w->opt.shared_lock);
            w->lock_depth = depth;
        }
        for (int k = 0; k < b.count && rc == NGS_OK; k++) {
            vec_state *v = &p->vecs[first + k];
            if (w->enc_rc[k] != NGS_OK)
                rc = fail(w, NGS_ERR_CODEC, "cannot compress a chunk of %s", v->name);
            else if ((rc = vec_open(w, p, first + k)) != NGS_OK)
                break;
            else if (!p->fixed_size && H5Dset_extent(v->dset, &extent) < 0) /* fixed: its size already */
                rc = fail(w, NGS_ERR_HDF5, "%s: cannot extend %s", w->path, v->dset_name);
            else {
                herr_t wrc;
                H5E_BEGIN_TRY { /* its error stack says less than the message */
                    wrc = H5Dwrite_chunk(v->dset, H5P_DEFAULT, 0, &offset, w->enc_size[k], w->enc[k]);
                } H5E_END_TRY;
                if (wrc < 0) rc = fail_write(w, "%s: cannot write a chunk of %s (disk full?)", w->path, v->name);
            }
            vec_release(p, first + k);
        }
    }
    if (rc != NGS_OK) return rc;
    if (rows == p->chunk_points) {
        p->done_rows += rows;
        p->block_rows = 0;
        p->block_written = 0;
        p->chunks_done++;
        p->partial_gap = w->opt.flush_interval_s * PARTIAL_AGE;
    } else {
        p->block_written = 1;
        p->last_partial = ngs_now_s();
    }
    return NGS_OK;
}

int ngs_h5_rows(ngs_h5_writer *w, const double *rows, size_t nrows)
{
    plot_state *p = w->plot;
    size_t r = 0;
    if (!p) return fail(w, NGS_ERR_STATE, "rows arrived outside a plot");
    while (r < nrows) {
        size_t take = p->chunk_points - p->block_rows;
        if (take > nrows - r) take = nrows - r;
        /* transpose: each vector's column is written sequentially */
        for (int i = 0; i < p->nvec; i++) {
            const vec_state *v = &p->vecs[i];
            const double *src = rows + r * (size_t)p->row_doubles + v->column;
            double *dst = (double *)(p->block + p->block_offset[i]) + p->block_rows * (v->elem / 8);
            if (v->elem == 8) {
                for (size_t k = 0; k < take; k++) dst[k] = src[k * (size_t)p->row_doubles];
            } else {
                for (size_t k = 0; k < take; k++) {
                    dst[2 * k] = src[k * (size_t)p->row_doubles];
                    dst[2 * k + 1] = src[k * (size_t)p->row_doubles + 1];
                }
            }
        }
        if (p->block_rows == 0) p->block_started = ngs_now_s();
        p->block_rows += take;
        p->block_written = 0;
        r += take;
        if (p->block_rows == p->chunk_points) {
            int rc = write_block(w, p, 0);
            if (rc != NGS_OK) return rc;
        }
    }
    return NGS_OK;
}

static int flush_file(ngs_h5_writer *w)
{
    herr_t frc = 0;
    w->last_flush = ngs_now_s();
    if (w->frozen) return NGS_ERR_IO;
    if (owns_file(w)) H5E_BEGIN_TRY { frc = H5Fflush(w->file, H5F_SCOPE_LOCAL); } H5E_END_TRY;
    return frc < 0 ? fail_write(w, "%s: flush failed (disk full?)", w->path) : NGS_OK;
}

static int plot_end_held(ngs_h5_writer *w, int status, const char *message)
{
    plot_state *p = w->plot;
    int rc = NGS_OK, r2, recant;
    hid_t group;
    if (!p) return fail(w, NGS_ERR_STATE, "no plot is open");
    p->end_status = status;
    p->end_message = message;
    if (p->block_rows > 0 || !p->created) {
        if (!p->created && p->block_rows == 0) rc = create_plot_objects(w, p, 1); /* empty plot */
        else rc = write_block(w, p, 1);
    }
    r2 = enter_structure_mode(w);
    if (rc == NGS_OK) rc = r2;
    /* written as ended, but its data did not all make it: say so instead */
    recant = rc != NGS_OK && p->status_written && r2 == NGS_OK;
    if (recant) {
        p->end_status = rc;
        p->end_message = w->err;
    }
    if (rc == NGS_OK ? !p->status_written : recant) {
        group = open_group(w->file, p->group_path);
        if ((group < 0 || plot_status_attrs(group, p, 1) < 0) && rc == NGS_OK)
            rc = fail(w, NGS_ERR_HDF5, "%s: cannot write the status of %s", w->path, p->group_path);
        if (group >= 0) H5Gclose(group);
    }
    if (rc == NGS_OK) {
        for (int i = 0; rc == NGS_OK && p->created && i < p->nvec; i++) {
            if (p->vecs[i].codec != NGS_CODEC_BOUNDED) continue;
            if ((rc = vec_open(w, p, i)) == NGS_OK &&
                ngs_h5_attr_write_f64(p->vecs[i].dset, "lossy_max_abs_err", p->vecs[i].max_err) < 0)
                rc = fail(w, NGS_ERR_HDF5, "%s: cannot write the error bound of %s", w->path,
                          p->vecs[i].name);
            vec_release(p, i);
        }
    }
    plot_free(p);
    w->plot = NULL;
    r2 = flush_file(w);
    return rc != NGS_OK ? rc : r2;
}

static int flush_held(ngs_h5_writer *w)
{
    int rc;
    if (w->plot && w->plot->block_rows > 0 && (rc = write_block(w, w->plot, 0)) != NGS_OK) return rc;
    return flush_file(w);
}

/* Called often. Every flush interval the file is flushed: complete chunks are on
 * disk within an interval. A partial chunk costs file space each time it is
 * rewritten (SWMR never reuses the old copy), so it is written only once its
 * oldest point has waited PARTIAL_AGE intervals, then with a gap that doubles (up
 * to 64 times that) while it stays partial: a slow run rewrites a chunk a few
 * times, a steady one (chunks sized from its data rate) almost never. */
static int tick_held(ngs_h5_writer *w, double now)
{
    plot_state *p = w->plot;
    double interval = w->opt.flush_interval_s;
    int rc;
    if (p && p->block_rows > 0 && !p->block_written &&
        now - p->block_started >= PARTIAL_AGE * interval &&
        (!p->created || now - p->last_partial >= p->partial_gap)) {
        if ((rc = write_block(w, p, 0)) != NGS_OK) return rc;
        if (p->block_written && p->partial_gap < 64 * PARTIAL_AGE * interval) p->partial_gap *= 2;
    }
    return flush_file(w);
}

/* ------------------------------------------------- public, under the lock -- */

int ngs_h5_open(ngs_h5_writer **out, const char *path, const ngs_h5_options *options,
                char *err, size_t errlen)
{
    pthread_mutex_t *m = options && options->shared_file ? options->shared_lock : NULL;
    int rc;
    if (m) pthread_mutex_lock(m);
    rc = open_writer(out, path, options, err, errlen);
    if (rc == NGS_OK && *out) (*out)->lock_depth = 0;
    if (m) pthread_mutex_unlock(m);
    return rc;
}

/* Ends the writer's holds too: the mutex is locked once however deep the holds
 * nest, and no release can follow once the writer is gone. */
int ngs_h5_close(ngs_h5_writer *w)
{
    pthread_mutex_t *m;
    int rc;
    if (!w) return NGS_OK;
    hold(w);
    m = w->opt.shared_lock;
    rc = close_held(w); /* frees w */
    if (m) pthread_mutex_unlock(m);
    return rc;
}

#define HELD(call) do { int rc_; hold(w); rc_ = (call); release(w); return rc_; } while (0)

int ngs_h5_run_begin(ngs_h5_writer *w, const char *group) { HELD(run_begin_held(w, group)); }
int ngs_h5_run_attr_str(ngs_h5_writer *w, const char *key, const char *value) { HELD(run_attr_str_held(w, key, value)); }
int ngs_h5_run_attr_f64(ngs_h5_writer *w, const char *key, double value) { HELD(run_attr_f64_held(w, key, value)); }
int ngs_h5_run_attr_i64(ngs_h5_writer *w, const char *key, int64_t value) { HELD(run_attr_i64_held(w, key, value)); }
int ngs_h5_run_end(ngs_h5_writer *w, int status, const char *message) { HELD(run_end_held(w, status, message)); }
int ngs_h5_plot_end(ngs_h5_writer *w, int status, const char *message) { HELD(plot_end_held(w, status, message)); }
int ngs_h5_flush(ngs_h5_writer *w) { HELD(flush_held(w)); }
int ngs_h5_tick(ngs_h5_writer *w)
{
    double now = ngs_now_s();
    /* called at every batch of rows: the usual answer, not yet, takes no lock */
    if (w->opt.flush_interval_s <= 0 || now - w->last_flush < w->opt.flush_interval_s) return NGS_OK;
    HELD(tick_held(w, now));
}

void ngs_h5_hold(ngs_h5_writer *w) { hold(w); }
void ngs_h5_release(ngs_h5_writer *w) { release(w); }
