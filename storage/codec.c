/*
 * codec.c - chunk encoders that reproduce HDF5 filter pipelines byte for byte.
 *
 * The writer compresses chunks on its own threads and stores them with
 * H5Dwrite_chunk(filter_mask = 0), so an encoded chunk must be exactly what the
 * pipeline set by ngs_codec_set_filters would have produced:
 *   ZSTD    = HDF5 shuffle (filter 2) + zstd (32015: one frame, content size in header)
 *   DEFLATE = HDF5 shuffle + deflate (filter 1: a zlib compress2 stream)
 *   NONE    = the raw bytes, no filters.
 * Level 0 means the codec's default, in ngs_codec_set_filters and ngs_codec_encode
 * alike, so both agree on what goes into cd_values.
 *
 * Process-wide state: the one-time zstd registration, and one zstd compression and
 * one decompression context per thread (creating a context costs about as much as
 * compressing a 64 KiB chunk at level 1). Everything else lives on the caller's stack.
 */
#include "storage/codec.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "storage/zstd_filter.h"

/* zstd's first fast level: on shuffled simulation data it compresses as well as
 * level 1 (1.855 vs 1.853 on the ring oscillator) at about 1.5x the speed */
#define DEFAULT_LEVEL_ZSTD -1
#define DEFAULT_LEVEL_DEFLATE 4

/* ---- names and levels ----------------------------------------------------------- */

static const struct {
    ngs_codec codec;
    const char *name;
} codec_names[] = {
    {NGS_CODEC_ZSTD, "zstd"},
    {NGS_CODEC_DEFLATE, "deflate"},
    {NGS_CODEC_NONE, "none"},
    {NGS_CODEC_BOUNDED, "bounded"},   /* encoded by storage/bounded.c */
    {NGS_CODEC_BITROUND, "bitround"}, /* storage/bitround.c, on deflate's filters */
};

int ngs_codec_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++)
        if (strcasecmp(name, codec_names[i].name) == 0)
            return (int)codec_names[i].codec;
    return -1;
}

/* NULL for a value outside the enum. */
const char *ngs_codec_name(ngs_codec codec)
{
    for (size_t i = 0; i < sizeof codec_names / sizeof codec_names[0]; i++)
        if (codec_names[i].codec == codec)
            return codec_names[i].name;
    return NULL;
}

/* 0 (no level) for none and for a value outside the enum: levels can be negative,
 * so an error code would read as a level. */
int ngs_codec_default_level(ngs_codec codec)
{
    switch (codec) {
    case NGS_CODEC_ZSTD:
        return DEFAULT_LEVEL_ZSTD;
    case NGS_CODEC_DEFLATE:
        return DEFAULT_LEVEL_DEFLATE;
    default:
        break;
    }
    return 0;
}

/* Turns 0 into the default and checks the range: zstd's own (negative = fast
 * levels, stored wrapped in the unsigned cd_values), deflate 1..9; NONE ignores it. */
static int resolve_level(ngs_codec codec, int level, int *resolved)
{
    int lo = 0, hi = 0;

    switch (codec) {
    case NGS_CODEC_ZSTD:
        lo = ZSTD_minCLevel();
        hi = ZSTD_maxCLevel();
        break;
    case NGS_CODEC_DEFLATE:
        lo = 1;
        hi = 9;
        break;
    case NGS_CODEC_NONE:
        *resolved = 0;
        return NGS_OK;
    default:
        return NGS_ERR_ARG;
    }
    if (level == 0)
        level = ngs_codec_default_level(codec);
    if (level < lo || level > hi)
        return NGS_ERR_ARG;
    *resolved = level;
    return NGS_OK;
}

int ngs_codec_check_level(ngs_codec codec, int level)
{
    int resolved;
    return resolve_level(codec, level, &resolved);
}

/* 0 when nbytes is too large for the codec (or the codec is unknown). */
size_t ngs_codec_bound(ngs_codec codec, size_t nbytes)
{
    size_t bound;

    switch (codec) {
    case NGS_CODEC_ZSTD:
        bound = ZSTD_compressBound(nbytes);
        return ZSTD_isError(bound) ? 0 : bound;
    case NGS_CODEC_DEFLATE:
        return nbytes > ULONG_MAX / 2 ? 0 : (size_t)compressBound((uLong)nbytes);
    case NGS_CODEC_NONE:
        return nbytes;
    default:
        break;
    }
    return 0;
}

/* ---- byte shuffle ------------------------------------------------------------------
 * HDF5's layout (H5Zshuffle.c): byte j of element i goes to j*nelem + i, and the
 * nbytes % elem_size bytes left over follow unchanged at the end. HDF5 leaves the
 * buffer alone for 1-byte elements or fewer than two elements; the permutation is
 * the identity there, so callers simply skip it.
 */
static int shuffle_applies(size_t elem_size, size_t nbytes)
{
    return elem_size > 1 && nbytes / elem_size > 1;
}

/* Inlined with a constant es for the common sizes. One byte plane at a time:
 * sequential writes measured twice as fast as writing es planes at once. Elements
 * [from, nelem) only: the SIMD paths below leave the partial block at the end. */
static inline void shuffle_body(uint8_t *restrict dst, const uint8_t *restrict src,
                                size_t es, size_t from, size_t nelem)
{
    for (size_t j = 0; j < es; j++) {
        uint8_t *plane = dst + j * nelem;
        for (size_t i = from; i < nelem; i++)
            plane[i] = src[i * es + j];
    }
}

static inline void unshuffle_body(uint8_t *restrict dst, const uint8_t *restrict src,
                                  size_t es, size_t from, size_t nelem)
{
    for (size_t i = from; i < nelem; i++)
        for (size_t j = 0; j < es; j++)
            dst[i * es + j] = src[j * nelem + i];
}

#if defined(__SSE2__)
/* Blocks of 16 elements, es (8 or 16) registers each. With byte address
 * (register << 4 | lane), unpacklo/hi_epi8 of registers k and k + es/2 into 2k, 2k+1
 * rotates that address left by one bit, so each transpose is a few identical rounds:
 * shuffling rotates by 4 bits, unshuffling by 3 (es 8) or 4 (es 16).
 * Forced inlining (constant es) and unrolling keep the blocks in registers, at -O2
 * too: on the stack they are slower than the scalar code. Clang unrolls by itself
 * once es is known (a fixed count per round function helps), and a pragma it applies
 * earlier would stop that, so it gets none. */
#define SIMD_INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define UNROLL
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

SIMD_INLINE void round8(__m128i *v)
{
    __m128i t[8];

    UNROLL
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm_unpacklo_epi8(v[k], v[k + 4]);
        t[2 * k + 1] = _mm_unpackhi_epi8(v[k], v[k + 4]);
    }
    memcpy(v, t, sizeof t);
}

SIMD_INLINE void round16(__m128i *v)
{
    __m128i t[16];

    UNROLL
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm_unpacklo_epi8(v[k], v[k + 8]);
        t[2 * k + 1] = _mm_unpackhi_epi8(v[k], v[k + 8]);
    }
    memcpy(v, t, sizeof t);
}

SIMD_INLINE void rotate_rounds(__m128i *v, size_t nv, int rounds)
{
    UNROLL
    for (int r = 0; r < rounds; r++) {
        if (nv == 8)
            round8(v);
        else
            round16(v);
    }
}

/* es is 8 or 16; returns how many leading elements were done. Two blocks per pass
 * store 32 bytes to each plane: planes a power of two apart alias in the cache, and
 * 16-byte stores measured 20% (es 8) to 40% (es 16) slower there. */
SIMD_INLINE size_t shuffle_simd(uint8_t *restrict dst, const uint8_t *restrict src,
                                size_t es, size_t nelem)
{
    __m128i a[16], b[16];
    size_t i;

    for (i = 0; i + 32 <= nelem; i += 32) {
        UNROLL
        for (size_t k = 0; k < es; k++) {
            a[k] = _mm_loadu_si128((const __m128i *)(src + i * es + 16 * k));
            b[k] = _mm_loadu_si128((const __m128i *)(src + (i + 16) * es + 16 * k));
        }
        rotate_rounds(a, es, 4);
        rotate_rounds(b, es, 4);
        UNROLL
        for (size_t j = 0; j < es; j++) {
            _mm_storeu_si128((__m128i *)(dst + j * nelem + i), a[j]);
            _mm_storeu_si128((__m128i *)(dst + j * nelem + i + 16), b[j]);
        }
    }
    return i;
}

SIMD_INLINE size_t unshuffle_simd(uint8_t *restrict dst, const uint8_t *restrict src,
                                  size_t es, size_t nelem)
{
    __m128i v[16];
    size_t i;

    for (i = 0; i + 16 <= nelem; i += 16) {
        UNROLL
        for (size_t j = 0; j < es; j++)
            v[j] = _mm_loadu_si128((const __m128i *)(src + j * nelem + i));
        rotate_rounds(v, es, es == 8 ? 3 : 4);
        UNROLL
        for (size_t k = 0; k < es; k++)
            _mm_storeu_si128((__m128i *)(dst + i * es + 16 * k), v[k]);
    }
    return i;
}
#else
#define shuffle_simd(dst, src, es, nelem) ((size_t)0) /* all elements scalar */
#define unshuffle_simd(dst, src, es, nelem) ((size_t)0)
#endif

static void shuffle(void *dst, const void *src, size_t es, size_t nbytes)
{
    size_t nelem = nbytes / es, body = nelem * es;

    if (es == 8)
        shuffle_body(dst, src, 8, shuffle_simd(dst, src, 8, nelem), nelem);
    else if (es == 16)
        shuffle_body(dst, src, 16, shuffle_simd(dst, src, 16, nelem), nelem);
    else
        shuffle_body(dst, src, es, 0, nelem);
    memcpy((uint8_t *)dst + body, (const uint8_t *)src + body, nbytes - body);
}

static void unshuffle(void *dst, const void *src, size_t es, size_t nbytes)
{
    size_t nelem = nbytes / es, body = nelem * es;

    if (es == 8)
        unshuffle_body(dst, src, 8, unshuffle_simd(dst, src, 8, nelem), nelem);
    else if (es == 16)
        unshuffle_body(dst, src, 16, unshuffle_simd(dst, src, 16, nelem), nelem);
    else
        unshuffle_body(dst, src, es, 0, nelem);
    memcpy((uint8_t *)dst + body, (const uint8_t *)src + body, nbytes - body);
}

/* ---- per-thread zstd contexts ------------------------------------------------------
 * Freed by the key destructors when a thread exits. If keys cannot be had, callers
 * fall back to zstd's one-shot functions (same bytes, slower).
 */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t cctx_key, dctx_key;
static int tls_ready;

static void free_cctx(void *cctx)
{
    ZSTD_freeCCtx(cctx);
}

static void free_dctx(void *dctx)
{
    ZSTD_freeDCtx(dctx);
}

static void tls_init(void)
{
    if (pthread_key_create(&cctx_key, free_cctx) != 0)
        return;
    if (pthread_key_create(&dctx_key, free_dctx) != 0) {
        pthread_key_delete(cctx_key);
        return;
    }
    tls_ready = 1;
}

static ZSTD_CCtx *thread_cctx(void)
{
    ZSTD_CCtx *cctx;

    if (pthread_once(&tls_once, tls_init) != 0 || !tls_ready)
        return NULL;
    cctx = pthread_getspecific(cctx_key);
    if (!cctx && (cctx = ZSTD_createCCtx()) && pthread_setspecific(cctx_key, cctx) != 0) {
        ZSTD_freeCCtx(cctx);
        cctx = NULL;
    }
    return cctx;
}

static ZSTD_DCtx *thread_dctx(void)
{
    ZSTD_DCtx *dctx;

    if (pthread_once(&tls_once, tls_init) != 0 || !tls_ready)
        return NULL;
    dctx = pthread_getspecific(dctx_key);
    if (!dctx && (dctx = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, dctx) != 0) {
        ZSTD_freeDCtx(dctx);
        dctx = NULL;
    }
    return dctx;
}

/* ---- compressors -------------------------------------------------------------------- */

/* Same bytes as the filter's ZSTD_compress: the simple API ignores a context's
 * sticky parameters, and always writes the content size, no checksum. */
static int zstd_encode(int level, const void *src, size_t nbytes, void *dst, size_t capacity,
                       size_t *encoded_size)
{
    ZSTD_CCtx *cctx = thread_cctx();
    size_t n = cctx ? ZSTD_compressCCtx(cctx, dst, capacity, src, nbytes, level)
                    : ZSTD_compress(dst, capacity, src, nbytes, level);

    if (ZSTD_isError(n))
        return NGS_ERR_CODEC;
    *encoded_size = n;
    return NGS_OK;
}

/* Decoding must fill exactly decoded_size bytes: a frame that says otherwise is corrupt. */
static int zstd_decode(const void *src, size_t src_size, void *dst, size_t decoded_size)
{
    ZSTD_DCtx *dctx = thread_dctx();
    size_t n = dctx ? ZSTD_decompressDCtx(dctx, dst, decoded_size, src, src_size)
                    : ZSTD_decompress(dst, decoded_size, src, src_size);

    return ZSTD_isError(n) || n != decoded_size ? NGS_ERR_CODEC : NGS_OK;
}

/* HDF5's deflate filter calls compress2(level) on the whole chunk; so do we. */
static int deflate_encode(int level, const void *src, size_t nbytes, void *dst,
                          size_t capacity, size_t *encoded_size)
{
    uLongf n = capacity > ULONG_MAX ? ULONG_MAX : (uLongf)capacity;

    if (nbytes > ULONG_MAX)
        return NGS_ERR_ARG;
    if (compress2(dst, &n, src, (uLong)nbytes, level) != Z_OK)
        return NGS_ERR_CODEC;
    *encoded_size = n;
    return NGS_OK;
}

static int deflate_decode(const void *src, size_t src_size, void *dst, size_t decoded_size)
{
    uLongf n = (uLongf)decoded_size;

    if (src_size > ULONG_MAX || decoded_size > ULONG_MAX)
        return NGS_ERR_ARG;
    if (uncompress(dst, &n, src, (uLong)src_size) != Z_OK || n != decoded_size)
        return NGS_ERR_CODEC;
    return NGS_OK;
}

static int copy_encode(const void *src, size_t nbytes, void *dst, size_t capacity,
                       size_t *encoded_size)
{
    if (capacity < nbytes)
        return NGS_ERR_CODEC;
    memcpy(dst, src, nbytes);
    *encoded_size = nbytes;
    return NGS_OK;
}

static int copy_decode(const void *src, size_t src_size, void *dst, size_t decoded_size)
{
    if (src_size != decoded_size)
        return NGS_ERR_CODEC;
    memcpy(dst, src, decoded_size);
    return NGS_OK;
}

/* ---- public chunk API ---------------------------------------------------------------- */

/* dst too small for the result is NGS_ERR_CODEC; size dst with ngs_codec_bound. */
int ngs_codec_encode(ngs_codec codec, int level, size_t elem_size,
                     const void *src, size_t nbytes,
                     void *dst, size_t dst_capacity, size_t *encoded_size,
                     void *scratch)
{
    const void *input = src;
    int resolved, rc;

    if (!encoded_size)
        return NGS_ERR_ARG;
    *encoded_size = 0;
    if (!src || !dst || elem_size == 0)
        return NGS_ERR_ARG;
    if ((rc = resolve_level(codec, level, &resolved)) != NGS_OK)
        return rc;
    if (codec == NGS_CODEC_NONE)
        return copy_encode(src, nbytes, dst, dst_capacity, encoded_size);
    if (shuffle_applies(elem_size, nbytes)) {
        if (!scratch)
            return NGS_ERR_ARG;
        shuffle(scratch, src, elem_size, nbytes);
        input = scratch;
    }
    if (codec == NGS_CODEC_ZSTD)
        return zstd_encode(resolved, input, nbytes, dst, dst_capacity, encoded_size);
    return deflate_encode(resolved, input, nbytes, dst, dst_capacity, encoded_size);
}

/* Corrupt, truncated or wrongly sized input is NGS_ERR_CODEC; dst may be scribbled on. */
int ngs_codec_decode(ngs_codec codec, size_t elem_size,
                     const void *src, size_t src_size,
                     void *dst, size_t decoded_size, void *scratch)
{
    int shuffled = codec != NGS_CODEC_NONE && shuffle_applies(elem_size, decoded_size);
    void *out = shuffled ? scratch : dst;
    int rc;

    if (!src || !dst || !out || elem_size == 0)
        return NGS_ERR_ARG;
    switch (codec) {
    case NGS_CODEC_ZSTD:
        rc = zstd_decode(src, src_size, out, decoded_size);
        break;
    case NGS_CODEC_DEFLATE:
        rc = deflate_decode(src, src_size, out, decoded_size);
        break;
    case NGS_CODEC_NONE:
        return copy_decode(src, src_size, dst, decoded_size);
    default:
        return NGS_ERR_ARG;
    }
    if (rc == NGS_OK && shuffled)
        unshuffle(dst, out, elem_size, decoded_size);
    return rc;
}

/* ---- HDF5 side -------------------------------------------------------------------------- */

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_status = NGS_ERR_HDF5;

/* H5Zfilter_avail also searches the plugin path; a 32015 found there decodes our
 * frames just as well, so it is kept. Its "not found" is not an error here. */
static void register_zstd_once(void)
{
    htri_t avail;

    H5E_BEGIN_TRY
    {
        avail = H5Zfilter_avail(NGS_H5Z_FILTER_ZSTD);
    }
    H5E_END_TRY;
    if (avail > 0)
        register_status = NGS_OK;
    else
        register_status = H5Zregister(&ngs_zstd_filter_class) < 0 ? NGS_ERR_HDF5 : NGS_OK;
}

int ngs_codec_register_zstd(void)
{
    if (pthread_once(&register_once, register_zstd_once) != 0)
        return NGS_ERR_HDF5;
    return register_status;
}

/* The shuffle filter takes its element size from the dataset's datatype when the
 * dataset is created; elem_size is only checked here, and must be what the writer
 * passes to ngs_codec_encode (H5Tget_size of that datatype). Registers zstd first,
 * since H5Dcreate refuses a mandatory filter it cannot find. */
int ngs_codec_set_filters(hid_t dcpl, ngs_codec codec, int level, size_t elem_size)
{
    unsigned int cd_level;
    int resolved, rc;

    if (dcpl < 0 || elem_size == 0)
        return NGS_ERR_ARG;
    if ((rc = resolve_level(codec, level, &resolved)) != NGS_OK)
        return rc;
    if (codec == NGS_CODEC_NONE)
        return NGS_OK;
    if (codec == NGS_CODEC_ZSTD && (rc = ngs_codec_register_zstd()) != NGS_OK)
        return rc;
    if (H5Pset_shuffle(dcpl) < 0)
        return NGS_ERR_HDF5;
    cd_level = (unsigned int)resolved;
    if (codec == NGS_CODEC_ZSTD)
        rc = H5Pset_filter(dcpl, NGS_H5Z_FILTER_ZSTD, H5Z_FLAG_MANDATORY, 1, &cd_level) < 0;
    else
        rc = H5Pset_deflate(dcpl, cd_level) < 0;
    return rc ? NGS_ERR_HDF5 : NGS_OK;
}
