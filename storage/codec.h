/*
 * codec.h - chunk encoders matching HDF5 filter pipelines.
 *
 * The writer compresses chunks itself, on all cores, and hands the bytes to
 * H5Dwrite_chunk. So each codec here must produce exactly what the dataset's
 * filter pipeline (set by ngs_codec_set_filters) would, so that any HDF5 reader
 * decodes it: byte shuffle (HDF5 filter 2) followed by zstd (32015) or deflate (1).
 */
#ifndef NGS_STORAGE_CODEC_H
#define NGS_STORAGE_CODEC_H

#include <stddef.h>
#include <hdf5.h>
#include "ngscale.h"

#define NGS_H5Z_FILTER_ZSTD 32015

/* Default compression level of a codec (zstd -1, deflate 4, none and unknown 0). */
int ngs_codec_default_level(ngs_codec codec);

/* NGS_OK when level (0: the default) suits the codec: zstd's range (negative = fast
 * levels), deflate 1..9, anything for none; NGS_ERR_ARG otherwise, or for a codec
 * that has no levels of its own (bounded, bitround: use zstd's, deflate's). */
int ngs_codec_check_level(ngs_codec codec, int level);

/* Largest encoded size of a chunk of nbytes. */
size_t ngs_codec_bound(ngs_codec codec, size_t nbytes);

/* Adds the codec's filters to a dataset creation property list. */
int ngs_codec_set_filters(hid_t dcpl, ngs_codec codec, int level, size_t elem_size);

/* Encodes one chunk. scratch must hold nbytes. Thread-safe (no shared state). */
int ngs_codec_encode(ngs_codec codec, int level, size_t elem_size,
                     const void *src, size_t nbytes,
                     void *dst, size_t dst_capacity, size_t *encoded_size,
                     void *scratch);

/* Inverse of ngs_codec_encode; decoded_size must equal the chunk's size. */
int ngs_codec_decode(ngs_codec codec, size_t elem_size,
                     const void *src, size_t src_size,
                     void *dst, size_t decoded_size, void *scratch);

/* Registers the zstd filter in this process (idempotent, thread-safe), so ngscale
 * reads its own files without HDF5_PLUGIN_PATH. */
int ngs_codec_register_zstd(void);

#endif
