/*
 * record.c - recordings of a run's events (format in record.h).
 *
 * Writing streams every event straight into ZSTD_compressStream2 (row data is fed
 * from the event's own memory, never copied), and the compressed bytes go to the
 * file through one fixed buffer while a SHA-256 runs over them: memory stays
 * bounded whatever the run length. Reading verifies that SHA-256 in a first pass
 * that does not decompress, so a truncated or damaged file is refused before any
 * event reaches a hook; the second pass decompresses and delivers.
 *
 * Doubles are stored as their bytes (little-endian hosts only, checked at compile
 * time), which makes a replay bit-exact, NaN payloads and -0.0 included.
 */
#include "cache/record.h"
#include "hooks/dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "recordings store doubles as little-endian bytes: port record.c before using a big-endian host"
#endif

#define HEADER_BYTES 16
#define FOOTER_BYTES 64
#define HEAD_MAGIC "NGSCREC1"
#define FOOT_MAGIC "NGSCEND1"
#define FORMAT_VERSION 1
#define NULL_STRING 0xffffffffu
#define REPLAY_BATCH_BYTES ((size_t)1 << 20)
#define MAX_VECTORS (1 << 24)

enum { T_BEGIN = 'B', T_ROWS = 'R', T_END = 'E', T_MESSAGE = 'M', T_EOS = 'Z' };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void put_u32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32le(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int ngs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* ------------------------------------------------------------------ writer -- */

typedef struct {
    const ngs_plot_desc *ptr;
    uint32_t id;
    int row_doubles;
} open_plot;

struct ngs_recorder {
    int fd;
    char *path, *tmp;
    ZSTD_CCtx *cctx;
    unsigned char *obuf;
    size_t ocap, ofill;
    unsigned char *stage; /* one record's header and strings */
    size_t scap, sfill;
    EVP_MD_CTX *md;
    uint64_t body_bytes, raw_bytes, events;
    open_plot *plots;
    size_t nplots, capplots;
    uint32_t next_id;
    int status;
    char err[256];
};

static int rec_fail(ngs_recorder *r, int status, const char *fmt, ...)
{
    va_list ap;
    if (r->status != NGS_OK) return r->status;
    r->status = status;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return status;
}

/* Compressed bytes to the file (and into the checksum). */
static int rec_flush(ngs_recorder *r)
{
    if (!r->ofill) return NGS_OK;
    if (ngs_write_all(r->fd, r->obuf, r->ofill) != 0)
        return rec_fail(r, NGS_ERR_IO, "%s: %s", r->tmp, strerror(errno));
    if (EVP_DigestUpdate(r->md, r->obuf, r->ofill) != 1) return rec_fail(r, NGS_ERR_NOMEM, "SHA-256 failed");
    r->body_bytes += r->ofill;
    r->ofill = 0;
    return NGS_OK;
}

static int rec_compress(ngs_recorder *r, const void *p, size_t n, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {r->obuf, r->ocap, r->ofill};
        size_t left = ZSTD_compressStream2(r->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) return rec_fail(r, NGS_ERR_CODEC, "zstd: %s", ZSTD_getErrorName(left));
        r->ofill = out.pos;
        if ((r->ofill == r->ocap || (mode == ZSTD_e_end && left)) && rec_flush(r) != NGS_OK) return r->status;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
    }
    r->raw_bytes += n;
    return NGS_OK;
}

static int stage_reserve(ngs_recorder *r, size_t n)
{
    if (r->sfill + n > r->scap) {
        size_t cap = r->scap ? r->scap : 1024;
        unsigned char *p;
        while (cap < r->sfill + n) cap *= 2;
        p = realloc(r->stage, cap);
        if (!p) return rec_fail(r, NGS_ERR_NOMEM, "out of memory");
        r->stage = p;
        r->scap = cap;
    }
    return NGS_OK;
}

static void st_u8(ngs_recorder *r, unsigned v)
{
    if (stage_reserve(r, 1) == NGS_OK) r->stage[r->sfill++] = (unsigned char)v;
}
static void st_u32(ngs_recorder *r, uint32_t v)
{
    if (stage_reserve(r, 4) == NGS_OK) put_u32le(r->stage + r->sfill, v), r->sfill += 4;
}
static void st_u64(ngs_recorder *r, uint64_t v)
{
    if (stage_reserve(r, 8) == NGS_OK) put_u64le(r->stage + r->sfill, v), r->sfill += 8;
}
static void st_str(ngs_recorder *r, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (s && n >= NULL_STRING) { rec_fail(r, NGS_ERR_ARG, "string too long to record"); return; }
    st_u32(r, s ? (uint32_t)n : NULL_STRING);
    if (s && stage_reserve(r, n) == NGS_OK) memcpy(r->stage + r->sfill, s, n), r->sfill += n;
}

static int stage_emit(ngs_recorder *r)
{
    int rc = r->status == NGS_OK ? rec_compress(r, r->stage, r->sfill, ZSTD_e_continue) : r->status;
    r->sfill = 0;
    return rc;
}

static open_plot *find_plot(ngs_recorder *r, const ngs_plot_desc *p)
{
    for (size_t i = r->nplots; i-- > 0;)
        if (r->plots[i].ptr == p) return &r->plots[i];
    return NULL;
}

/* A replay rebuilds the plot with ngs_plot_desc_new: its layout must be the one
 * that function computes, or the rows would be read with other columns. */
static int check_layout(const ngs_plot_desc *p)
{
    int col = 0, scale = -1, cplx = 0;
    if (p->nvectors < 0 || p->nvectors > MAX_VECTORS || (p->nvectors && !p->vectors)) return 0;
    for (int i = 0; i < p->nvectors; i++) {
        if (p->vectors[i].column != col) return 0;
        col += p->vectors[i].is_complex ? 2 : 1;
        if (p->vectors[i].is_complex) cplx = 1;
        if (p->vectors[i].is_scale && scale < 0) scale = i;
    }
    return col == p->row_doubles && scale == p->scale_index && !cplx == !p->is_complex;
}

static int rec_begin(ngs_recorder *r, const ngs_plot_desc *p)
{
    open_plot *op;
    if (!p || !check_layout(p)) return rec_fail(r, NGS_ERR_ARG, "plot %s: inconsistent vector layout", p && p->name ? p->name : "?");
    op = find_plot(r, p);
    if (!op) {
        if (r->nplots == r->capplots) {
            size_t cap = r->capplots ? 2 * r->capplots : 4;
            open_plot *np = realloc(r->plots, cap * sizeof *np);
            if (!np) return rec_fail(r, NGS_ERR_NOMEM, "out of memory");
            r->plots = np;
            r->capplots = cap;
        }
        op = &r->plots[r->nplots++];
    }
    op->ptr = p;
    op->id = r->next_id++;
    op->row_doubles = p->row_doubles;
    st_u8(r, T_BEGIN);
    st_u32(r, op->id);
    st_u32(r, (uint32_t)p->index);
    st_str(r, p->name);
    st_str(r, p->plotname);
    st_str(r, p->analysis);
    st_str(r, p->title);
    st_str(r, p->date);
    st_u32(r, (uint32_t)p->nvectors);
    st_u32(r, (uint32_t)p->row_doubles);
    for (int i = 0; i < p->nvectors; i++) {
        const ngs_vector_desc *v = &p->vectors[i];
        st_str(r, v->name);
        st_str(r, v->ngspice_name);
        st_u32(r, (uint32_t)v->type);
        st_str(r, v->type_name);
        st_str(r, v->unit);
        st_u8(r, (v->is_complex ? 1u : 0u) | (v->is_scale ? 2u : 0u));
    }
    return stage_emit(r);
}

static int rec_rows(ngs_recorder *r, const ngs_event *ev)
{
    open_plot *op = find_plot(r, ev->plot);
    size_t bytes;
    if (!op) return rec_fail(r, NGS_ERR_ARG, "rows for a plot that was not begun");
    if (ev->nrows && op->row_doubles && !ev->rows) return rec_fail(r, NGS_ERR_ARG, "rows without data");
    if (op->row_doubles && ev->nrows > SIZE_MAX / 8 / (size_t)op->row_doubles)
        return rec_fail(r, NGS_ERR_ARG, "row batch too large");
    bytes = ev->nrows * (size_t)op->row_doubles * sizeof(double);
    st_u8(r, T_ROWS);
    st_u32(r, op->id);
    st_u64(r, ev->first_row);
    st_u64(r, ev->nrows);
    if (stage_emit(r) != NGS_OK) return r->status;
    return bytes ? rec_compress(r, ev->rows, bytes, ZSTD_e_continue) : NGS_OK;
}

static int rec_end(ngs_recorder *r, const ngs_event *ev)
{
    open_plot *op = find_plot(r, ev->plot);
    if (!op) return rec_fail(r, NGS_ERR_ARG, "end of a plot that was not begun");
    st_u8(r, T_END);
    st_u32(r, op->id);
    st_u32(r, (uint32_t)ev->status);
    st_u64(r, ev->total_rows);
    st_str(r, ev->text);
    *op = r->plots[--r->nplots]; /* the descriptor may be freed and its address reused */
    return stage_emit(r);
}

int ngs_recorder_event(ngs_recorder *r, const ngs_event *ev)
{
    int rc;
    if (!r || !ev) return NGS_ERR_ARG;
    if (r->status != NGS_OK) return r->status;
    switch (ev->kind) {
    case NGS_EV_PLOT_BEGIN: rc = rec_begin(r, ev->plot); break;
    case NGS_EV_ROWS: rc = rec_rows(r, ev); break;
    case NGS_EV_PLOT_END: rc = rec_end(r, ev); break;
    case NGS_EV_MESSAGE:
        st_u8(r, T_MESSAGE);
        st_u8(r, ev->is_error ? 1 : 0);
        st_str(r, ev->text);
        rc = stage_emit(r);
        break;
    default: return NGS_OK; /* PROGRESS: not part of a result */
    }
    if (rc == NGS_OK) r->events++;
    return rc;
}

int ngs_recorder_sink(const ngs_event *event, void *user)
{
    (void)ngs_recorder_event(user, event);
    return 0;
}

static void rec_free(ngs_recorder *r)
{
    if (r->fd >= 0) close(r->fd);
    ZSTD_freeCCtx(r->cctx);
    EVP_MD_CTX_free(r->md);
    free(r->obuf);
    free(r->stage);
    free(r->plots);
    free(r->path);
    free(r->tmp);
    free(r);
}

int ngs_recorder_open(ngs_recorder **out, const char *path, int level, char *err, size_t errlen)
{
    ngs_recorder *r;
    unsigned char head[HEADER_BYTES];
    size_t plen;
    if (err && errlen) err[0] = '\0';
    if (!out || !path || !path[0]) { set_err(err, errlen, "no recording path"); return NGS_ERR_ARG; }
    *out = NULL;
    if (level < 0 || level > ZSTD_maxCLevel()) {
        set_err(err, errlen, "zstd level %d out of range 0..%d", level, ZSTD_maxCLevel());
        return NGS_ERR_ARG;
    }
    if (!(r = calloc(1, sizeof *r))) return NGS_ERR_NOMEM;
    r->fd = -1;
    plen = strlen(path);
    r->path = strdup(path);
    r->tmp = malloc(plen + 16);
    r->ocap = ZSTD_CStreamOutSize();
    r->obuf = malloc(r->ocap);
    r->cctx = ZSTD_createCCtx();
    r->md = EVP_MD_CTX_new();
    if (!r->path || !r->tmp || !r->obuf || !r->cctx || !r->md ||
        EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) != 1) {
        rec_free(r);
        return NGS_ERR_NOMEM;
    }
    if (ZSTD_isError(ZSTD_CCtx_setParameter(r->cctx, ZSTD_c_compressionLevel, level > 0 ? level : 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(r->cctx, ZSTD_c_checksumFlag, 1))) {
        set_err(err, errlen, "zstd: bad compression level %d", level);
        rec_free(r);
        return NGS_ERR_CODEC;
    }
    snprintf(r->tmp, plen + 16, "%s.tmp-XXXXXX", path);
    r->fd = mkostemp(r->tmp, O_CLOEXEC);
    if (r->fd < 0) {
        set_err(err, errlen, "%s: %s", r->tmp, strerror(errno));
        rec_free(r);
        return NGS_ERR_IO;
    }
    (void)fchmod(r->fd, 0644);
    memcpy(head, HEAD_MAGIC, 8);
    put_u32le(head + 8, FORMAT_VERSION);
    put_u32le(head + 12, 0);
    if (ngs_write_all(r->fd, head, sizeof head) != 0 || EVP_DigestUpdate(r->md, head, sizeof head) != 1) {
        set_err(err, errlen, "%s: %s", r->tmp, strerror(errno));
        ngs_recorder_abort(r);
        return NGS_ERR_IO;
    }
    *out = r;
    return NGS_OK;
}

void ngs_recorder_abort(ngs_recorder *r)
{
    if (!r) return;
    if (r->fd >= 0) unlink(r->tmp);
    rec_free(r);
}

int ngs_recorder_finish(ngs_recorder *r, char *err, size_t errlen)
{
    unsigned char foot[FOOTER_BYTES];
    unsigned int mdlen = 0;
    int rc;
    if (err && errlen) err[0] = '\0';
    if (!r) return NGS_ERR_ARG;
    st_u8(r, T_EOS);
    st_u64(r, r->events);
    if (stage_emit(r) == NGS_OK && rec_compress(r, NULL, 0, ZSTD_e_end) == NGS_OK) rec_flush(r);
    if (r->status == NGS_OK) {
        memcpy(foot, FOOT_MAGIC, 8);
        put_u64le(foot + 8, r->body_bytes);
        put_u64le(foot + 16, r->raw_bytes);
        put_u64le(foot + 24, r->events);
        if (EVP_DigestUpdate(r->md, foot, 32) != 1 || EVP_DigestFinal_ex(r->md, foot + 32, &mdlen) != 1)
            rec_fail(r, NGS_ERR_NOMEM, "SHA-256 failed");
        else if (ngs_write_all(r->fd, foot, sizeof foot) != 0)
            rec_fail(r, NGS_ERR_IO, "%s: %s", r->tmp, strerror(errno));
    }
    if (r->status == NGS_OK) {
        int fd = r->fd;
        r->fd = -1;
        if (close(fd) != 0) rec_fail(r, NGS_ERR_IO, "%s: %s", r->tmp, strerror(errno));
        else if (rename(r->tmp, r->path) != 0) rec_fail(r, NGS_ERR_IO, "%s: %s", r->path, strerror(errno));
        if (r->status != NGS_OK) unlink(r->tmp);
    }
    rc = r->status;
    if (rc != NGS_OK) set_err(err, errlen, "%s", r->err);
    if (rc != NGS_OK && r->fd >= 0) unlink(r->tmp);
    rec_free(r);
    return rc;
}

/* ------------------------------------------------------------------ verify -- */

int ngs_recording_peek_fd(int fd, ngs_recording_info *info)
{
    struct stat st;
    unsigned char head[HEADER_BYTES], foot[FOOTER_BYTES];
    uint64_t size;
    if (fstat(fd, &st) != 0) return NGS_ERR_IO;
    size = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || size < HEADER_BYTES + FOOTER_BYTES) return NGS_ERR_FORMAT;
    if (pread_all(fd, head, sizeof head, 0) != 0 || pread_all(fd, foot, sizeof foot, (off_t)(size - FOOTER_BYTES)) != 0)
        return NGS_ERR_IO;
    if (memcmp(head, HEAD_MAGIC, 8) != 0 || get_u32le(head + 8) != FORMAT_VERSION ||
        memcmp(foot, FOOT_MAGIC, 8) != 0 || get_u64le(foot + 8) != size - HEADER_BYTES - FOOTER_BYTES)
        return NGS_ERR_FORMAT;
    if (info) {
        info->file_bytes = size;
        info->raw_bytes = get_u64le(foot + 16);
        info->events = get_u64le(foot + 24);
        memcpy(info->sha256, foot + 32, 32);
    }
    return NGS_OK;
}

int ngs_recording_verify_fd(int fd, ngs_recording_info *info, char *err, size_t errlen)
{
    struct stat st;
    unsigned char head[HEADER_BYTES], foot[FOOTER_BYTES], md[EVP_MAX_MD_SIZE];
    unsigned char *buf;
    const size_t bufsize = (size_t)1 << 20;
    EVP_MD_CTX *ctx;
    unsigned int mdlen = 0;
    uint64_t size, done = 0;
    int rc = NGS_OK;

    if (err && errlen) err[0] = '\0';
    if (fstat(fd, &st) != 0) { set_err(err, errlen, "%s", strerror(errno)); return NGS_ERR_IO; }
    size = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || size < HEADER_BYTES + FOOTER_BYTES) {
        set_err(err, errlen, "not a recording (%llu bytes: truncated?)", (unsigned long long)size);
        return NGS_ERR_FORMAT;
    }
    if (pread_all(fd, head, sizeof head, 0) != 0 || pread_all(fd, foot, sizeof foot, (off_t)(size - FOOTER_BYTES)) != 0) {
        set_err(err, errlen, "read failed: %s", strerror(errno));
        return NGS_ERR_IO;
    }
    if (memcmp(head, HEAD_MAGIC, 8) != 0 || get_u32le(head + 8) != FORMAT_VERSION) {
        set_err(err, errlen, "not a recording, or an unsupported version");
        return NGS_ERR_FORMAT;
    }
    if (memcmp(foot, FOOT_MAGIC, 8) != 0 || get_u64le(foot + 8) != size - HEADER_BYTES - FOOTER_BYTES) {
        set_err(err, errlen, "recording truncated or damaged (no valid footer)");
        return NGS_ERR_FORMAT;
    }
    if (!(buf = malloc(bufsize)) || !(ctx = EVP_MD_CTX_new())) { free(buf); return NGS_ERR_NOMEM; }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) rc = NGS_ERR_NOMEM;
    while (rc == NGS_OK && done < size - 32) {
        size_t n = size - 32 - done < bufsize ? (size_t)(size - 32 - done) : bufsize;
        if (pread_all(fd, buf, n, (off_t)done) != 0) {
            set_err(err, errlen, "read failed: %s", strerror(errno));
            rc = NGS_ERR_IO;
        } else if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            rc = NGS_ERR_NOMEM;
        }
        done += n;
    }
    if (rc == NGS_OK && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) rc = NGS_ERR_NOMEM;
    if (rc == NGS_OK && (mdlen != 32 || memcmp(md, foot + 32, 32) != 0)) {
        set_err(err, errlen, "recording checksum mismatch (corrupt)");
        rc = NGS_ERR_FORMAT;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (rc == NGS_OK && info) {
        info->file_bytes = size;
        info->raw_bytes = get_u64le(foot + 16);
        info->events = get_u64le(foot + 24);
        memcpy(info->sha256, foot + 32, 32);
    }
    return rc;
}

int ngs_recording_verify(const char *path, ngs_recording_info *info, char *err, size_t errlen)
{
    int fd, rc;
    if (!path) return NGS_ERR_ARG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return NGS_ERR_IO;
    }
    rc = ngs_recording_verify_fd(fd, info, err, errlen);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ replay -- */

typedef struct {
    int fd;
    off_t off;             /* next compressed byte to read */
    uint64_t in_left;      /* compressed bytes not read yet */
    uint64_t raw_left;     /* decompressed bytes not consumed yet (from the footer) */
    ZSTD_DCtx *dctx;
    unsigned char *in, *out;
    size_t incap, outcap, opos, olen;
    ZSTD_inBuffer inb;
    int frame_done;
    int status;
    char *err;
    size_t errlen;
} reader;

static int rd_bad(reader *r, int status, const char *msg)
{
    if (r->status == NGS_OK) {
        r->status = status;
        set_err(r->err, r->errlen, "%s", msg);
    }
    return r->status;
}

/* Makes decompressed bytes available; 0 at the end of the frame. */
static int rd_fill(reader *r)
{
    while (r->opos == r->olen) {
        ZSTD_outBuffer ob = {r->out, r->outcap, 0};
        size_t ret;
        if (r->frame_done) return 0;
        if (r->inb.pos == r->inb.size) {
            size_t n = r->in_left < r->incap ? (size_t)r->in_left : r->incap;
            if (!n) return rd_bad(r, NGS_ERR_FORMAT, "recording body ends early"), -1;
            if (pread_all(r->fd, r->in, n, r->off) != 0) return rd_bad(r, NGS_ERR_IO, "read failed"), -1;
            r->off += (off_t)n;
            r->in_left -= n;
            r->inb.src = r->in;
            r->inb.size = n;
            r->inb.pos = 0;
        }
        ret = ZSTD_decompressStream(r->dctx, &ob, &r->inb);
        if (ZSTD_isError(ret)) return rd_bad(r, NGS_ERR_FORMAT, ZSTD_getErrorName(ret)), -1;
        r->opos = 0;
        r->olen = ob.pos;
        if (ret == 0) r->frame_done = 1;
    }
    return 1;
}

static int rd_read(reader *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    if (r->status != NGS_OK) return r->status;
    if (n > r->raw_left) return rd_bad(r, NGS_ERR_FORMAT, "record runs past the end of the recording");
    while (n) {
        size_t k;
        int f = rd_fill(r);
        if (f < 0) return r->status;
        if (f == 0) return rd_bad(r, NGS_ERR_FORMAT, "recording ends inside a record");
        k = r->olen - r->opos < n ? r->olen - r->opos : n;
        memcpy(d, r->out + r->opos, k);
        r->opos += k;
        d += k;
        n -= k;
        r->raw_left -= k;
    }
    return NGS_OK;
}

static uint32_t rd_u32(reader *r)
{
    unsigned char b[4] = {0};
    rd_read(r, b, 4);
    return get_u32le(b);
}
static uint64_t rd_u64(reader *r)
{
    unsigned char b[8] = {0};
    rd_read(r, b, 8);
    return get_u64le(b);
}
static unsigned rd_u8(reader *r)
{
    unsigned char b = 0;
    rd_read(r, &b, 1);
    return b;
}

/* A string, or NULL for a recorded NULL (and on failure, r->status says so). */
static char *rd_str(reader *r, int *is_null)
{
    uint32_t n = rd_u32(r);
    char *s;
    *is_null = 0;
    if (r->status != NGS_OK) return NULL;
    if (n == NULL_STRING) { *is_null = 1; return NULL; }
    if (n > r->raw_left) { rd_bad(r, NGS_ERR_FORMAT, "string runs past the end of the recording"); return NULL; }
    if (!(s = malloc((size_t)n + 1))) { rd_bad(r, NGS_ERR_NOMEM, "out of memory"); return NULL; }
    if (rd_read(r, s, n) != NGS_OK) { free(s); return NULL; }
    s[n] = '\0';
    return s;
}

typedef struct {
    ngs_plot_desc **plots; /* by recorded id */
    size_t nplots;
    double *batch;
    size_t batch_cap; /* doubles */
} replay_state;

static ngs_plot_desc *get_plot(reader *r, replay_state *s, uint32_t id)
{
    if (id >= s->nplots || !s->plots[id]) { rd_bad(r, NGS_ERR_FORMAT, "record for an unknown plot"); return NULL; }
    return s->plots[id];
}

static int deliver(reader *r, ngs_hook_fn fn, void *user, const ngs_event *ev)
{
    if (fn(ev, user) != 0) return rd_bad(r, NGS_ERR_INTERRUPTED, "stopped by the hook");
    return NGS_OK;
}

static int replay_begin(reader *r, replay_state *s, ngs_hook_fn fn, void *user)
{
    uint32_t id = rd_u32(r), index = rd_u32(r);
    char *str[5] = {0};
    ngs_vector_desc *v = NULL;
    char **vstr = NULL;
    uint32_t nvec, rowd;
    ngs_plot_desc *p = NULL;
    ngs_event ev;
    int null;
    for (int i = 0; i < 5; i++) str[i] = rd_str(r, &null);
    nvec = rd_u32(r);
    rowd = rd_u32(r);
    if (r->status == NGS_OK && (nvec > MAX_VECTORS || (uint64_t)nvec * 8 > r->raw_left + 8))
        rd_bad(r, NGS_ERR_FORMAT, "bad vector count");
    if (r->status == NGS_OK && id > s->nplots + 1024) rd_bad(r, NGS_ERR_FORMAT, "bad plot id");
    if (r->status == NGS_OK) {
        v = calloc(nvec ? nvec : 1, sizeof *v);
        vstr = calloc(4 * (size_t)(nvec ? nvec : 1), sizeof *vstr);
        if (!v || !vstr) rd_bad(r, NGS_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; r->status == NGS_OK && i < nvec; i++) {
        unsigned flags;
        vstr[4 * i] = rd_str(r, &null);
        vstr[4 * i + 1] = rd_str(r, &null);
        v[i].type = (int)rd_u32(r);
        vstr[4 * i + 2] = rd_str(r, &null);
        vstr[4 * i + 3] = rd_str(r, &null);
        flags = rd_u8(r);
        v[i].name = vstr[4 * i];
        v[i].ngspice_name = vstr[4 * i + 1];
        v[i].type_name = vstr[4 * i + 2];
        v[i].unit = vstr[4 * i + 3];
        v[i].is_complex = (flags & 1) != 0;
        v[i].is_scale = (flags & 2) != 0;
    }
    if (r->status == NGS_OK) {
        p = ngs_plot_desc_new(str[0], str[1], str[2], str[3], str[4], (int)index, v, (int)nvec);
        if (!p) rd_bad(r, NGS_ERR_NOMEM, "out of memory");
        else if ((uint32_t)p->row_doubles != rowd) rd_bad(r, NGS_ERR_FORMAT, "plot layout differs from the recorded one");
    }
    if (r->status == NGS_OK && id >= s->nplots) {
        size_t n = (size_t)id + 1;
        ngs_plot_desc **np = realloc(s->plots, n * sizeof *np);
        if (!np) rd_bad(r, NGS_ERR_NOMEM, "out of memory");
        else {
            for (size_t i = s->nplots; i < n; i++) np[i] = NULL;
            s->plots = np;
            s->nplots = n;
        }
    }
    if (r->status == NGS_OK) {
        ngs_plot_desc_free(s->plots[id]);
        s->plots[id] = p;
        p = NULL;
        memset(&ev, 0, sizeof ev);
        ev.kind = NGS_EV_PLOT_BEGIN;
        ev.plot = s->plots[id];
        deliver(r, fn, user, &ev);
    }
    ngs_plot_desc_free(p);
    for (int i = 0; i < 5; i++) free(str[i]);
    for (size_t i = 0; vstr && i < 4 * (size_t)nvec; i++) free(vstr[i]);
    free(vstr);
    free(v);
    return r->status;
}

static int replay_rows(reader *r, replay_state *s, ngs_hook_fn fn, void *user)
{
    uint32_t id = rd_u32(r);
    uint64_t first = rd_u64(r), nrows = rd_u64(r), done = 0;
    ngs_plot_desc *p;
    size_t rowd, per;
    ngs_event ev;
    if (r->status != NGS_OK || !(p = get_plot(r, s, id))) return r->status;
    rowd = (size_t)p->row_doubles;
    if (rowd && nrows > r->raw_left / 8 / rowd) return rd_bad(r, NGS_ERR_FORMAT, "row count runs past the end");
    per = rowd ? REPLAY_BATCH_BYTES / (rowd * 8) : (size_t)nrows;
    if (per == 0) per = 1;
    if (rowd && s->batch_cap < per * rowd) {
        double *b = realloc(s->batch, per * rowd * sizeof *b);
        if (!b) return rd_bad(r, NGS_ERR_NOMEM, "out of memory");
        s->batch = b;
        s->batch_cap = per * rowd;
    }
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_ROWS;
    ev.plot = p;
    do {
        size_t n = nrows - done < per ? (size_t)(nrows - done) : per;
        if (rowd && rd_read(r, s->batch, n * rowd * sizeof(double)) != NGS_OK) return r->status;
        ev.rows = rowd ? s->batch : NULL;
        ev.nrows = n;
        ev.first_row = first + done;
        if (n && deliver(r, fn, user, &ev) != NGS_OK) return r->status;
        done += n;
    } while (done < nrows);
    return NGS_OK;
}

static int replay_end(reader *r, replay_state *s, ngs_hook_fn fn, void *user)
{
    uint32_t id = rd_u32(r);
    int status = (int)rd_u32(r), null;
    uint64_t total = rd_u64(r);
    char *text = rd_str(r, &null);
    ngs_plot_desc *p;
    ngs_event ev;
    if (r->status == NGS_OK && (p = get_plot(r, s, id)) != NULL) {
        memset(&ev, 0, sizeof ev);
        ev.kind = NGS_EV_PLOT_END;
        ev.plot = p;
        ev.status = status;
        ev.total_rows = total;
        ev.text = text;
        deliver(r, fn, user, &ev);
        ngs_plot_desc_free(p);
        s->plots[id] = NULL;
    }
    free(text);
    return r->status;
}

static int replay_message(reader *r, ngs_hook_fn fn, void *user)
{
    int is_error = rd_u8(r) != 0, null;
    char *text = rd_str(r, &null);
    ngs_event ev;
    if (r->status == NGS_OK) {
        memset(&ev, 0, sizeof ev);
        ev.kind = NGS_EV_MESSAGE;
        ev.text = text;
        ev.is_error = is_error;
        deliver(r, fn, user, &ev);
    }
    free(text);
    return r->status;
}

int ngs_replay_fd(int fd, ngs_hook_fn fn, void *user, char *err, size_t errlen)
{
    ngs_recording_info info;
    reader r;
    replay_state s;
    uint64_t events = 0;
    int rc;

    if (!fn) return NGS_ERR_ARG;
    rc = ngs_recording_verify_fd(fd, &info, err, errlen);
    if (rc != NGS_OK) return rc;
    memset(&r, 0, sizeof r);
    memset(&s, 0, sizeof s);
    r.fd = fd;
    r.off = HEADER_BYTES;
    r.in_left = info.file_bytes - HEADER_BYTES - FOOTER_BYTES;
    r.raw_left = info.raw_bytes;
    r.err = err;
    r.errlen = errlen;
    r.incap = ZSTD_DStreamInSize();
    r.outcap = ZSTD_DStreamOutSize();
    r.in = malloc(r.incap);
    r.out = malloc(r.outcap);
    r.dctx = ZSTD_createDCtx();
    if (!r.in || !r.out || !r.dctx) rd_bad(&r, NGS_ERR_NOMEM, "out of memory");
    while (r.status == NGS_OK) {
        unsigned t = rd_u8(&r);
        if (r.status != NGS_OK) break;
        if (t == T_EOS) {
            uint64_t n = rd_u64(&r);
            if (r.status != NGS_OK) break;
            if (n != events || n != info.events) rd_bad(&r, NGS_ERR_FORMAT, "event count mismatch");
            else if (r.raw_left != 0 || rd_fill(&r) != 0 || r.in_left != 0 || r.inb.pos != r.inb.size)
                rd_bad(&r, NGS_ERR_FORMAT, "data after the end of the recording");
            break;
        }
        switch (t) {
        case T_BEGIN: replay_begin(&r, &s, fn, user); break;
        case T_ROWS: replay_rows(&r, &s, fn, user); break;
        case T_END: replay_end(&r, &s, fn, user); break;
        case T_MESSAGE: replay_message(&r, fn, user); break;
        default: rd_bad(&r, NGS_ERR_FORMAT, "unknown record type"); break;
        }
        events++;
    }
    for (size_t i = 0; i < s.nplots; i++) ngs_plot_desc_free(s.plots[i]);
    free(s.plots);
    free(s.batch);
    free(r.in);
    free(r.out);
    ZSTD_freeDCtx(r.dctx);
    return r.status;
}

int ngs_replay(const char *path, ngs_hook_fn fn, void *user, char *err, size_t errlen)
{
    int fd, rc;
    if (err && errlen) err[0] = '\0';
    if (!path || !fn) return NGS_ERR_ARG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return NGS_ERR_IO;
    }
    rc = ngs_replay_fd(fd, fn, user, err, errlen);
    close(fd);
    return rc;
}
