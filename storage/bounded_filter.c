/*
 * bounded_filter.c - HDF5 filter NGS_H5Z_FILTER_BOUNDED (52807), built into libngscale
 * (ngs_bounded_register) and into the libh5zbounded plugin, so ngscale and stock HDF5
 * readers decode chunks with the same code (storage/bounded.c).
 *
 * Forward (H5Dwrite through the pipeline) calls the same encoder as the writer's
 * threads, with the parameters from cd_values, so both write identical chunks.
 * Reverse needs no cd_values: each chunk carries its own header.
 *
 * Buffers: HDF5 owns *buf and frees what we leave there, so new buffers come from
 * H5allocate_memory and the old one goes back through H5free_memory. No per-thread or
 * global state here (the plugin is dlclose()d at H5close); each call makes its own
 * codec context.
 */
#include "storage/bounded.h"

#include <pthread.h>
#include <string.h>

static size_t bf_replace(void **buf, size_t *buf_size, void *out, size_t cap, size_t size)
{
    H5free_memory(*buf);
    *buf = out;
    *buf_size = cap;
    return size;
}

/* Returns the new data size, 0 on failure (HDF5 then reports a filter error). */
static size_t bf_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                        size_t nbytes, size_t *buf_size, void **buf)
{
    ngs_bounded_params p;
    size_t es, cap, size;
    void *out;

    if (!buf || !*buf || !buf_size)
        return 0;
    if (flags & H5Z_FLAG_REVERSE) {
        if (ngs_bounded_decoded_size(*buf, nbytes, &size) != NGS_OK ||
            !(out = H5allocate_memory(size, 0)))
            return 0;
        if (ngs_bounded_decode(NULL, *buf, nbytes, out, size) != NGS_OK) {
            H5free_memory(out);
            return 0;
        }
        return bf_replace(buf, buf_size, out, size, size);
    }
    if (ngs_bounded_params_from_cd(cd_nelmts, cd_values, &p, &es) != NGS_OK ||
        !(cap = ngs_bounded_bound(nbytes)) || !(out = H5allocate_memory(cap, 0)))
        return 0;
    if (ngs_bounded_encode(NULL, &p, es, *buf, nbytes, 0, out, cap, &size, NULL) != NGS_OK) {
        H5free_memory(out);
        return 0;
    }
    return bf_replace(buf, buf_size, out, cap, size);
}

/* The codec reads chunk bytes as little-endian IEEE binary64: an 8-byte float in any
 * other layout (big-endian '>f8', a custom precision) would be quantized as the wrong
 * numbers, so only a type equal to H5T_IEEE_F64LE passes. */
static int bf_f64le(hid_t type)
{
    return H5Tequal(type, H5T_IEEE_F64LE) > 0;
}

/* Puts the reason on HDF5's error stack, where h5py and h5dump show it; returns -1. */
static herr_t bf_refuse(const char *why)
{
    H5Epush2(H5E_DEFAULT, __FILE__, "bounded filter set_local", __LINE__, H5E_ERR_CLS, H5E_PLINE,
             H5E_BADVALUE, "bounded filter (%d): %s", NGS_H5Z_FILTER_BOUNDED, why);
    return -1;
}

/* float64 LE, or a compound of exactly two of them at offsets 0 and 8 ({r, i}). */
static int bf_type_ok(hid_t type)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    int ok = 1;

    if (cls == H5T_FLOAT)
        return bf_f64le(type);
    if (cls != H5T_COMPOUND || size != 16 || H5Tget_nmembers(type) != 2)
        return 0;
    for (unsigned m = 0; m < 2 && ok; m++) {
        hid_t mt = H5Tget_member_type(type, m);
        ok = mt >= 0 && bf_f64le(mt) && H5Tget_member_offset(type, m) == 8 * m;
        if (mt >= 0)
            H5Tclose(mt);
    }
    return ok;
}

static htri_t bf_can_apply(hid_t dcpl, hid_t type, hid_t space)
{
    (void)dcpl;
    (void)space;
    return bf_type_ok(type) ? 1 : 0;
}

/* Fills the element size from the datatype, so a dataset created by another program
 * (h5py: compression=52807, compression_opts=(1, 1, lo, hi, 0, 0)) gets a complete
 * cd_values. A type the codec cannot take gets element size 0: h5py adds filters as
 * optional, and HDF5 keeps an optional filter whose can_apply said no; with size 0 the
 * forward filter declines every chunk, which HDF5 then stores unfiltered (lossless)
 * instead of quantizing integers as if they were doubles. */
static herr_t bf_set_local(hid_t dcpl, hid_t type, hid_t space)
{
    unsigned int flags, cd[NGS_BOUNDED_CD_NELMTS] = {0}, chk[NGS_BOUNDED_CD_NELMTS];
    size_t n = NGS_BOUNDED_CD_NELMTS, es = H5Tget_size(type), es_chk;
    ngs_bounded_params p;
    (void)space;

    if (H5Pget_filter_by_id2(dcpl, NGS_H5Z_FILTER_BOUNDED, &flags, &n, cd, 0, NULL, NULL) < 0)
        return -1;
    if (n > NGS_BOUNDED_CD_NELMTS || n < 6)
        return bf_refuse("needs 6 to 8 cd_values (1, 1, abs_err low and high 32 bits, rel_err "
                         "low and high 32 bits[, element size, zstd level])");
    if (!bf_type_ok(type))
        es = 0;
    else if (n > 6 && cd[6] != 0 && cd[6] != es)
        return bf_refuse("cd_values[6] (element size) differs from the datatype's size");
    cd[6] = (unsigned int)es;
    if (n < 8)
        cd[7] = 0;
    /* Wrong bounds made the forward filter decline every chunk, which HDF5 then stored
     * unfiltered without a word (h5py adds filters as optional): refused here instead. */
    memcpy(chk, cd, sizeof chk);
    chk[6] = 8;
    if (ngs_bounded_params_from_cd(NGS_BOUNDED_CD_NELMTS, chk, &p, &es_chk) != NGS_OK)
        return bf_refuse("cd_values must be version 1, method 1, then abs_err and rel_err as "
                         "the two 32-bit halves (low first) of a double, each 0 (unset) or "
                         "finite and positive, not both 0; [7] a zstd level");
    return H5Pmodify_filter(dcpl, NGS_H5Z_FILTER_BOUNDED, flags, NGS_BOUNDED_CD_NELMTS, cd);
}

const H5Z_class2_t ngs_bounded_filter_class = {
    H5Z_CLASS_T_VERS,                     /* version */
    (H5Z_filter_t)NGS_H5Z_FILTER_BOUNDED, /* id (unregistered range, see bounded.h) */
    1,                                    /* encoder_present */
    1,                                    /* decoder_present */
    "ngscale bounded-error float64 (quantize, predict, zstd)",
    bf_can_apply,
    bf_set_local,
    bf_filter,
};

/* ---- in-process registration ---------------------------------------------------------- */

static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_status = NGS_ERR_HDF5;

/* A 52807 found on the plugin path is our plugin: kept. Its absence is not an error. */
static void register_once_fn(void)
{
    htri_t avail;
    H5E_BEGIN_TRY
    {
        avail = H5Zfilter_avail(NGS_H5Z_FILTER_BOUNDED);
    }
    H5E_END_TRY;
    if (avail > 0)
        register_status = NGS_OK;
    else
        register_status = H5Zregister(&ngs_bounded_filter_class) < 0 ? NGS_ERR_HDF5 : NGS_OK;
}

int ngs_bounded_register(void)
{
    if (pthread_once(&register_once, register_once_fn) != 0)
        return NGS_ERR_HDF5;
    return register_status;
}

int ngs_bounded_set_filters(hid_t dcpl, const ngs_bounded_params *p, size_t elem_size)
{
    unsigned int cd[NGS_BOUNDED_CD_NELMTS];
    int rc;

    if (dcpl < 0 || ngs_bounded_params_to_cd(p, elem_size, cd) != NGS_OK)
        return NGS_ERR_ARG;
    if ((rc = ngs_bounded_register()) != NGS_OK)
        return rc;
    if (H5Pset_filter(dcpl, NGS_H5Z_FILTER_BOUNDED, H5Z_FLAG_MANDATORY, NGS_BOUNDED_CD_NELMTS,
                      cd) < 0)
        return NGS_ERR_HDF5;
    return NGS_OK;
}
