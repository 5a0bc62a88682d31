/*
 * bounded.c - the "bounded" chunk codec: every sample within E of the original.
 *
 * Per component (complex: r and i separately), per chunk:
 *   o = min, step = 2(E - margin), k_i = the smallest integer near (x_i - o)/step for
 *   which x^_i = fma(k_i, step, o) satisfies |x^_i - x_i| <= E in exact arithmetic
 *   (TwoSum); none: the sample is an escape stored verbatim. margin = ulp(max|x| + E)
 *   absorbs the rounding of the fma, so the nearest k always passes (|error| <=
 *   E - margin/2); escapes only carry NaN/Inf.
 *   Prediction runs on the integers k (= on the reconstructed values, exactly): order
 *   0..3 polynomial extrapolation, whichever gives the fewest residual bits; residuals
 *   zigzagged, split into byte planes, then one zstd frame with a content checksum for
 *   the whole chunk.
 * The decoder is integer prefix sums plus one correctly rounded fma per sample, so its
 * output does not depend on compiler flags (no FMA-contraction drift) or threads.
 *
 * Chunk = header | zstd frame (payload). Header, little-endian:
 *    0 "NGBQ"  4 u8 version  5 u8 elem_size  6 u8 ncomp  7 u8 0
 *    8 u64 nelem  16 u64 payload_size  24 ncomp x component (48 bytes)  then u32
 *   FNV-1a of all header bytes before it. Component: u8 mode (0 lossless, 1 quantized),
 *   u8 order, u8 width, u8 0, u32 nesc, f64 E, f64 o, f64 step, u64 0, u64 nesc_idx_bytes.
 * Payload per component: quantized = the zigzagged residuals as width byte planes
 *   (plane j = byte j of every residual, like HDF5's shuffle: high planes of small
 *   residuals are zeros zstd removes) | escape indices (varint: first, then deltas) |
 *   escape values (8 bytes each); lossless = the 8*nelem bytes of the values,
 *   byte-shuffled.
 */
#include "storage/bounded.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zstd.h>

#ifdef __FAST_MATH__
#error "bounded.c relies on exact IEEE arithmetic (TwoSum, fma): do not build it with -ffast-math"
#endif

/* The per-sample loops call fma(); x86-64 builds without -mfma make that a library
 * call. GCC clones them for FMA hardware (an ifunc picks one at load time): fma() is
 * correctly rounded in both, so both clones give the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__FMA__)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FMA_CLONES
#endif

#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#else
#define HOT_INLINE static inline
#endif

#define MAGIC "NGBQ"
#define HDR_FIXED 24
#define HDR_COMP 48
#define HDR_MAX (HDR_FIXED + 2 * HDR_COMP + 4)
#define KMAX_STEPS 1125899906842624.0 /* 2^50: k, and residuals, stay far inside int64 */
#define MIN_E_OVER_ULP 64.0           /* below this, quantizing saves < 6 bits: lossless */
#define DEFAULT_ZSTD_LEVEL 1
#define MAX_CHUNK ((size_t)UINT32_MAX)

struct ngs_bounded_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    uint8_t *payload;
    size_t payload_cap;
    int64_t *k;
    size_t k_cap;
    uint32_t *esc;
    size_t esc_cap;
};

/* ---- little-endian helpers ---------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Chunk bytes are the file's little-endian float64, whatever the host; on a
 * little-endian host a plain load (the byte loops above do not fold into one). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline double load_f64(const uint8_t *p)
{
    double d;
    memcpy(&d, p, 8);
    return d;
}

static inline void store_f64(uint8_t *p, double d)
{
    memcpy(p, &d, 8);
}

static inline uint64_t load_u64(const uint8_t *p)
{
    uint64_t u;
    memcpy(&u, p, 8);
    return u;
}
#else
static inline double load_f64(const uint8_t *p)
{
    return bitsd(get_u64(p));
}

static inline void store_f64(uint8_t *p, double d)
{
    put_u64(p, dbits(d));
}

static inline uint64_t load_u64(const uint8_t *p)
{
    return get_u64(p);
}
#endif

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static size_t header_size(int ncomp)
{
    return HDR_FIXED + (size_t)ncomp * HDR_COMP + 4;
}

/* ---- params --------------------------------------------------------------------------- */

static int err_ok(double e)
{
    return e == 0.0 || (isfinite(e) && e > 0.0);
}

int ngs_bounded_check_params(const ngs_bounded_params *p)
{
    if (!p || !err_ok(p->abs_err) || !err_ok(p->rel_err))
        return NGS_ERR_ARG;
    if (p->abs_err == 0.0 && p->rel_err == 0.0)
        return NGS_ERR_ARG;
    if (p->zstd_level != 0 &&
        (p->zstd_level < ZSTD_minCLevel() || p->zstd_level > ZSTD_maxCLevel()))
        return NGS_ERR_ARG;
    return NGS_OK;
}

int ngs_bounded_params_to_cd(const ngs_bounded_params *p, size_t elem_size, unsigned int cd[])
{
    uint64_t a, r;
    if (!cd || ngs_bounded_check_params(p) != NGS_OK || (elem_size != 8 && elem_size != 16))
        return NGS_ERR_ARG;
    a = dbits(p->abs_err);
    r = dbits(p->rel_err);
    cd[0] = NGS_BOUNDED_VERSION;
    cd[1] = NGS_BOUNDED_METHOD_QPZ;
    cd[2] = (unsigned int)(a & 0xffffffffu);
    cd[3] = (unsigned int)(a >> 32);
    cd[4] = (unsigned int)(r & 0xffffffffu);
    cd[5] = (unsigned int)(r >> 32);
    cd[6] = (unsigned int)elem_size;
    cd[7] = (unsigned int)p->zstd_level; /* negative levels wrap, as in the zstd filter */
    return NGS_OK;
}

int ngs_bounded_params_from_cd(size_t cd_nelmts, const unsigned int cd[], ngs_bounded_params *p,
                               size_t *elem_size)
{
    if (!cd || !p || !elem_size || cd_nelmts < NGS_BOUNDED_CD_NELMTS)
        return NGS_ERR_ARG;
    if (cd[0] != NGS_BOUNDED_VERSION || cd[1] != NGS_BOUNDED_METHOD_QPZ)
        return NGS_ERR_ARG;
    p->abs_err = bitsd((uint64_t)cd[2] | (uint64_t)cd[3] << 32);
    p->rel_err = bitsd((uint64_t)cd[4] | (uint64_t)cd[5] << 32);
    p->zstd_level = (int)cd[7];
    *elem_size = cd[6];
    if (*elem_size != 8 && *elem_size != 16)
        return NGS_ERR_ARG;
    return ngs_bounded_check_params(p);
}

/* ---- defaults ------------------------------------------------------------------------- */

/* Scale-like types stay lossless: an error in time or frequency moves every sample. */
static int lossless_type(const char *t)
{
    size_t n = strlen(t);
    return strcasecmp(t, "time") == 0 || strcasecmp(t, "frequency") == 0 ||
           (n >= 6 && strcasecmp(t + n - 6, "-sweep") == 0);
}

/* ntol (0 = none) and the relative factor for a type; -1 for lossless types. */
static int default_rule(const char *type_name, double *ntol)
{
    const char *t = type_name ? type_name : "";
    if (lossless_type(t))
        return -1;
    if (strcasecmp(t, "voltage") == 0)
        *ntol = NGS_SPICE_VNTOL;
    else if (strcasecmp(t, "current") == 0)
        *ntol = NGS_SPICE_ABSTOL;
    else
        *ntol = 0.0;
    return 0;
}

int ngs_bounded_default_params(const char *type_name, ngs_bounded_params *out)
{
    double ntol;
    if (!out || default_rule(type_name, &ntol) < 0)
        return NGS_ERR_ARG;
    out->abs_err = ntol / NGS_BOUNDED_DEFAULT_MARGIN;
    out->rel_err = NGS_SPICE_RELTOL / NGS_BOUNDED_DEFAULT_MARGIN;
    out->zstd_level = 0;
    return NGS_OK;
}

/* Same arithmetic as the encoder given ngs_bounded_default_params (component_err), so
 * both give the same E to the bit. */
double ngs_bounded_default_abs_err(const char *type_name, double chunk_range)
{
    ngs_bounded_params p;
    double e;
    if (ngs_bounded_default_params(type_name, &p) != NGS_OK || !isfinite(chunk_range) ||
        !(chunk_range > 0.0))
        return 0.0;
    e = p.rel_err * chunk_range;
    return p.abs_err > 0.0 && p.abs_err < e ? p.abs_err : e;
}

/* ---- context ---------------------------------------------------------------------------- */

int ngs_bounded_ctx_create(ngs_bounded_ctx **ctx)
{
    ngs_bounded_ctx *c;
    if (!ctx)
        return NGS_ERR_ARG;
    *ctx = NULL;
    if (!(c = calloc(1, sizeof *c)))
        return NGS_ERR_NOMEM;
    *ctx = c;
    return NGS_OK;
}

void ngs_bounded_ctx_free(ngs_bounded_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    free(ctx->payload);
    free(ctx->k);
    free(ctx->esc);
    free(ctx);
}

static int grow(void **buf, size_t *cap, size_t need)
{
    void *p;
    if (*cap >= need)
        return NGS_OK;
    if (!(p = malloc(need ? need : 1)))
        return NGS_ERR_NOMEM;
    free(*buf);
    *buf = p;
    *cap = need;
    return NGS_OK;
}

size_t ngs_bounded_bound(size_t nbytes)
{
    size_t z;
    if (nbytes > MAX_CHUNK)
        return 0;
    z = ZSTD_compressBound(nbytes + 64);
    return ZSTD_isError(z) ? 0 : HDR_MAX + z;
}

/* ---- exact arithmetic ------------------------------------------------------------------ */

/* |a - b| <= e, decided exactly: s + t = a - b exactly (TwoSum, no products, so no
 * contraction can change it). Conservative only when |s| > e, which never accepts. */
HOT_INLINE int within(double a, double b, double e)
{
    double nb = -b, s = a + nb, bp = s - a, ap = s - bp;
    double t = (a - ap) + (nb - bp);
    double as = fabs(s);
    if (as < e)
        return 1; /* |t| <= ulp(s)/2 < e - |s|, since e and s are doubles */
    if (as > e || as != as)
        return 0;
    return t == 0.0 || (s > 0.0) != (t > 0.0);
}

/* The reconstruction both sides compute: one rounding, whatever the compiler does. */
HOT_INLINE double recon(int64_t k, double step, double o)
{
    return fma((double)k, step, o);
}

static inline uint64_t zigzag(int64_t r)
{
    return r < 0 ? ~((uint64_t)r << 1) : (uint64_t)r << 1;
}

static inline int64_t unzigzag(uint64_t z)
{
    return (z & 1) ? (int64_t)~(z >> 1) : (int64_t)(z >> 1);
}

static inline unsigned bitlen(uint64_t z)
{
    return z ? 64u - (unsigned)__builtin_clzll(z) : 0u;
}

/* bitlen, but 1 for 0 (no branch): only compared between orders, so the same for all */
static inline unsigned cost_bits(uint64_t z)
{
    return 64u - (unsigned)__builtin_clzll(z | 1);
}

/* Prediction of order q from the last three integers (wrapping: the decoder may see
 * corrupt data; the encoder's values are < 2^52 and never wrap). */
static inline uint64_t predict(int q, uint64_t k1, uint64_t k2, uint64_t k3)
{
    switch (q) {
    case 0:
        return 0;
    case 1:
        return k1;
    case 2:
        return 2 * k1 - k2;
    default:
        return 3 * k1 - 3 * k2 + k3;
    }
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* 0 on a truncated or over-long varint. */
static size_t get_varint(const uint8_t *p, size_t avail, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t n = 0; n < avail && n < 10; n++) {
        r |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if (!(p[n] & 0x80)) {
            *v = r;
            return n + 1;
        }
    }
    return 0;
}

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct {
    int mode, order, width;
    uint32_t nesc;
    double err, o, step;
    uint64_t nidx;
} comp_hdr;

/* Value i of component c (chunk bytes are little-endian float64). */
static inline double comp_value(const uint8_t *src, size_t es, int c, size_t i)
{
    return load_f64(src + i * es + (size_t)c * 8);
}

static void encode_lossless(const uint8_t *src, size_t es, int c, size_t nelem, size_t nv,
                            uint8_t *out, comp_hdr *h)
{
    for (size_t i = 0; i < nelem; i++) {
        uint64_t u = load_u64(src + (i < nv ? i : nv - 1) * es + (size_t)c * 8);
        for (int j = 0; j < 8; j++)
            out[(size_t)j * nelem + i] = (uint8_t)(u >> (8 * j));
    }
    memset(h, 0, sizeof *h);
}

/* The E of the component, or 0 for "store losslessly". */
static double component_err(const ngs_bounded_params *p, double lo, double hi)
{
    double e = p->abs_err > 0.0 ? p->abs_err : HUGE_VAL;
    if (p->rel_err > 0.0) {
        double r = p->rel_err * (hi - lo);
        if (!isfinite(r)) /* hi - lo overflowed: halve first */
            r = 2.0 * (p->rel_err * (hi * 0.5 - lo * 0.5));
        if (r < e)
            e = r;
    }
    return isfinite(e) && e > 0.0 ? e : 0.0;
}

/* k for one finite x, or 0 (escape). The estimate q is the nearest integer up to a
 * few ulps (|t| <= 2^50), so the valid k (|fma(k, step, o) - x| <= e) are among
 * q - 1, q, q + 1: one, or two neighbours when x sits at a midpoint (step < 2e). The
 * smallest valid one is taken, so the choice, and the chunk's bytes, do not depend on
 * how the estimate rounded (FMA contraction, -march): q - 1 is tried first when t is
 * within 1/16 above the midpoint below q. */
HOT_INLINE int quantize_one(double x, double o, double step, double inv, double e, int64_t *k)
{
    double t = (x - o) * inv; /* x >= o: t >= 0, and t + 0.5 truncates as a floor */
    int64_t q = (int64_t)(t + 0.5);
    if (t - (double)q < -0.4375 && within(recon(q - 1, step, o), x, e))
        q -= 1;
    else if (within(recon(q, step, o), x, e))
        ;
    else if (within(recon(q - 1, step, o), x, e))
        q -= 1;
    else if (within(recon(q + 1, step, o), x, e))
        q += 1;
    else
        return 0;
    *k = q;
    return 1;
}

/* Quantizes one component into out (at most limit bytes). Returns 1 when done, 0 when
 * the component must go lossless (no gain possible, or it would not be smaller). */
FMA_CLONES
static int encode_quantized(const ngs_bounded_params *p, const uint8_t *src, size_t es, int c,
                            size_t nelem, size_t nv, int64_t *k, uint32_t *esc, uint8_t *out,
                            size_t limit, size_t *used, comp_hdr *h)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL, e, maxabs, margin, step, inv, o;
    size_t nonfinite = 0, nesc = 0;

    for (size_t i = 0; i < nv; i++) {
        double x = comp_value(src, es, c, i);
        if (!isfinite(x)) {
            nonfinite++;
            continue;
        }
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    if (nonfinite == nv || (e = component_err(p, lo, hi)) == 0.0)
        return 0;
    /* margin >= ulp of any reconstructed value: the fma's rounding stays inside E */
    maxabs = fmax(fabs(lo), fabs(hi)) + e;
    if (!isfinite(maxabs))
        return 0;
    margin = nextafter(maxabs, HUGE_VAL) - maxabs;
    if (!(e >= MIN_E_OVER_ULP * margin))
        return 0;
    step = 2.0 * (e - margin);
    inv = 1.0 / step;
    if (!isfinite(step) || !isfinite(inv) || !((hi - lo) * inv <= KMAX_STEPS))
        return 0;
    o = lo;

    /* integers; an escape keeps the previous k, so its residual costs next to nothing */
    int64_t prev = 0;
    for (size_t i = 0; i < nelem; i++) {
        if (i < nv) {
            double x = comp_value(src, es, c, i);
            if (isfinite(x) && quantize_one(x, o, step, inv, e, &prev))
                ;
            else
                esc[nesc++] = (uint32_t)i;
        }
        k[i] = prev;
    }
    if (nelem + 17 * nesc > limit) /* each escape: index varint (<= 5) + 8 bytes */
        return 0;

    /* the order with the fewest residual bits */
    uint64_t cost[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < nelem; i++) {
        uint64_t k1 = i > 0 ? (uint64_t)k[i - 1] : 0, k2 = i > 1 ? (uint64_t)k[i - 2] : 0,
                 k3 = i > 2 ? (uint64_t)k[i - 3] : 0, ki = (uint64_t)k[i];
        for (int ord = 0; ord < 4; ord++) {
            int q = (size_t)ord < i ? ord : (int)i;
            cost[ord] += cost_bits(zigzag((int64_t)(ki - predict(q, k1, k2, k3))));
        }
    }
    int order = 0;
    for (int ord = 1; ord < 4; ord++)
        if (cost[ord] < cost[order])
            order = ord;

    /* residuals, zigzagged, kept in k (no longer needed) to size the planes */
    uint64_t zmax = 0, k1 = 0, k2 = 0, k3 = 0;
    for (size_t i = 0; i < nelem; i++) {
        int q = (size_t)order < i ? order : (int)i;
        uint64_t ki = (uint64_t)k[i], z = zigzag((int64_t)(ki - predict(q, k1, k2, k3)));
        k3 = k2;
        k2 = k1;
        k1 = ki;
        k[i] = (int64_t)z;
        zmax |= z;
    }
    int width = (int)(bitlen(zmax) + 7) / 8;
    width = width ? width : 1;
    if ((size_t)width * nelem + 17 * nesc > limit)
        return 0;
    for (int j = 0; j < width; j++) {
        uint8_t *plane = out + (size_t)j * nelem;
        const unsigned sh = 8u * (unsigned)j;
        for (size_t i = 0; i < nelem; i++)
            plane[i] = (uint8_t)((uint64_t)k[i] >> sh);
    }
    /* escapes: first index, then deltas; then the values verbatim */
    size_t pos = (size_t)width * nelem, idx_start = pos;
    for (size_t j = 0; j < nesc; j++)
        pos += put_varint(out + pos, j ? esc[j] - esc[j - 1] : esc[0]);
    size_t nidx = pos - idx_start;
    for (size_t j = 0; j < nesc; j++, pos += 8)
        memcpy(out + pos, src + (size_t)esc[j] * es + (size_t)c * 8, 8);

    h->mode = 1;
    h->order = order;
    h->nesc = (uint32_t)nesc;
    h->err = e;
    h->o = o;
    h->step = step;
    h->width = width;
    h->nidx = nidx;
    *used = pos;
    return 1;
}

static int zstd_compress_payload(ngs_bounded_ctx *ctx, int level, const uint8_t *src, size_t n,
                                 uint8_t *dst, size_t cap, size_t *out)
{
    size_t r;
    if (!ctx->cctx && !(ctx->cctx = ZSTD_createCCtx()))
        return NGS_ERR_NOMEM;
    /* same parameters every call: the bytes do not depend on what the ctx did before */
    if (ZSTD_isError(ZSTD_CCtx_reset(ctx->cctx, ZSTD_reset_session_and_parameters)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_contentSizeFlag, 1)))
        return NGS_ERR_CODEC;
    r = ZSTD_compress2(ctx->cctx, dst, cap, src, n);
    if (ZSTD_isError(r))
        return NGS_ERR_CODEC;
    *out = r;
    return NGS_OK;
}

static int encode_with(ngs_bounded_ctx *ctx, const ngs_bounded_params *p, size_t es,
                       const uint8_t *src, size_t nbytes, size_t nvalid, uint8_t *dst,
                       size_t cap, size_t *encoded_size, double *err_used)
{
    int ncomp = (int)(es / 8), rc;
    size_t nelem = nbytes / es, hsz = header_size(ncomp), pos = 0, zsize;
    size_t per = 8 * nelem; /* the most a component may take: its lossless size */
    comp_hdr h[2];
    double emax = 0.0;

    if ((rc = grow((void **)&ctx->payload, &ctx->payload_cap, per * (size_t)ncomp + 64)) ||
        (rc = grow((void **)&ctx->k, &ctx->k_cap, nelem * sizeof(int64_t))) ||
        (rc = grow((void **)&ctx->esc, &ctx->esc_cap, nelem * sizeof(uint32_t))))
        return rc;
    if (nvalid == 0 || nvalid > nelem)
        nvalid = nelem;
    for (int c = 0; c < ncomp; c++) {
        size_t used = 0;
        if (encode_quantized(p, src, es, c, nelem, nvalid, ctx->k, ctx->esc, ctx->payload + pos,
                             per, &used, &h[c])) {
            pos += used;
            emax = h[c].err > emax ? h[c].err : emax;
        } else {
            encode_lossless(src, es, c, nelem, nvalid, ctx->payload + pos, &h[c]);
            pos += per;
        }
    }
    if (cap < hsz)
        return NGS_ERR_CODEC;
    rc = zstd_compress_payload(ctx, p->zstd_level ? p->zstd_level : DEFAULT_ZSTD_LEVEL,
                               ctx->payload, pos, dst + hsz, cap - hsz, &zsize);
    if (rc != NGS_OK)
        return rc;

    memcpy(dst, MAGIC, 4);
    dst[4] = NGS_BOUNDED_VERSION;
    dst[5] = (uint8_t)es;
    dst[6] = (uint8_t)ncomp;
    dst[7] = 0;
    put_u64(dst + 8, nelem);
    put_u64(dst + 16, pos);
    for (int c = 0; c < ncomp; c++) {
        uint8_t *q = dst + HDR_FIXED + (size_t)c * HDR_COMP;
        q[0] = (uint8_t)h[c].mode;
        q[1] = (uint8_t)h[c].order;
        q[2] = (uint8_t)h[c].width;
        q[3] = 0;
        put_u32(q + 4, h[c].nesc);
        store_f64(q + 8, h[c].err);
        store_f64(q + 16, h[c].o);
        store_f64(q + 24, h[c].step);
        put_u64(q + 32, 0);
        put_u64(q + 40, h[c].nidx);
    }
    put_u32(dst + hsz - 4, fnv1a(dst, hsz - 4));
    *encoded_size = hsz + zsize;
    if (err_used)
        *err_used = emax;
    return NGS_OK;
}

int ngs_bounded_encode(ngs_bounded_ctx *ctx, const ngs_bounded_params *p, size_t elem_size,
                       const void *src, size_t nbytes, size_t nvalid, void *dst,
                       size_t dst_capacity, size_t *encoded_size, double *err_used)
{
    ngs_bounded_ctx *own = NULL;
    int rc;

    if (!encoded_size)
        return NGS_ERR_ARG;
    *encoded_size = 0;
    if (err_used)
        *err_used = 0.0;
    if (!src || !dst || (elem_size != 8 && elem_size != 16) || nbytes == 0 ||
        nbytes % elem_size || nbytes > MAX_CHUNK || ngs_bounded_check_params(p) != NGS_OK)
        return NGS_ERR_ARG;
    if (!ctx) {
        if ((rc = ngs_bounded_ctx_create(&own)) != NGS_OK)
            return rc;
        ctx = own;
    }
    rc = encode_with(ctx, p, elem_size, src, nbytes, nvalid, dst, dst_capacity, encoded_size,
                     err_used);
    ngs_bounded_ctx_free(own);
    return rc;
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct {
    size_t es, nelem, payload, hsz;
    int ncomp;
    comp_hdr c[2];
} chunk_hdr;

/* Parses and checks everything the header says, including that the component sizes
 * add up to the payload size. */
static int parse_header(const uint8_t *s, size_t n, chunk_hdr *h)
{
    uint64_t nelem, payload, sum = 0;
    if (n < HDR_FIXED || memcmp(s, MAGIC, 4) != 0 || s[4] != NGS_BOUNDED_VERSION || s[7] != 0)
        return NGS_ERR_CODEC;
    if ((s[5] != 8 || s[6] != 1) && (s[5] != 16 || s[6] != 2))
        return NGS_ERR_CODEC;
    h->es = s[5];
    h->ncomp = s[6];
    h->hsz = header_size(h->ncomp);
    if (n < h->hsz || get_u32(s + h->hsz - 4) != fnv1a(s, h->hsz - 4))
        return NGS_ERR_CODEC;
    nelem = get_u64(s + 8);
    payload = get_u64(s + 16);
    if (nelem == 0 || nelem > MAX_CHUNK / h->es || payload > nelem * h->es)
        return NGS_ERR_CODEC;
    h->nelem = (size_t)nelem;
    h->payload = (size_t)payload;
    for (int c = 0; c < h->ncomp; c++) {
        const uint8_t *q = s + HDR_FIXED + (size_t)c * HDR_COMP;
        comp_hdr *ch = &h->c[c];
        ch->mode = q[0];
        ch->order = q[1];
        ch->nesc = get_u32(q + 4);
        ch->err = load_f64(q + 8);
        ch->o = load_f64(q + 16);
        ch->step = load_f64(q + 24);
        ch->width = q[2];
        ch->nidx = get_u64(q + 40);
        if (q[3] || get_u64(q + 32))
            return NGS_ERR_CODEC;
        if (ch->mode == 0) {
            if (ch->order || ch->width || ch->nesc || ch->nidx || dbits(ch->err) ||
                dbits(ch->o) || dbits(ch->step))
                return NGS_ERR_CODEC;
            sum += 8 * nelem;
        } else if (ch->mode == 1) {
            if (ch->order > 3 || ch->width < 1 || ch->width > 8 || ch->nesc > nelem ||
                !isfinite(ch->err) || !(ch->err > 0) || !isfinite(ch->o) ||
                !isfinite(ch->step) || !(ch->step > 0) || ch->nidx > 10 * (uint64_t)ch->nesc)
                return NGS_ERR_CODEC;
            sum += (uint64_t)ch->width * nelem + ch->nidx + 8 * (uint64_t)ch->nesc;
        } else {
            return NGS_ERR_CODEC;
        }
    }
    return sum == payload ? NGS_OK : NGS_ERR_CODEC;
}

static void decode_lossless(const uint8_t *in, size_t nelem, int c, size_t es, uint8_t *dst)
{
    for (size_t i = 0; i < nelem; i++) {
        uint8_t *d = dst + i * es + (size_t)c * 8;
        for (int j = 0; j < 8; j++)
            d[j] = in[(size_t)j * nelem + i];
    }
}

FMA_CLONES
static int decode_quantized(const uint8_t *in, const comp_hdr *h, size_t nelem, int c,
                            size_t es, uint8_t *dst)
{
    const uint8_t *x = in + (size_t)h->width * nelem, *xend = x + h->nidx, *vals = xend;
    uint64_t k1 = 0, k2 = 0, k3 = 0;

    for (size_t i = 0; i < nelem; i++) {
        uint64_t z = 0, ki;
        int q = (size_t)h->order < i ? h->order : (int)i;
        for (int j = 0; j < h->width; j++)
            z |= (uint64_t)in[(size_t)j * nelem + i] << (8 * j);
        ki = predict(q, k1, k2, k3) + (uint64_t)unzigzag(z);
        store_f64(dst + i * es + (size_t)c * 8, recon((int64_t)ki, h->step, h->o));
        k3 = k2;
        k2 = k1;
        k1 = ki;
    }
    size_t idx = 0;
    for (uint32_t j = 0; j < h->nesc; j++) {
        uint64_t d;
        size_t m = get_varint(x, (size_t)(xend - x), &d);
        if (!m || (j > 0 && d == 0) || d >= nelem - idx)
            return NGS_ERR_CODEC;
        x += m;
        idx += (size_t)d;
        memcpy(dst + idx * es + (size_t)c * 8, vals + 8 * (size_t)j, 8);
    }
    return x == xend ? NGS_OK : NGS_ERR_CODEC;
}

int ngs_bounded_decoded_size(const void *src, size_t src_size, size_t *decoded_size)
{
    chunk_hdr h;
    int rc;
    if (!src || !decoded_size)
        return NGS_ERR_ARG;
    if ((rc = parse_header(src, src_size, &h)) != NGS_OK)
        return rc;
    *decoded_size = h.nelem * h.es;
    return NGS_OK;
}

int ngs_bounded_chunk_info_get(const void *src, size_t src_size, ngs_bounded_chunk_info *info)
{
    chunk_hdr h;
    int rc;
    if (!src || !info)
        return NGS_ERR_ARG;
    if ((rc = parse_header(src, src_size, &h)) != NGS_OK)
        return rc;
    memset(info, 0, sizeof *info);
    info->elem_size = h.es;
    info->nelem = h.nelem;
    info->ncomp = h.ncomp;
    for (int c = 0; c < h.ncomp; c++) {
        info->mode[c] = h.c[c].mode;
        info->order[c] = h.c[c].order;
        info->err[c] = h.c[c].err;
        info->escapes[c] = h.c[c].nesc;
    }
    return NGS_OK;
}

/* The frame must be exactly one zstd frame with its content size and checksum (what
 * the encoder writes), so a flipped flag cannot turn the checksum off. */
static int decode_with(ngs_bounded_ctx *ctx, const uint8_t *s, size_t n, uint8_t *dst,
                       size_t decoded_size)
{
    chunk_hdr h;
    const uint8_t *f;
    size_t fn, got, pos = 0;
    unsigned long long csize;
    int rc;

    if ((rc = parse_header(s, n, &h)) != NGS_OK)
        return rc;
    if (h.nelem * h.es != decoded_size)
        return NGS_ERR_CODEC;
    f = s + h.hsz;
    fn = n - h.hsz;
    if (fn < 6 || get_u32(f) != 0xFD2FB528u || !(f[4] & 0x04))
        return NGS_ERR_CODEC;
    csize = ZSTD_getFrameContentSize(f, fn);
    if (csize != h.payload || ZSTD_findFrameCompressedSize(f, fn) != fn)
        return NGS_ERR_CODEC;
    if ((rc = grow((void **)&ctx->payload, &ctx->payload_cap, h.payload)) != NGS_OK)
        return rc;
    if (!ctx->dctx && !(ctx->dctx = ZSTD_createDCtx()))
        return NGS_ERR_NOMEM;
    got = ZSTD_decompressDCtx(ctx->dctx, ctx->payload, h.payload, f, fn);
    if (ZSTD_isError(got) || got != h.payload)
        return NGS_ERR_CODEC;
    for (int c = 0; c < h.ncomp; c++) {
        const comp_hdr *ch = &h.c[c];
        if (ch->mode == 0) {
            decode_lossless(ctx->payload + pos, h.nelem, c, h.es, dst);
            pos += 8 * h.nelem;
        } else {
            if ((rc = decode_quantized(ctx->payload + pos, ch, h.nelem, c, h.es, dst)) != NGS_OK)
                return rc;
            pos += (size_t)ch->width * h.nelem + ch->nidx + 8 * (size_t)ch->nesc;
        }
    }
    return NGS_OK;
}

int ngs_bounded_decode(ngs_bounded_ctx *ctx, const void *src, size_t src_size, void *dst,
                       size_t decoded_size)
{
    ngs_bounded_ctx *own = NULL;
    int rc;
    if (!src || !dst)
        return NGS_ERR_ARG;
    if (!ctx) {
        if ((rc = ngs_bounded_ctx_create(&own)) != NGS_OK)
            return rc;
        ctx = own;
    }
    rc = decode_with(ctx, src, src_size, dst, decoded_size);
    ngs_bounded_ctx_free(own);
    return rc;
}
