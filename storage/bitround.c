/*
 * bitround.c - keep N mantissa bits of float64, so the stock shuffle + deflate filters
 * compress what is left: a lossy codec every HDF5 reader opens with no plugin.
 *
 * Rounding works on the bit pattern: add half a unit of the last kept bit (minus one,
 * plus that bit: ties to even), then clear the dropped bits. A carry out of the
 * mantissa moves to the next binade, which is the correctly rounded result. For a
 * normal x = m * 2^e (1 <= m < 2) the error is <= 2^(e-N-1) <= 2^-(N+1) |x|.
 * Subnormals stay as they are: their leading mantissa bits are zeros, so N bits of the
 * pattern are fewer significant bits and 1e-310 at N = 20 moved 1e-4 relative (the
 * smallest ones went to 0), past the lossy_rel_err the file records.
 */
#include "storage/bounded.h"

#include <math.h>
#include <string.h>

#include "storage/codec.h"

#define EXP_MASK 0x7ff0000000000000ULL

static inline uint64_t round_bits(uint64_t u, int drop)
{
    uint64_t half, lsb, r;
    /* lossless; NaN / Inf; zero or subnormal */
    if (drop == 0 || (u & EXP_MASK) == EXP_MASK || (u & EXP_MASK) == 0)
        return u;
    half = 1ULL << (drop - 1);
    lsb = (u >> drop) & 1;
    r = (u + half - 1 + lsb) & ~((1ULL << drop) - 1);
    /* rounding past DBL_MAX would give Inf: truncate that one value instead */
    return (r & EXP_MASK) == EXP_MASK ? u & ~((1ULL << drop) - 1) : r;
}

int ngs_bitround(const double *src, double *dst, size_t n, int nbits)
{
    int drop = 52 - nbits;
    if ((!src || !dst) && n)
        return NGS_ERR_ARG;
    if (nbits < 0 || nbits > 52)
        return NGS_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, src + i, 8);
        u = round_bits(u, drop);
        memcpy(dst + i, &u, 8);
    }
    return NGS_OK;
}

double ngs_bitround_max_rel_err(int nbits)
{
    if (nbits < 0 || nbits > 52)
        return (double)NAN;
    return ldexp(1.0, -(nbits + 1));
}

int ngs_bitround_bits_for_rel_err(double rel_err, int *nbits)
{
    int n;
    if (!nbits || !(rel_err > 0.0)) /* also NaN */
        return NGS_ERR_ARG;
    for (n = 0; n < 52 && ldexp(1.0, -(n + 1)) > rel_err; n++)
        ;
    *nbits = n;
    return NGS_OK;
}

/* The chunk bytes are the file's little-endian doubles; on a little-endian host (all
 * ngscale targets) they are the host's. */
int ngs_bitround_encode(int nbits, int level, size_t elem_size, const void *src, size_t nbytes,
                        void *dst, size_t dst_capacity, size_t *encoded_size, void *scratch)
{
    if (!encoded_size)
        return NGS_ERR_ARG;
    *encoded_size = 0;
    if (!src || !dst || !scratch || elem_size == 0 || elem_size % 8 || nbytes % 8)
        return NGS_ERR_ARG;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    return NGS_ERR_ARG;
#endif
    int rc = ngs_bitround(src, scratch, nbytes / 8, nbits);
    if (rc != NGS_OK)
        return rc;
    return ngs_codec_encode(NGS_CODEC_DEFLATE, level, elem_size, scratch, nbytes, dst,
                            dst_capacity, encoded_size, (uint8_t *)scratch + nbytes);
}
