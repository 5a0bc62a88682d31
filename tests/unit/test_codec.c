/*
 * test_codec.c - chunk codecs and the zstd filter.
 *
 * The property that matters: bytes from ngs_codec_encode, written with
 * H5Dwrite_chunk(filter_mask 0), are what the dataset's filter pipeline would
 * write, so plain H5Dread (and any stock reader with the filter) decodes them.
 * The HDF5 tests check that both ways: reading our chunks through the pipeline,
 * and comparing our bytes with the chunks HDF5's own pipeline wrote.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "ngscale.h"
#include "storage/codec.h"

static const ngs_codec all_codecs[] = {NGS_CODEC_ZSTD, NGS_CODEC_DEFLATE, NGS_CODEC_NONE};
#define NCODECS (int)(sizeof all_codecs / sizeof all_codecs[0])

/* ---- data ---------------------------------------------------------------------------- */

enum { DATA_RANDOM, DATA_SMOOTH, DATA_CONSTANT, NDATA };

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: reproducible and good enough to defeat compression */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Doubles of one kind: random in [-1e3, 1e3), a damped sine plus ripple (what a
 * transient looks like), or a constant. */
static void fill_doubles(double *v, size_t n, int kind, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i * 1e-9;
        switch (kind) {
        case DATA_RANDOM:
            v[i] = ((double)(rng_next(&s) >> 11) / 9007199254740992.0 - 0.5) * 2e3;
            break;
        case DATA_SMOOTH:
            v[i] = 1.65 + 0.9 * sin(2 * M_PI * 1e6 * t) * exp(-t / 2e-6) +
                   0.01 * sin(2 * M_PI * 37e6 * t);
            break;
        default:
            v[i] = 3.3;
        }
    }
}

static void fill_bytes(uint8_t *b, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(rng_next(&s) >> 56);
}

/* Encodes into a fresh buffer of ngs_codec_bound bytes; checks the bound. */
static uint8_t *encode_alloc(ngs_codec codec, int level, size_t es, const void *src,
                             size_t nbytes, size_t *enc_size)
{
    size_t cap = ngs_codec_bound(codec, nbytes);
    uint8_t *dst = malloc(cap ? cap : 1), *scratch = malloc(nbytes ? nbytes : 1);
    int rc;

    ck_assert_ptr_nonnull(dst);
    ck_assert_ptr_nonnull(scratch);
    rc = ngs_codec_encode(codec, level, es, src, nbytes, dst, cap, enc_size, scratch);
    ck_assert_msg(rc == NGS_OK, "encode %s level %d es %zu n %zu: %d",
                  ngs_codec_name(codec), level, es, nbytes, rc);
    ck_assert_uint_le(*enc_size, cap);
    free(scratch);
    return dst;
}

/* Decodes and compares with the original, bit for bit. */
static void check_decodes_to(ngs_codec codec, size_t es, const uint8_t *enc, size_t enc_size,
                             const void *orig, size_t nbytes)
{
    uint8_t *out = malloc(nbytes + 1), *scratch = malloc(nbytes + 1);
    int rc;

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(scratch);
    memset(out, 0xA5, nbytes + 1);
    rc = ngs_codec_decode(codec, es, enc, enc_size, out, nbytes, scratch);
    ck_assert_msg(rc == NGS_OK, "decode %s es %zu n %zu: %d", ngs_codec_name(codec), es,
                  nbytes, rc);
    if (nbytes)
        ck_assert_mem_eq(out, orig, nbytes);
    ck_assert_uint_eq(out[nbytes], 0xA5); /* nothing written past the end */
    free(out);
    free(scratch);
}

/* ---- names, levels, bounds ---------------------------------------------------------------- */

START_TEST(test_names)
{
    ck_assert_int_eq(ngs_codec_from_name("zstd"), NGS_CODEC_ZSTD);
    ck_assert_int_eq(ngs_codec_from_name("deflate"), NGS_CODEC_DEFLATE);
    ck_assert_int_eq(ngs_codec_from_name("none"), NGS_CODEC_NONE);
    ck_assert_int_eq(ngs_codec_from_name("ZSTD"), NGS_CODEC_ZSTD);
    ck_assert_int_eq(ngs_codec_from_name("Deflate"), NGS_CODEC_DEFLATE);
    ck_assert_int_eq(ngs_codec_from_name(NULL), -1);
    ck_assert_int_eq(ngs_codec_from_name(""), -1);
    ck_assert_int_eq(ngs_codec_from_name("zstd "), -1);
    ck_assert_int_eq(ngs_codec_from_name("zst"), -1);
    ck_assert_int_eq(ngs_codec_from_name("gzip"), -1);
    ck_assert_int_eq(ngs_codec_from_name("lz4"), -1);
    for (int i = 0; i < NCODECS; i++)
        ck_assert_int_eq(ngs_codec_from_name(ngs_codec_name(all_codecs[i])), all_codecs[i]);
    ck_assert_str_eq(ngs_codec_name(NGS_CODEC_ZSTD), "zstd");
    ck_assert_ptr_null(ngs_codec_name((ngs_codec)42));
}
END_TEST

START_TEST(test_levels_and_bounds)
{
    ck_assert_int_eq(ngs_codec_default_level(NGS_CODEC_ZSTD), -1);
    ck_assert_int_eq(ngs_codec_default_level(NGS_CODEC_DEFLATE), 4);
    ck_assert_int_eq(ngs_codec_default_level(NGS_CODEC_NONE), 0);
    ck_assert_int_eq(ngs_codec_default_level((ngs_codec)42), 0);

    ck_assert_uint_eq(ngs_codec_bound(NGS_CODEC_NONE, 65536), 65536);
    ck_assert_uint_eq(ngs_codec_bound(NGS_CODEC_ZSTD, 65536), ZSTD_compressBound(65536));
    ck_assert_uint_eq(ngs_codec_bound(NGS_CODEC_DEFLATE, 65536), compressBound(65536));
    ck_assert_uint_gt(ngs_codec_bound(NGS_CODEC_ZSTD, 0), 0);
    ck_assert_uint_gt(ngs_codec_bound(NGS_CODEC_DEFLATE, 0), 0);
    ck_assert_uint_eq(ngs_codec_bound((ngs_codec)42, 100), 0);
}
END_TEST

/* ---- shuffle ------------------------------------------------------------------------------- */

/* (element size, chunk bytes): multiples, leftovers, a single element, less than one, 0;
 * for 8 and 16 also SIMD blocks (16 or 32 elements) with and without a scalar tail. */
static const size_t shuffle_cases[][2] = {
    {8, 65536}, {8, 8 * 1000 + 3}, {16, 16 * 777 + 15}, {4, 4 * 5 + 1}, {2, 3},
    {3, 3 * 100 + 2}, {8, 8}, {8, 16}, {8, 7}, {16, 9}, {8, 0}, {1, 1000}, {5, 5 * 333},
    {8, 8 * 15}, {8, 8 * 16}, {8, 8 * 17 + 5}, {8, 8 * 31}, {8, 8 * 33}, {8, 8 * 1000},
    {8, 8 * (65536 + 3) + 7}, {16, 16 * 15}, {16, 16 * 16}, {16, 16 * 17 + 3},
    {16, 16 * 31}, {16, 16 * 33}, {16, 16 * 1000}, {16, 16 * (65536 + 3) + 9},
};
#define NSHUFFLE (int)(sizeof shuffle_cases / sizeof shuffle_cases[0])

/* What HDF5's shuffle filter produces: byte j of element i at j*nelem + i, leftover
 * bytes unchanged at the end; no change for 1-byte elements or fewer than 2 elements. */
static void reference_shuffle(uint8_t *dst, const uint8_t *src, size_t es, size_t nbytes)
{
    size_t nelem = nbytes / es;
    memcpy(dst, src, nbytes);
    if (es <= 1 || nelem <= 1)
        return;
    for (size_t i = 0; i < nelem; i++)
        for (size_t j = 0; j < es; j++)
            dst[j * nelem + i] = src[i * es + j];
}

/* Decompress our output with zstd/zlib alone and check the shuffled layout. */
START_TEST(test_shuffle_layout)
{
    size_t es = shuffle_cases[_i][0], n = shuffle_cases[_i][1], zn, dn;
    uint8_t *src = malloc(n + 1), *expect = malloc(n + 1), *raw = malloc(n + 1);
    uint8_t *enc;
    uLongf zlen = (uLongf)n;

    fill_bytes(src, n, 1234 + (uint64_t)_i);
    reference_shuffle(expect, src, es, n);

    enc = encode_alloc(NGS_CODEC_ZSTD, 1, es, src, n, &zn);
    ck_assert_uint_eq(ZSTD_getFrameContentSize(enc, zn), n); /* size in the frame header */
    ck_assert_uint_eq(ZSTD_findFrameCompressedSize(enc, zn), zn); /* exactly one frame */
    dn = ZSTD_decompress(raw, n, enc, zn);
    ck_assert_msg(!ZSTD_isError(dn) && dn == n, "zstd frame does not decode to %zu", n);
    if (n)
        ck_assert_mem_eq(raw, expect, n);
    free(enc);

    enc = encode_alloc(NGS_CODEC_DEFLATE, 6, es, src, n, &zn);
    ck_assert_int_eq(uncompress(raw, &zlen, enc, zn), Z_OK);
    ck_assert_uint_eq(zlen, n);
    if (n)
        ck_assert_mem_eq(raw, expect, n);
    free(enc);
    free(src);
    free(expect);
    free(raw);
}
END_TEST

START_TEST(test_shuffle_roundtrip)
{
    size_t es = shuffle_cases[_i][0], n = shuffle_cases[_i][1], en;
    uint8_t *src = malloc(n + 1), *enc;

    fill_bytes(src, n, 99 + (uint64_t)_i);
    for (int c = 0; c < NCODECS; c++) {
        enc = encode_alloc(all_codecs[c], 0, es, src, n, &en);
        if (all_codecs[c] == NGS_CODEC_NONE) {
            ck_assert_uint_eq(en, n);
            if (n)
                ck_assert_mem_eq(enc, src, n);
        }
        check_decodes_to(all_codecs[c], es, enc, en, src, n);
        free(enc);
    }
    free(src);
}
END_TEST

/* ---- round trips ------------------------------------------------------------------------------ */

static const int zstd_levels[] = {0, 1, 3, 9, 19, -5};
static const int deflate_levels[] = {0, 1, 4, 9};
static const int none_levels[] = {0, 7};

static void levels_of(ngs_codec codec, const int **levels, int *n)
{
    switch (codec) {
    case NGS_CODEC_ZSTD:
        *levels = zstd_levels;
        *n = (int)(sizeof zstd_levels / sizeof zstd_levels[0]);
        break;
    case NGS_CODEC_DEFLATE:
        *levels = deflate_levels;
        *n = (int)(sizeof deflate_levels / sizeof deflate_levels[0]);
        break;
    default:
        *levels = none_levels;
        *n = (int)(sizeof none_levels / sizeof none_levels[0]);
    }
}

/* _i = codec * NDATA + data kind; every level, real (8) and complex (16) elements. */
START_TEST(test_roundtrip)
{
    ngs_codec codec = all_codecs[_i / NDATA];
    int kind = _i % NDATA, nlevels;
    const int *levels;
    size_t nvals = 8192 + 5, nbytes = nvals * sizeof(double), en;
    double *src = malloc(nbytes);

    fill_doubles(src, nvals, kind, 7);
    levels_of(codec, &levels, &nlevels);
    for (int l = 0; l < nlevels; l++) {
        for (size_t es = 8; es <= 16; es += 8) {
            size_t n = nbytes - (es == 16 ? 8 : 0); /* whole complex elements */
            uint8_t *enc = encode_alloc(codec, levels[l], es, src, n, &en);
            ck_assert_uint_le(en, ngs_codec_bound(codec, n));
            if (codec == NGS_CODEC_NONE)
                ck_assert_uint_eq(en, n);
            else if (kind == DATA_CONSTANT)
                ck_assert_uint_lt(en, n / 50);
            else if (kind == DATA_SMOOTH && es == 8)
                ck_assert_uint_lt(en, n * 9 / 10);
            check_decodes_to(codec, es, enc, en, src, n);
            free(enc);
        }
    }
    free(src);
}
END_TEST

START_TEST(test_bad_arguments)
{
    double src[64] = {0}, out[64];
    uint8_t dst[4096], scratch[sizeof src];
    size_t en = 123;

    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 8, NULL, sizeof src, dst, sizeof dst,
                                      &en, scratch), NGS_ERR_ARG);
    ck_assert_uint_eq(en, 0);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 8, src, sizeof src, NULL, sizeof dst,
                                      &en, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 8, src, sizeof src, dst, sizeof dst,
                                      NULL, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 8, src, sizeof src, dst, sizeof dst,
                                      &en, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 0, src, sizeof src, dst, sizeof dst,
                                      &en, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode((ngs_codec)42, 1, 8, src, sizeof src, dst, sizeof dst,
                                      &en, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, ZSTD_maxCLevel() + 1, 8, src, sizeof src,
                                      dst, sizeof dst, &en, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_DEFLATE, 10, 8, src, sizeof src, dst,
                                      sizeof dst, &en, scratch), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_DEFLATE, -1, 8, src, sizeof src, dst,
                                      sizeof dst, &en, scratch), NGS_ERR_ARG);
    /* No room for the result: a codec error, whatever the codec. */
    for (int c = 0; c < NCODECS; c++)
        ck_assert_int_eq(ngs_codec_encode(all_codecs[c], 0, 8, src, sizeof src, dst, 4, &en,
                                          scratch), NGS_ERR_CODEC);
    /* No scratch needed when the shuffle is the identity (1-byte elements, NONE). */
    ck_assert_int_eq(ngs_codec_encode(NGS_CODEC_ZSTD, 1, 1, src, sizeof src, dst, sizeof dst,
                                      &en, NULL), NGS_OK);
    ck_assert_int_eq(ngs_codec_decode(NGS_CODEC_ZSTD, 1, dst, en, out, sizeof out, NULL),
                     NGS_OK);
    ck_assert_int_eq(ngs_codec_decode(NGS_CODEC_ZSTD, 8, dst, en, out, sizeof out, NULL),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_decode(NGS_CODEC_ZSTD, 8, NULL, en, out, sizeof out, scratch),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_decode((ngs_codec)42, 8, dst, en, out, sizeof out, scratch),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_set_filters(-1, NGS_CODEC_ZSTD, 1, 8), NGS_ERR_ARG);
}
END_TEST

/* ---- corrupt input ------------------------------------------------------------------------------- */

static int decode_rc(ngs_codec codec, const uint8_t *src, size_t n, size_t decoded)
{
    uint8_t *out = malloc(decoded + 1), *scratch = malloc(decoded + 1);
    int rc = ngs_codec_decode(codec, 8, src, n, out, decoded, scratch);
    free(out);
    free(scratch);
    return rc;
}

START_TEST(test_corrupt_input)
{
    ngs_codec codec = all_codecs[_i];
    size_t nvals = 4096, nbytes = nvals * sizeof(double), en;
    double *src = malloc(nbytes);
    uint8_t *enc, *bad, garbage[512];
    uint64_t s = 77;

    fill_doubles(src, nvals, DATA_SMOOTH, 3);
    enc = encode_alloc(codec, 0, 8, src, nbytes, &en);
    bad = malloc(en);

    /* Truncated, or the wrong decoded size: always an error. */
    const size_t cuts[] = {0, 1, 4, 8, en / 2, en - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++)
        ck_assert_msg(decode_rc(codec, enc, cuts[k], nbytes) == NGS_ERR_CODEC,
                      "%s: truncated to %zu decoded", ngs_codec_name(codec), cuts[k]);
    ck_assert_int_eq(decode_rc(codec, enc, en, nbytes - 8), NGS_ERR_CODEC);
    ck_assert_int_eq(decode_rc(codec, enc, en, nbytes + 8), NGS_ERR_CODEC);
    ck_assert_int_eq(decode_rc(codec, enc, en, 0), NGS_ERR_CODEC);
    if (codec != NGS_CODEC_NONE) {
        fill_bytes(garbage, sizeof garbage, 5);
        ck_assert_int_eq(decode_rc(codec, garbage, sizeof garbage, nbytes), NGS_ERR_CODEC);
        memcpy(bad, enc, en);
        bad[0] ^= 0xFF; /* zstd magic / zlib header */
        ck_assert_int_eq(decode_rc(codec, bad, en, nbytes), NGS_ERR_CODEC);
    }
    /* Random damage: may decode to other data, must never crash or overrun (ASan). */
    for (int k = 0; k < 300; k++) {
        int rc;
        memcpy(bad, enc, en);
        for (int f = 0; f < 1 + k % 4; f++)
            bad[rng_next(&s) % en] ^= (uint8_t)(1u << (rng_next(&s) % 8));
        rc = decode_rc(codec, bad, en, nbytes);
        ck_assert(rc == NGS_OK || rc == NGS_ERR_CODEC);
    }
    free(bad);
    free(enc);
    free(src);
}
END_TEST

/* ---- threads ----------------------------------------------------------------------------------- */

#define TH_CHUNKS 12
#define TH_VALS 8192
#define TH_THREADS 8

struct th_job {
    const double *data;           /* TH_CHUNKS chunks of TH_VALS */
    uint8_t *ref[TH_CHUNKS];      /* single-threaded encodings */
    size_t ref_size[TH_CHUNKS];
    int level[TH_CHUNKS];
    ngs_codec codec[TH_CHUNKS];
    int mismatches;
};

static void *th_encode(void *arg)
{
    struct th_job *job = arg;
    size_t nbytes = TH_VALS * sizeof(double), cap = ngs_codec_bound(NGS_CODEC_ZSTD, nbytes);
    uint8_t *dst = malloc(cap), *scratch = malloc(nbytes), *back = malloc(nbytes);
    int bad = 0;

    for (int round = 0; round < 4; round++) {
        for (int c = 0; c < TH_CHUNKS; c++) {
            const double *src = job->data + (size_t)c * TH_VALS;
            size_t en;
            if (ngs_codec_encode(job->codec[c], job->level[c], 8, src, nbytes, dst, cap, &en,
                                 scratch) != NGS_OK ||
                en != job->ref_size[c] || memcmp(dst, job->ref[c], en) != 0 ||
                ngs_codec_decode(job->codec[c], 8, dst, en, back, nbytes, scratch) != NGS_OK ||
                memcmp(back, src, nbytes) != 0)
                bad++;
        }
    }
    free(dst);
    free(scratch);
    free(back);
    return (void *)(intptr_t)bad;
}

/* Concurrent encodes give the same bytes as one thread, and decode back. */
START_TEST(test_threads)
{
    static struct th_job job;
    double *data = malloc(sizeof(double) * TH_VALS * TH_CHUNKS);
    pthread_t tid[TH_THREADS];
    int bad = 0;

    for (int c = 0; c < TH_CHUNKS; c++) {
        fill_doubles(data + (size_t)c * TH_VALS, TH_VALS, c % NDATA, (uint64_t)c + 1);
        job.codec[c] = c % 3 == 2 ? NGS_CODEC_DEFLATE : NGS_CODEC_ZSTD;
        job.level[c] = job.codec[c] == NGS_CODEC_ZSTD ? 1 + c % 6 : 1 + c % 9;
        job.ref[c] = encode_alloc(job.codec[c], job.level[c], 8, data + (size_t)c * TH_VALS,
                                  TH_VALS * sizeof(double), &job.ref_size[c]);
    }
    job.data = data;
    for (int t = 0; t < TH_THREADS; t++)
        ck_assert_int_eq(pthread_create(&tid[t], NULL, th_encode, &job), 0);
    for (int t = 0; t < TH_THREADS; t++) {
        void *ret;
        ck_assert_int_eq(pthread_join(tid[t], &ret), 0);
        bad += (int)(intptr_t)ret;
    }
    ck_assert_int_eq(bad, 0);
    for (int c = 0; c < TH_CHUNKS; c++)
        free(job.ref[c]);
    free(data);
}
END_TEST

/* ---- HDF5 interop -------------------------------------------------------------------------------- */

static char tmp_dir[4096];

static void make_tmp_dir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/ngs_codec_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(tmp_dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tmp_dir(void)
{
    char path[4200];
    for (int k = 0; k < 8; k++) {
        snprintf(path, sizeof path, "%s/t%d.h5", tmp_dir, k);
        unlink(path);
    }
    rmdir(tmp_dir);
}

static void tmp_file(char *path, size_t size, int k)
{
    snprintf(path, size, "%s/t%d.h5", tmp_dir, k);
}

/* {r, i} float64, as the writer stores complex vectors (h5py reads it as complex128). */
static hid_t complex_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, 16);
    ck_assert_int_ge(t, 0);
    ck_assert_int_ge(H5Tinsert(t, "r", 0, H5T_IEEE_F64LE), 0);
    ck_assert_int_ge(H5Tinsert(t, "i", 8, H5T_IEEE_F64LE), 0);
    return t;
}

#define H5_CHUNK 4096                      /* elements per chunk */
#define H5_NELEM (3 * H5_CHUNK + 1000)     /* last chunk partial */
#define H5_NCHUNKS ((H5_NELEM + H5_CHUNK - 1) / H5_CHUNK)

/* 1-D extendible chunked dataset like the writer's, filters from the codec. */
static hid_t create_dataset(hid_t file, const char *name, hid_t type, ngs_codec codec, int level)
{
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = H5_CHUNK;
    hid_t space = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dset;

    ck_assert_int_ge(H5Pset_chunk(dcpl, 1, &chunk), 0);
    ck_assert_int_eq(ngs_codec_set_filters(dcpl, codec, level, H5Tget_size(type)), NGS_OK);
    dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(dset, 0);
    H5Pclose(dcpl);
    H5Sclose(space);
    return dset;
}

/* Test data for a dataset: smooth real values, or cos/sin pairs for complex. */
static double *h5_data(size_t es)
{
    size_t ndbl = (size_t)H5_NCHUNKS * H5_CHUNK * es / 8;
    double *v = calloc(ndbl, sizeof(double)); /* zero past H5_NELEM, as the fill value */
    ck_assert_ptr_nonnull(v);
    if (es == 8) {
        fill_doubles(v, H5_NELEM, DATA_SMOOTH, 1);
    } else {
        for (size_t i = 0; i < H5_NELEM; i++) {
            v[2 * i] = cos(1e-3 * (double)i) * 0.5;
            v[2 * i + 1] = sin(1e-3 * (double)i) * 0.5;
        }
    }
    return v;
}

/* _i = codec * 2 + (complex ? 1 : 0). */
static void h5_case(int i, ngs_codec *codec, hid_t *type, size_t *es)
{
    *codec = all_codecs[i / 2];
    *type = i % 2 ? complex_type() : H5Tcopy(H5T_IEEE_F64LE);
    *es = H5Tget_size(*type);
}

/* The dcpl holds shuffle + the compressor with the level in cd_values, or nothing. */
START_TEST(test_h5_filters)
{
    ngs_codec codec = all_codecs[_i];
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    unsigned int flags, cd[4];
    size_t ncd = 4;
    char name[64];
    H5Z_filter_t id;

    ck_assert_int_eq(ngs_codec_set_filters(dcpl, codec, 0, 8), NGS_OK);
    if (codec == NGS_CODEC_NONE) {
        ck_assert_int_eq(H5Pget_nfilters(dcpl), 0);
    } else {
        ck_assert_int_eq(H5Pget_nfilters(dcpl), 2);
        id = H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, sizeof name, name, NULL);
        ck_assert_int_eq(id, H5Z_FILTER_SHUFFLE);
        ncd = 4;
        id = H5Pget_filter2(dcpl, 1, &flags, &ncd, cd, sizeof name, name, NULL);
        ck_assert_int_eq(id, codec == NGS_CODEC_ZSTD ? NGS_H5Z_FILTER_ZSTD : H5Z_FILTER_DEFLATE);
        ck_assert_uint_eq(ncd, 1);
        ck_assert_uint_eq(cd[0], (unsigned)ngs_codec_default_level(codec));
        if (codec == NGS_CODEC_ZSTD) {
            ck_assert_uint_eq(flags & H5Z_FLAG_OPTIONAL, 0);
            ck_assert_int_gt(H5Zfilter_avail(NGS_H5Z_FILTER_ZSTD), 0);
        }
    }
    ck_assert_int_eq(ngs_codec_set_filters(dcpl, codec, 99, 8),
                     codec == NGS_CODEC_NONE ? NGS_OK : NGS_ERR_ARG);
    ck_assert_int_eq(ngs_codec_set_filters(dcpl, codec, 0, 0), NGS_ERR_ARG);
    H5Pclose(dcpl);
}
END_TEST

/* Our chunks through H5Dwrite_chunk, read back through the pipeline with H5Dread. */
START_TEST(test_h5_write_chunk_read)
{
    ngs_codec codec;
    hid_t type, file, dset;
    size_t es, chunk_bytes, en;
    char path[4200];
    hsize_t dims = H5_NELEM;
    double *data, *back;
    uint8_t *scratch, *enc;

    h5_case(_i, &codec, &type, &es);
    chunk_bytes = H5_CHUNK * es;
    data = h5_data(es);
    back = malloc(H5_NELEM * es);
    scratch = malloc(chunk_bytes);
    enc = malloc(ngs_codec_bound(codec, chunk_bytes));
    tmp_file(path, sizeof path, _i);
    ck_assert_int_eq(ngs_codec_register_zstd(), NGS_OK);

    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(file, 0);
    dset = create_dataset(file, "v", type, codec, 0);
    ck_assert_int_ge(H5Dset_extent(dset, &dims), 0);
    for (hsize_t c = 0; c < H5_NCHUNKS; c++) {
        hsize_t offset = c * H5_CHUNK;
        ck_assert_int_eq(ngs_codec_encode(codec, 0, es, (uint8_t *)data + c * chunk_bytes,
                                          chunk_bytes, enc, ngs_codec_bound(codec, chunk_bytes),
                                          &en, scratch), NGS_OK);
        ck_assert_int_ge(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, en, enc), 0);
    }
    H5Dclose(dset);
    H5Fclose(file);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(file, 0);
    dset = H5Dopen2(file, "v", H5P_DEFAULT);
    ck_assert_int_ge(dset, 0);
    memset(back, 0xEE, H5_NELEM * es);
    ck_assert_int_ge(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, back), 0);
    ck_assert_mem_eq(back, data, H5_NELEM * es);
    H5Dclose(dset);
    H5Fclose(file);
    H5Tclose(type);
    free(data);
    free(back);
    free(scratch);
    free(enc);
}
END_TEST

/* HDF5's own pipeline (H5Dwrite) stores exactly the bytes ngs_codec_encode makes. */
START_TEST(test_h5_pipeline_bytes)
{
    ngs_codec codec;
    hid_t type, file, dset;
    size_t es, chunk_bytes, en;
    char path[4200];
    hsize_t dims = H5_NELEM;
    double *data;
    uint8_t *scratch, *enc, *stored;

    h5_case(_i, &codec, &type, &es);
    chunk_bytes = H5_CHUNK * es;
    data = h5_data(es);
    scratch = malloc(chunk_bytes);
    enc = malloc(ngs_codec_bound(codec, chunk_bytes));
    stored = malloc(ngs_codec_bound(codec, chunk_bytes));
    tmp_file(path, sizeof path, _i);

    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(file, 0);
    dset = create_dataset(file, "v", type, codec, 0);
    ck_assert_int_ge(H5Dset_extent(dset, &dims), 0);
    ck_assert_int_ge(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(dset);
    H5Fclose(file);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    dset = H5Dopen2(file, "v", H5P_DEFAULT);
    ck_assert_int_ge(dset, 0);
    for (hsize_t c = 0; c < H5_NCHUNKS; c++) {
        hsize_t offset = c * H5_CHUNK, stored_size = 0;
        uint32_t mask = 0xFFFF;
        ck_assert_int_ge(H5Dget_chunk_storage_size(dset, &offset, &stored_size), 0);
        ck_assert_int_ge(H5Dread_chunk(dset, H5P_DEFAULT, &offset, &mask, stored), 0);
        ck_assert_uint_eq(mask, 0);
        ck_assert_int_eq(ngs_codec_encode(codec, 0, es, (uint8_t *)data + c * chunk_bytes,
                                          chunk_bytes, enc, ngs_codec_bound(codec, chunk_bytes),
                                          &en, scratch), NGS_OK);
        ck_assert_uint_eq(en, stored_size);
        ck_assert_mem_eq(enc, stored, en);
    }
    H5Dclose(dset);
    H5Fclose(file);
    H5Tclose(type);
    free(data);
    free(scratch);
    free(enc);
    free(stored);
}
END_TEST

/* Frames other zstd writers may produce decode through the filter: no content size
 * in the header (streaming), two frames in one chunk; a truncated one fails cleanly. */
static size_t frame_without_size(void *dst, size_t cap, const void *src, size_t n)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_inBuffer in = {src, n, 0};
    ZSTD_outBuffer out = {dst, cap, 0};
    size_t left;

    ck_assert_ptr_nonnull(cctx);
    ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
    do {
        left = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end);
        ck_assert(!ZSTD_isError(left));
    } while (left);
    ZSTD_freeCCtx(cctx);
    ck_assert_uint_eq(ZSTD_getFrameContentSize(dst, out.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    return out.pos;
}

START_TEST(test_h5_foreign_frames)
{
    enum { CH = 5000, NCH = 3 };
    hsize_t dims = CH * NCH, chunk = CH, offset;
    size_t cb = CH * sizeof(double), cap = ZSTD_compressBound(cb) * 2, n;
    double *data = malloc(dims * sizeof(double)), *back = malloc(cb);
    uint8_t *buf = malloc(cap);
    unsigned int level = 3;
    char path[4200];
    hid_t file, dset, space, dcpl, mspace;
    herr_t err;

    fill_doubles(data, dims, DATA_SMOOTH, 11);
    tmp_file(path, sizeof path, 7);
    ck_assert_int_eq(ngs_codec_register_zstd(), NGS_OK);
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    space = H5Screate_simple(1, &dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(dcpl, 1, &chunk), 0);
    ck_assert_int_ge(H5Pset_filter(dcpl, NGS_H5Z_FILTER_ZSTD, H5Z_FLAG_MANDATORY, 1, &level), 0);
    dset = H5Dcreate2(file, "v", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(dset, 0);

    offset = 0;
    n = frame_without_size(buf, cap, data, cb);
    ck_assert_int_ge(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, n, buf), 0);
    offset = CH;
    n = ZSTD_compress(buf, cap, data + CH, cb / 2, 1);
    n += ZSTD_compress(buf + n, cap - n, data + CH + CH / 2, cb / 2, 1);
    ck_assert_int_ge(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, n, buf), 0);
    offset = 2 * CH;
    n = ZSTD_compress(buf, cap, data + 2 * CH, cb, 1);
    ck_assert_int_ge(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, n - 3, buf), 0);

    mspace = H5Screate_simple(1, &chunk, NULL);
    for (hsize_t c = 0; c < NCH; c++) {
        offset = c * CH;
        ck_assert_int_ge(H5Sselect_hyperslab(space, H5S_SELECT_SET, &offset, NULL, &chunk, NULL), 0);
        H5E_BEGIN_TRY
        {
            err = H5Dread(dset, H5T_NATIVE_DOUBLE, mspace, space, H5P_DEFAULT, back);
        }
        H5E_END_TRY;
        if (c < 2) {
            ck_assert_msg(err >= 0, "chunk %d did not decode", (int)c);
            ck_assert_mem_eq(back, data + c * CH, cb);
        } else {
            ck_assert_msg(err < 0, "truncated chunk decoded");
        }
    }
    H5Sclose(mspace);
    H5Dclose(dset);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    free(data);
    free(back);
    free(buf);
}
END_TEST

/* ---- runner ---------------------------------------------------------------------------------------- */

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *basic = tcase_create("basic"), *shuf = tcase_create("shuffle");
    TCase *trip = tcase_create("roundtrip"), *h5 = tcase_create("hdf5");

    tcase_add_test(basic, test_names);
    tcase_add_test(basic, test_levels_and_bounds);
    tcase_add_test(basic, test_bad_arguments);
    tcase_add_loop_test(basic, test_corrupt_input, 0, NCODECS);
    suite_add_tcase(s, basic);

    tcase_add_loop_test(shuf, test_shuffle_layout, 0, NSHUFFLE);
    tcase_add_loop_test(shuf, test_shuffle_roundtrip, 0, NSHUFFLE);
    suite_add_tcase(s, shuf);

    tcase_set_timeout(trip, 120);
    tcase_add_loop_test(trip, test_roundtrip, 0, NCODECS * NDATA);
    tcase_add_test(trip, test_threads);
    suite_add_tcase(s, trip);

    tcase_set_timeout(h5, 120);
    tcase_add_checked_fixture(h5, make_tmp_dir, remove_tmp_dir);
    tcase_add_loop_test(h5, test_h5_filters, 0, NCODECS);
    tcase_add_loop_test(h5, test_h5_write_chunk_read, 0, NCODECS * 2);
    tcase_add_loop_test(h5, test_h5_pipeline_bytes, 0, NCODECS * 2);
    tcase_add_test(h5, test_h5_foreign_frames);
    suite_add_tcase(s, h5);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
