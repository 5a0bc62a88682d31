/*
 * bench_bounded.c - size and speed of the lossy codecs on real ngspice output.
 *
 *   bench_bounded [-r reps] [-c chunk_points] [-e rel_err] FILE.raw...
 *
 * Reads each binary RAW file (ngspice -b -r), cuts every vector into chunks as the
 * HDF5 writer does (auto rule: 65536 points halved while a row block exceeds 8 MiB,
 * >= 1024; a plot shorter than that: one chunk of its length; the last chunk
 * zero-padded), and encodes all chunks on one core with:
 *   (a) lossless     shuffle + zstd 1 (ngs_codec_encode)
 *   (b) bounded      rel_err x chunk range per component (scale: (a))
 *   (c) zfp          fixed-accuracy, tolerance = the same E per chunk and component,
 *                    1-D double (scale: (a)); constant chunks reversible
 *   (d) bitround     N bits for rel_err (ngs_bitround_bits_for_rel_err), shuffle +
 *                    deflate 4, the no-plugin mode (scale: shuffle + deflate unrounded)
 *   (d') bitround    same N, shuffle + zstd 1 (for comparison)
 * Reports ratio = RAW file bytes / sum of encoded chunk bytes (HDF5 metadata not
 * counted), median encode and decode MB/s per core (MB of float64 input, 1e6 bytes),
 * and max error / bound, checked for every sample of (b), (c) and (d).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/bounded.h"
#include "storage/codec.h"

#ifdef HAVE_ZFP
#include <zfp.h>
#endif

typedef struct {
    char path[512];
    size_t raw_bytes, nvars, npoints, es, chunk;
    double **vec; /* nvars vectors of npoints * es/8 doubles, each padded to whole chunks */
} raw_file;

enum { C_LOSSLESS, C_BOUNDED, C_ZFP, C_BITROUND, C_BITROUND_ZSTD, NCODEC };
static const char *codec_names[NCODEC] = {
    "(a) lossless shuffle+zstd1", "(b) bounded rel 1e-6", "(c) zfp accuracy same E",
    "(d) bitround+shuffle+deflate4", "(d') bitround+shuffle+zstd1"};

typedef struct {
    int ran;
    size_t bytes;
    double enc_s, dec_s, max_err_ratio, max_abs_err;
    const char *note;
} result;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Minimal binary RAW reader: one plot, header lines up to "Binary:\n". */
static int read_raw(const char *path, raw_file *rf, size_t chunk_opt)
{
    FILE *f = fopen(path, "rb");
    char line[4096];
    int complex_ = 0, binary = 0;
    long data_off;

    memset(rf, 0, sizeof *rf);
    snprintf(rf->path, sizeof rf->path, "%s", path);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "No. Variables:", 14))
            rf->nvars = strtoul(line + 14, NULL, 10);
        else if (!strncmp(line, "No. Points:", 11))
            rf->npoints = strtoul(line + 11, NULL, 10);
        else if (!strncmp(line, "Flags:", 6))
            complex_ = strstr(line, "complex") != NULL;
        else if (!strcmp(line, "Binary:\n")) {
            binary = 1;
            break;
        }
    }
    data_off = ftell(f);
    fseek(f, 0, SEEK_END);
    rf->raw_bytes = (size_t)ftell(f);
    if (!binary || !rf->nvars || !rf->npoints) {
        fclose(f);
        return -1;
    }
    rf->es = complex_ ? 16 : 8;
    size_t row = rf->nvars * rf->es, c = 65536;
    while (c > 1024 && c * row > (8u << 20))
        c >>= 1;
    rf->chunk = chunk_opt ? chunk_opt : c;
    if (rf->npoints < rf->chunk) /* the writer: a short plot gets one chunk of its length */
        rf->chunk = rf->npoints;
    size_t padded = (rf->npoints + rf->chunk - 1) / rf->chunk * rf->chunk;
    /* ngspice writes fewer points than announced if the run was cut short */
    if ((size_t)(rf->raw_bytes - (size_t)data_off) < rf->npoints * row) {
        fclose(f);
        return -1;
    }
    double *rows = malloc(rf->npoints * row);
    fseek(f, data_off, SEEK_SET);
    if (!rows || fread(rows, row, rf->npoints, f) != rf->npoints) {
        fclose(f);
        free(rows);
        return -1;
    }
    fclose(f);
    size_t dpe = rf->es / 8;
    rf->vec = calloc(rf->nvars, sizeof *rf->vec);
    for (size_t v = 0; v < rf->nvars; v++) {
        rf->vec[v] = calloc(padded * dpe, 8);
        for (size_t i = 0; i < rf->npoints; i++)
            memcpy(rf->vec[v] + i * dpe, rows + (i * rf->nvars + v) * dpe, rf->es);
    }
    free(rows);
    return 0;
}

/* E of one component of a chunk: rel x (max - min), as the bounded codec computes it. */
static double chunk_err(const double *x, size_t n, size_t stride, double rel)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (isfinite(v)) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    return hi >= lo ? rel * (hi - lo) : 0.0;
}

#ifdef HAVE_ZFP
/* One component of one chunk: [u32 size][zfp stream]; E == 0 -> reversible. */
static size_t zfp_enc(const double *x, size_t n, size_t stride, double e, uint8_t *dst,
                      size_t cap)
{
    zfp_field *field = zfp_field_1d((void *)x, zfp_type_double, n);
    zfp_stream *zs = zfp_stream_open(NULL);
    size_t out = 0;
    zfp_field_set_stride_1d(field, (ptrdiff_t)stride);
    if (e > 0)
        zfp_stream_set_accuracy(zs, e);
    else
        zfp_stream_set_reversible(zs);
    size_t need = zfp_stream_maximum_size(zs, field);
    if (need + 16 <= cap) {
        bitstream *bs = stream_open(dst + 16, cap - 16);
        zfp_stream_set_bit_stream(zs, bs);
        zfp_stream_rewind(zs);
        out = zfp_compress(zs, field);
        memcpy(dst, &out, sizeof out);
        memcpy(dst + 8, &e, 8);
        stream_close(bs);
        out += 16;
    }
    zfp_field_free(field);
    zfp_stream_close(zs);
    return out;
}

static size_t zfp_dec(const uint8_t *src, double *x, size_t n, size_t stride)
{
    size_t size;
    double e;
    memcpy(&size, src, sizeof size);
    memcpy(&e, src + 8, 8);
    zfp_field *field = zfp_field_1d(x, zfp_type_double, n);
    zfp_stream *zs = zfp_stream_open(NULL);
    zfp_field_set_stride_1d(field, (ptrdiff_t)stride);
    if (e > 0)
        zfp_stream_set_accuracy(zs, e);
    else
        zfp_stream_set_reversible(zs);
    bitstream *bs = stream_open((void *)(src + 16), size);
    zfp_stream_set_bit_stream(zs, bs);
    zfp_stream_rewind(zs);
    size_t r = zfp_decompress(zs, field);
    stream_close(bs);
    zfp_field_free(field);
    zfp_stream_close(zs);
    return r ? size + 16 : 0;
}
#endif

static int encode_chunk(int codec, const raw_file *rf, size_t v, size_t ck, double rel, int nbits,
                        ngs_bounded_ctx *ctx, uint8_t *dst, size_t cap, size_t *size,
                        double *err, void *scratch)
{
    size_t dpe = rf->es / 8, rows = rf->npoints - ck * rf->chunk;
    const double *x = rf->vec[v] + ck * rf->chunk * dpe;
    size_t nbytes = rf->chunk * rf->es;
    int scale = v == 0;
    rows = rows > rf->chunk ? rf->chunk : rows;
    err[0] = err[1] = 0.0;

    if (codec == C_LOSSLESS || (scale && (codec == C_BOUNDED || codec == C_ZFP)))
        return ngs_codec_encode(NGS_CODEC_ZSTD, 1, rf->es, x, nbytes, dst, cap, size, scratch);
    if (codec == C_BOUNDED) {
        ngs_bounded_params p = {0.0, rel, 0};
        int rc = ngs_bounded_encode(ctx, &p, rf->es, x, nbytes, rows, dst, cap, size, NULL);
        ngs_bounded_chunk_info info;
        if (rc == NGS_OK && ngs_bounded_chunk_info_get(dst, *size, &info) == NGS_OK)
            for (int c = 0; c < info.ncomp; c++)
                err[c] = info.err[c];
        return rc;
    }
    if (codec == C_BITROUND || codec == C_BITROUND_ZSTD) {
        int rc = NGS_OK;
        double *tmp = scratch;
        if (scale)
            memcpy(tmp, x, nbytes);
        else
            rc = ngs_bitround(x, tmp, nbytes / 8, nbits);
        if (rc != NGS_OK)
            return rc;
        return ngs_codec_encode(codec == C_BITROUND ? NGS_CODEC_DEFLATE : NGS_CODEC_ZSTD, 0,
                                rf->es, tmp, nbytes, dst, cap, size, (uint8_t *)scratch + nbytes);
    }
#ifdef HAVE_ZFP
    size_t pos = 0;
    for (size_t c = 0; c < dpe; c++) {
        double e = chunk_err(x + c, rows, dpe, rel);
        size_t n = zfp_enc(x + c, rows, dpe, e, dst + pos, cap - pos);
        if (!n)
            return NGS_ERR_CODEC;
        pos += n;
        err[c] = e;
    }
    *size = pos;
    return NGS_OK;
#else
    return NGS_ERR_ARG;
#endif
}

static int decode_chunk(int codec, const raw_file *rf, size_t v, const uint8_t *src, size_t size,
                        ngs_bounded_ctx *ctx, double *out, void *scratch)
{
    size_t nbytes = rf->chunk * rf->es;
    int scale = v == 0;
    if (codec == C_LOSSLESS || (scale && (codec == C_BOUNDED || codec == C_ZFP)) ||
        codec == C_BITROUND_ZSTD)
        return ngs_codec_decode(NGS_CODEC_ZSTD, rf->es, src, size, out, nbytes, scratch);
    if (codec == C_BITROUND)
        return ngs_codec_decode(NGS_CODEC_DEFLATE, rf->es, src, size, out, nbytes, scratch);
    if (codec == C_BOUNDED)
        return ngs_bounded_decode(ctx, src, size, out, nbytes);
    return NGS_ERR_ARG; /* zfp chunks are decoded in run_codec, which knows the rows */
}

static void run_codec(const raw_file *rf, int codec, double rel, int nbits, int reps, result *r)
{
    size_t dpe = rf->es / 8, nchunks = (rf->npoints + rf->chunk - 1) / rf->chunk;
    size_t nbytes = rf->chunk * rf->es;
    size_t cap = ngs_bounded_bound(nbytes) + ngs_codec_bound(NGS_CODEC_DEFLATE, nbytes) + 64;
    uint8_t *dst = malloc(cap * nchunks * rf->nvars);
    size_t *sizes = calloc(nchunks * rf->nvars, sizeof *sizes);
    double *errs = calloc(nchunks * rf->nvars * 2, sizeof *errs);
    double *times = calloc((size_t)reps, sizeof *times), *dtimes = calloc((size_t)reps, sizeof *dtimes);
    void *scratch = malloc(2 * nbytes + 64);
    double *out = malloc(nbytes);
    ngs_bounded_ctx *ctx = NULL;

    memset(r, 0, sizeof *r);
    ngs_bounded_ctx_create(&ctx);
    for (int rep = 0; rep <= reps; rep++) { /* rep 0: warm-up */
        size_t total = 0;
        double t0 = now();
        for (size_t v = 0; v < rf->nvars; v++)
            for (size_t ck = 0; ck < nchunks; ck++) {
                size_t k = v * nchunks + ck;
                if (encode_chunk(codec, rf, v, ck, rel, nbits, ctx, dst + k * cap, cap,
                                 &sizes[k], &errs[2 * k], scratch) != NGS_OK) {
                    r->note = "encode failed";
                    goto done;
                }
                total += sizes[k];
            }
        if (rep)
            times[rep - 1] = now() - t0;
        r->bytes = total;
    }
    r->ran = 1;
    r->enc_s = median(times, reps);

    /* decode speed (not zfp: its decoder needs the row counts; checked below) */
    if (codec != C_ZFP) {
        for (int rep = 0; rep <= reps; rep++) {
            double t0 = now();
            for (size_t v = 0; v < rf->nvars; v++)
                for (size_t ck = 0; ck < nchunks; ck++) {
                    size_t k = v * nchunks + ck;
                    if (decode_chunk(codec, rf, v, dst + k * cap, sizes[k], ctx, out, scratch)) {
                        r->note = "decode failed";
                        goto done;
                    }
                }
            if (rep)
                dtimes[rep - 1] = now() - t0;
        }
        r->dec_s = median(dtimes, reps);
    }

    /* every sample against its bound */
    for (size_t v = 0; v < rf->nvars; v++)
        for (size_t ck = 0; ck < nchunks; ck++) {
            size_t k = v * nchunks + ck, rows = rf->npoints - ck * rf->chunk;
            const double *x = rf->vec[v] + ck * rf->chunk * dpe;
            rows = rows > rf->chunk ? rf->chunk : rows;
            if (codec == C_ZFP && v > 0) {
#ifdef HAVE_ZFP
                size_t pos = 0;
                for (size_t c = 0; c < dpe; c++) {
                    size_t n = zfp_dec(dst + k * cap + pos, out + c, rows, dpe);
                    if (!n) {
                        r->note = "zfp decode failed";
                        goto done;
                    }
                    pos += n;
                }
#endif
            } else if (decode_chunk(codec, rf, v, dst + k * cap, sizes[k], ctx, out, scratch)) {
                r->note = "decode failed";
                goto done;
            }
            for (size_t i = 0; i < rows * dpe; i++) {
                double a = x[i], b = out[i], e = errs[2 * k + i % dpe], d = fabs(a - b), ratio;
                if (!isfinite(a)) {
                    if (memcmp(&a, &b, 8))
                        r->max_err_ratio = HUGE_VAL;
                    continue;
                }
                if (codec == C_BITROUND || codec == C_BITROUND_ZSTD) {
                    if (v == 0 || a == 0.0 || fabs(a) < 2.2250738585072014e-308)
                        ratio = d == 0.0 ? 0.0 : (v == 0 ? HUGE_VAL : 0.0);
                    else
                        ratio = d / fabs(a) / ngs_bitround_max_rel_err(nbits);
                } else if (e > 0) {
                    ratio = d / e;
                } else {
                    ratio = d == 0.0 ? 0.0 : HUGE_VAL; /* lossless chunk: exact */
                }
                if (ratio > r->max_err_ratio)
                    r->max_err_ratio = ratio;
                if (d > r->max_abs_err)
                    r->max_abs_err = d;
            }
        }
done:
    ngs_bounded_ctx_free(ctx);
    free(dst);
    free(sizes);
    free(errs);
    free(times);
    free(dtimes);
    free(scratch);
    free(out);
}

int main(int argc, char **argv)
{
    int reps = 5, opt, nbits, fails = 0;
    size_t chunk = 0;
    double rel = 1e-6;

    while ((opt = getopt(argc, argv, "r:c:e:")) != -1) {
        if (opt == 'r')
            reps = atoi(optarg);
        else if (opt == 'c')
            chunk = strtoul(optarg, NULL, 10);
        else if (opt == 'e')
            rel = atof(optarg);
        else {
            fprintf(stderr, "usage: %s [-r reps] [-c chunk_points] [-e rel_err] FILE.raw...\n", argv[0]);
            return 2;
        }
    }
    if (optind >= argc || reps < 1 || ngs_bitround_bits_for_rel_err(rel, &nbits) != NGS_OK) {
        fprintf(stderr, "usage: %s [-r reps] [-c chunk_points] [-e rel_err] FILE.raw...\n", argv[0]);
        return 2;
    }
#ifndef HAVE_ZFP
    printf("(c) zfp: SKIPPED - built without libzfp (apt-get install libzfp-dev)\n");
#endif
    printf("rel_err %g: bounded/zfp E = %g x chunk range per vector component; bitround N = %d "
           "(max rel err %.3g); medians of %d repetitions, one core\n\n",
           rel, rel, nbits, ngs_bitround_max_rel_err(nbits), reps);
    for (int a = optind; a < argc; a++) {
        raw_file rf;
        result res[NCODEC];
        if (read_raw(argv[a], &rf, chunk) != 0) {
            fprintf(stderr, "%s: not a binary RAW file ngscale's bench can read\n", argv[a]);
            return 1;
        }
        double in_mb = (double)(rf.npoints * rf.es * rf.nvars) / 1e6;
        printf("== %s: %zu vectors x %zu points (%s), RAW %.1f MB, chunks of %zu points\n",
               rf.path, rf.nvars, rf.npoints, rf.es == 16 ? "complex" : "real",
               (double)rf.raw_bytes / 1e6, rf.chunk);
        printf("%-31s %8s %10s %10s %18s\n", "codec", "ratio", "enc MB/s", "dec MB/s", "max err/bound");
        for (int c = 0; c < NCODEC; c++) {
#ifndef HAVE_ZFP
            if (c == C_ZFP) {
                printf("%-31s SKIPPED (no libzfp)\n", codec_names[c]);
                res[c].ran = 0;
                continue;
            }
#endif
            run_codec(&rf, c, rel, nbits, reps, &res[c]);
            if (!res[c].ran || res[c].note) {
                printf("%-31s FAILED: %s\n", codec_names[c], res[c].note ? res[c].note : "?");
                fails++;
                continue;
            }
            char dec[32] = "-";
            if (res[c].dec_s > 0)
                snprintf(dec, sizeof dec, "%.0f", in_mb / res[c].dec_s);
            printf("%-31s %8.2f %10.0f %10s %18.12f\n", codec_names[c],
                   (double)rf.raw_bytes / (double)res[c].bytes, in_mb / res[c].enc_s, dec,
                   res[c].max_err_ratio);
            if (c != C_LOSSLESS && res[c].max_err_ratio > 1.0)
                fails++;
        }
        if (res[C_BOUNDED].ran && res[C_ZFP].ran)
            printf("bounded vs zfp: %.2fx smaller\n",
                   (double)res[C_ZFP].bytes / (double)res[C_BOUNDED].bytes);
        printf("\n");
        for (size_t v = 0; v < rf.nvars; v++)
            free(rf.vec[v]);
        free(rf.vec);
    }
    return fails ? 1 : 0;
}
