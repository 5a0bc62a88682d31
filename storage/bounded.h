/*
 * bounded.h - tolerance-bounded compression of float64 waveforms (issue 7).
 *
 * SPICE results are accurate only to reltol/vntol/abstol, yet their low mantissa bits
 * defeat lossless compression (1.4-1.6x). Two lossy codecs with a guaranteed error:
 *
 *  "bounded"  every sample within an absolute bound E of the original: quantize on a
 *             grid of step ~2E, predict in the integer domain, zigzag bytes, zstd.
 *             HDF5 filter NGS_H5Z_FILTER_BOUNDED (built into libngscale; stock readers
 *             load libh5zbounded.so) - readers get float64 back with no extra step.
 *  "bitround" keep N mantissa bits, then the stock shuffle + deflate: no plugin needed,
 *             error <= 2^-(N+1) relative (normal numbers).
 *
 * ==== INTEGRATION (for the lead) =====================================================
 * CMake: storage/bounded.c, storage/bounded_filter.c and storage/bitround.c join the
 *   library through the existing glob of storage's .c files. Add the second plugin
 *   next to h5zzstd, with the same options:
 *     add_library(h5zbounded MODULE storage/h5plugin/h5z_bounded_plugin.c
 *                 storage/bounded_filter.c storage/bounded.c)
 *     target_include_directories(h5zbounded PRIVATE ${CMAKE_SOURCE_DIR}
 *                                ${CMAKE_SOURCE_DIR}/plugin ${HDF5_INCLUDE_DIRS})
 *     target_link_libraries(h5zbounded PRIVATE PkgConfig::ZSTD ${HDF5_C_LIBRARIES} m)
 *     target_compile_options(h5zbounded PRIVATE -fno-sanitize=all)
 *     target_link_options(h5zbounded PRIVATE -fno-sanitize=all)
 *     set_target_properties(h5zbounded PROPERTIES LIBRARY_OUTPUT_DIRECTORY
 *       ${NGSCALE_PLUGIN_DIR} PREFIX "lib" C_VISIBILITY_PRESET hidden)
 *     install(TARGETS h5zbounded LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/hdf5/plugins)
 *   (bounded.c must not be built with -ffast-math: it #errors.)
 * Writer, --codec bounded (--abs-err A / --rel-err R; neither: ngs_bounded_default_params
 *   per vector type), NOT for the scale vector (keep it on zstd):
 *     dcpl:   ngs_bounded_set_filters(dcpl, &params, v->elem)        (instead of
 *             ngs_codec_set_filters; registers the filter; 8 or 16-byte elements)
 *     slots:  one ngs_bounded_ctx per encoder slot (ngs_bounded_ctx_create), output
 *             buffer ngs_bounded_bound(chunk_bytes_max); scratch not needed
 *     encode: ngs_bounded_encode(ctx[k], &params, v->elem, src, bytes, rows,
 *                                dst, ngs_bounded_bound(bytes), &size, &err_used)
 *             rows = valid rows of a partial chunk (the zeroed tail is then excluded
 *             from the chunk range and not preserved), or chunk_points when full.
 *     read back (ngscale info/convert): ngs_bounded_register() once, then plain H5Dread.
 *   Suggested dataset attributes (float64 unless said): `lossy_codec` (str "bounded"
 *   or "bitround"), `lossy_abs_err` (params.abs_err, 0 = unset), `lossy_rel_err`
 *   (params.rel_err, 0 = unset), `lossy_max_abs_err` (max of err_used over the chunks,
 *   the bound that holds for every stored sample), `lossy_bits` (int64, bitround N).
 *   Run attribute `codec` = "bounded" / "bitround"; SCHEMA.md table rows: bounded =
 *   filter 52807 (cd_values below), bitround = shuffle (2) + deflate (1).
 * Writer, --codec bitround --bits N: dcpl ngs_codec_set_filters(dcpl, NGS_CODEC_DEFLATE,
 *   level, elem); encode ngs_bitround_encode(N, level, elem, src, bytes, dst,
 *   ngs_codec_bound(NGS_CODEC_DEFLATE, bytes), &size, scratch of 2*bytes).
 *   --rel-err R with bitround: N = ngs_bitround_bits_for_rel_err(R, &N).
 * =====================================================================================
 *
 * Filter id 52807 (0xCE47 = 0x8000 | "NG"): registered ids are 0-32767 (HDF Group list
 * up to 32030 today); 32768-65535 is the range the HDF Group leaves to applications
 * without tracking. No public code uses 52807. Request an id in the registered range
 * before files leave the project.
 *
 * cd_values (8 x unsigned int, all written by ngs_bounded_set_filters):
 *   [0] format version (1)          [1] method (1 = quantize + predict + zstd)
 *   [2],[3] abs_err, low/high 32 bits of its IEEE-754 binary64 (0.0 = unset)
 *   [4],[5] rel_err, the same way   [6] element size (8 real, 16 complex {r,i})
 *   [7] zstd level (0 = default 1)
 * A reader needs none of them: every chunk carries its own header. Other programs may
 * give only [0]..[5] (h5py: compression=52807, compression_opts=(1, 1, alo, ahi, rlo,
 * rhi)): the filter's set_local fills [6] from the datatype and [7] = 0; a datatype it
 * cannot take (anything but little-endian IEEE float64 and {r, i} of two; big-endian
 * '>f8' included) (can_apply says no: mandatory filter refused at H5Dcreate; h5py adds
 * filters as optional, then every chunk is stored unfiltered, i.e. losslessly).
 * cd_values the encoder cannot use (a bound that is not 0 or finite positive, none
 * set, another version or method, a level outside zstd's) fail H5Dcreate, with the
 * reason on HDF5's error stack.
 * Through the pipeline (H5Dwrite) HDF5 hands the filter the last, partial chunk padded
 * with the fill value, which then counts in the chunk's range (rel_err); the writer's
 * own encode call passes nvalid instead.
 *
 * The bound: for each component of each chunk (complex: r and i separately)
 *   E = min(abs_err, rel_err * (max - min over the chunk's finite values of that
 *   component)), an unset term dropping out. Every decoded finite sample satisfies
 *   |decoded - original| <= E exactly (checked per sample in exact arithmetic when
 *   encoding); the E used is stored in the chunk header. E = 0 (constant chunk in rel
 *   mode), E < 64 ulp(max|x| + E) (quantizing would save < 6 bits), or a range over
 *   2^50 steps: that component of that chunk is stored losslessly (header E = 0).
 *   NaN (payload included) and +-Inf round-trip bit for bit (escapes, stored verbatim).
 *   Subnormals and -0.0 are ordinary values (within E; a zero's sign is not kept).
 *   Bit-reproducible: integer prediction and one correctly rounded fma() per sample;
 *   the encoder picks the smallest valid k, so chunk bytes and decoded values are the
 *   same whatever the thread, compiler, -march or FMA contraction (checked with GCC
 *   and clang, contraction off/fast, -march=native).
 *
 * Every function that can fail returns NGS_OK or a negative NGS_ERR_*. No global
 * mutable state except the one-time filter registration.
 */
#ifndef NGS_STORAGE_BOUNDED_H
#define NGS_STORAGE_BOUNDED_H

#include <stddef.h>
#include <stdint.h>
#include <hdf5.h>
#include "ngscale.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NGS_H5Z_FILTER_BOUNDED 52807
#define NGS_BOUNDED_CD_NELMTS 8
#define NGS_BOUNDED_VERSION 1
#define NGS_BOUNDED_METHOD_QPZ 1 /* quantize, integer prediction, zigzag bytes, zstd */

/* SPICE defaults behind ngs_bounded_default_*: reltol, vntol, abstol, and the margin
 * the stored error stays below them. */
#define NGS_SPICE_RELTOL 1e-3
#define NGS_SPICE_VNTOL 1e-6
#define NGS_SPICE_ABSTOL 1e-12
#define NGS_BOUNDED_DEFAULT_MARGIN 100.0

typedef struct {
    double abs_err; /* absolute bound, > 0 and finite; 0 = unset */
    double rel_err; /* bound relative to the chunk's range per component; 0 = unset */
    int zstd_level; /* 0 = default (1); zstd's range otherwise */
} ngs_bounded_params;

/* NGS_ERR_ARG unless at least one bound is set and each is 0 or finite > 0. */
int ngs_bounded_check_params(const ngs_bounded_params *p);

/* Largest encoded size of a chunk of nbytes (0 if too large: chunks are < 4 GiB). */
size_t ngs_bounded_bound(size_t nbytes);

/* Per-thread state (zstd contexts, scratch buffers grown as needed). Optional: the
 * functions below accept NULL and allocate per call. One thread at a time per ctx. */
typedef struct ngs_bounded_ctx ngs_bounded_ctx;
int ngs_bounded_ctx_create(ngs_bounded_ctx **ctx);
void ngs_bounded_ctx_free(ngs_bounded_ctx *ctx);

/* Encodes one chunk of nbytes (a multiple of elem_size: 8 = float64, 16 = {r,i}).
 * nvalid: elements that carry data (0 or >= nelem: all); those after it are padding,
 * excluded from the range and decoded to unspecified (deterministic) values.
 * Output = what the filter pipeline writes for the chunk (H5Dwrite_chunk, mask 0).
 * err_used (may be NULL): largest E over the components, 0 when all lossless.
 * dst too small is NGS_ERR_CODEC: size it with ngs_bounded_bound. */
int ngs_bounded_encode(ngs_bounded_ctx *ctx, const ngs_bounded_params *p, size_t elem_size,
                       const void *src, size_t nbytes, size_t nvalid,
                       void *dst, size_t dst_capacity, size_t *encoded_size,
                       double *err_used);

/* Decoded size of an encoded chunk, from its header (validated). */
int ngs_bounded_decoded_size(const void *src, size_t src_size, size_t *decoded_size);

/* Inverse of ngs_bounded_encode. decoded_size must be the chunk's size. Corrupt or
 * truncated input: NGS_ERR_CODEC (header checksum, zstd checksum, structure checks);
 * dst may be scribbled on. */
int ngs_bounded_decode(ngs_bounded_ctx *ctx, const void *src, size_t src_size,
                       void *dst, size_t decoded_size);

/* What a chunk header says (for tools and tests). */
typedef struct {
    size_t elem_size, nelem;
    int ncomp;        /* 1 real, 2 complex */
    int mode[2];      /* 0 lossless, 1 quantized */
    int order[2];     /* predictor order 0..3 (quantized) */
    double err[2];    /* E guaranteed for the component, 0 when lossless */
    size_t escapes[2];/* samples stored verbatim (non-finite) */
} ngs_bounded_chunk_info;
int ngs_bounded_chunk_info_get(const void *src, size_t src_size, ngs_bounded_chunk_info *info);

/* Default bound for a vector of RAW type type_name, per chunk (the rule of issue 7):
 *   "voltage": min(vntol,  reltol * range) / 100   (1 V range: 1e-8 V)
 *   "current": min(abstol, reltol * range) / 100   (1 mA range: 1e-14 A)
 *   "time", "frequency", any "*-sweep", NULL-free scale types: 0 (lossless)
 *   anything else (densities, power, phase...): reltol * range / 100
 * range <= 0, NaN or Inf gives 0 = store losslessly. */
double ngs_bounded_default_abs_err(const char *type_name, double chunk_range);

/* The same rule as codec parameters (abs_err = ntol/100, rel_err = reltol/100), for
 * ngs_bounded_set_filters/encode. NGS_ERR_ARG for the lossless (scale) types. */
int ngs_bounded_default_params(const char *type_name, ngs_bounded_params *out);

/* cd_values <-> params (cd must hold NGS_BOUNDED_CD_NELMTS). */
int ngs_bounded_params_to_cd(const ngs_bounded_params *p, size_t elem_size, unsigned int cd[]);
int ngs_bounded_params_from_cd(size_t cd_nelmts, const unsigned int cd[],
                               ngs_bounded_params *p, size_t *elem_size);

/* ---- HDF5 (storage/bounded_filter.c) ---- */
extern const H5Z_class2_t ngs_bounded_filter_class;

/* Registers the filter in this process (idempotent, thread-safe; a plugin found on
 * HDF5_PLUGIN_PATH is kept: same code). */
int ngs_bounded_register(void);

/* Adds the filter to a chunked dataset's dcpl (registers it first). The datatype must
 * be little-endian IEEE float64 (elem_size 8) or a compound of two of them (16). */
int ngs_bounded_set_filters(hid_t dcpl, const ngs_bounded_params *p, size_t elem_size);

/* ---- bit rounding (storage/bitround.c), no plugin needed ----
 * Keeps nbits (0..52) explicit mantissa bits, rounding to nearest, ties to even, on the
 * bit pattern. Normal numbers: |x' - x| <= 2^-(nbits+1) * |x| (ngs_bitround_max_rel_err).
 * Subnormals, NaN, Inf and 0 unchanged (a subnormal has fewer significant bits, so
 * rounding it would break that relative bound: the file records it); a finite
 * value that would round past DBL_MAX is truncated instead (error < 2^-nbits relative
 * there). Rounding a rounded value changes nothing. */
int ngs_bitround(const double *src, double *dst, size_t n, int nbits);
double ngs_bitround_max_rel_err(int nbits); /* 2^-(nbits+1); NaN when out of range */
/* Smallest nbits with 2^-(nbits+1) <= rel_err (1e-6 -> 19); NGS_ERR_ARG for rel_err
 * <= 0 or NaN; rel_err below 2^-53 gives 52 (lossless). */
int ngs_bitround_bits_for_rel_err(double rel_err, int *nbits);
/* Rounds a chunk (nbytes a multiple of 8, any elem_size multiple of 8) into scratch,
 * then ngs_codec_encode(NGS_CODEC_DEFLATE, level, elem_size) - the dataset's filters
 * are ngs_codec_set_filters(dcpl, NGS_CODEC_DEFLATE, level, elem_size).
 * scratch: 2 * nbytes. */
int ngs_bitround_encode(int nbits, int level, size_t elem_size, const void *src, size_t nbytes,
                        void *dst, size_t dst_capacity, size_t *encoded_size, void *scratch);

#ifdef __cplusplus
}
#endif
#endif
