/*
 * zstd_filter.c - HDF5 filter 32015 (Zstandard), built into libngscale (registered
 * by ngs_codec_register_zstd) and into the libh5zzstd plugin, so ngscale and stock
 * HDF5 tools decode chunks with the same code.
 *
 * Format of the registered filter (as HDF Group's hdf5_plugins writes it): a chunk
 * is one zstd frame with the content size in its header; cd_values[0] is the
 * compression level and only matters when writing.
 *
 * Buffers: HDF5 owns *buf and frees whatever we leave there, so the new buffer
 * comes from H5allocate_memory and the old one goes back through H5free_memory
 * (safe whatever allocator the HDF5 build uses, HDF5 >= 1.8.15).
 *
 * Contexts: this file is also a plugin that HDF5 dlclose()s at H5close, so no
 * thread-local state (its destructor would outlive the code). One decoding context
 * is kept between calls (zf_take): creating one costs ~20 us (zstd probes the CPU),
 * more than decoding a short chunk, and a wide plot's chunks are short (64 points
 * for 100k vectors). Encoding creates its context per call: ngscale encodes chunks
 * itself (codec.c), so the filter only encodes for other programs.
 */
#include "storage/zstd_filter.h"

#include <stdatomic.h>
#include <stdint.h>
#include <zstd.h>

/* A chunk is < 4 GiB in HDF5; a frame that claims more is corrupt. */
#define ZF_MAX_CHUNK ((unsigned long long)UINT32_MAX)
#define ZF_DEFAULT_LEVEL 1

/* The spare decoding context: taken and given back atomically, so that callers at the
 * same time each get one; freed by a destructor, which runs before the library or the
 * plugin is unmapped. */
static _Atomic(ZSTD_DCtx *) zf_spare;

static ZSTD_DCtx *zf_take(void)
{
    ZSTD_DCtx *d = atomic_exchange(&zf_spare, NULL);
    return d ? d : ZSTD_createDCtx();
}

static void zf_give(ZSTD_DCtx *d)
{
    ZSTD_freeDCtx(atomic_exchange(&zf_spare, d)); /* another caller's, or NULL */
}

__attribute__((destructor)) static void zf_unload(void)
{
    ZSTD_freeDCtx(atomic_exchange(&zf_spare, NULL));
}

/* Hands the new buffer to HDF5 in place of the old one. */
static size_t zf_replace(void **buf, size_t *buf_size, void *out, size_t out_capacity,
                         size_t out_size)
{
    H5free_memory(*buf);
    *buf = out;
    *buf_size = out_capacity;
    return out_size;
}

/* Doubles a streaming output buffer; 0 when the chunk limit or memory runs out. */
static int zf_grow(ZSTD_outBuffer *ob)
{
    void *bigger;
    if (ob->size >= ZF_MAX_CHUNK / 2 || !(bigger = H5resize_memory(ob->dst, ob->size * 2)))
        return 0;
    ob->dst = bigger;
    ob->size *= 2;
    return 1;
}

/* Frames without a content size (streaming writers): decode by streaming into a
 * buffer that doubles as needed. Returns the size, or 0 on error or truncation. */
static size_t zf_decompress_stream(const void *src, size_t src_size, void **out,
                                   size_t *out_capacity)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    size_t cap = src_size < 4096 ? 16384 : src_size * 4;
    ZSTD_inBuffer in = {src, src_size, 0};
    ZSTD_outBuffer ob = {H5allocate_memory(cap, 0), cap, 0};
    int ok = 0;

    while (ds && ob.dst) {
        size_t ret = ZSTD_decompressStream(ds, &ob, &in);
        if (ZSTD_isError(ret))
            break;
        if (ret == 0 && in.pos == in.size) { /* last frame ended with the input */
            ok = ob.pos > 0;
            break;
        }
        if (ob.pos < ob.size && in.pos == in.size) /* wants more input: truncated */
            break;
        if (ob.pos == ob.size && !zf_grow(&ob))
            break;
    }
    ZSTD_freeDStream(ds);
    if (!ok) {
        H5free_memory(ob.dst);
        return 0;
    }
    *out = ob.dst;
    *out_capacity = ob.size;
    return ob.pos;
}

/* H5Z_FLAG_REVERSE: frame(s) -> raw chunk. */
static size_t zf_decompress(size_t nbytes, size_t *buf_size, void **buf)
{
    unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    void *out = NULL;
    size_t capacity = 0, got;

    if (size == ZSTD_CONTENTSIZE_ERROR)
        return 0;
    /* No size in the header, or several frames: let the streaming decoder sort it out. */
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || ZSTD_findFrameCompressedSize(*buf, nbytes) != nbytes) {
        got = zf_decompress_stream(*buf, nbytes, &out, &capacity);
        return got ? zf_replace(buf, buf_size, out, capacity, got) : 0;
    }
    if (size == 0 || size > ZF_MAX_CHUNK || !(out = H5allocate_memory((size_t)size, 0)))
        return 0;
    ZSTD_DCtx *d = zf_take();
    got = d ? ZSTD_decompressDCtx(d, out, (size_t)size, *buf, nbytes)
            : ZSTD_decompress(out, (size_t)size, *buf, nbytes);
    zf_give(d);
    if (ZSTD_isError(got) || got != size) {
        H5free_memory(out);
        return 0;
    }
    return zf_replace(buf, buf_size, out, (size_t)size, got);
}

/* Level as written in cd_values (a negative level arrives wrapped), kept in zstd's range. */
static int zf_level(size_t cd_nelmts, const unsigned int cd_values[])
{
    int level = cd_nelmts > 0 ? (int)cd_values[0] : ZF_DEFAULT_LEVEL;
    if (level < ZSTD_minCLevel())
        level = ZSTD_minCLevel();
    if (level > ZSTD_maxCLevel())
        level = ZSTD_maxCLevel();
    return level;
}

/* Forward: raw chunk -> one frame. Must match ngs_codec_encode byte for byte. */
static size_t zf_compress(int level, size_t nbytes, size_t *buf_size, void **buf)
{
    size_t capacity = ZSTD_compressBound(nbytes);
    void *out = H5allocate_memory(capacity, 0);
    size_t got;

    if (!out)
        return 0;
    got = ZSTD_compress(out, capacity, *buf, nbytes, level);
    if (ZSTD_isError(got)) {
        H5free_memory(out);
        return 0;
    }
    return zf_replace(buf, buf_size, out, capacity, got);
}

/* HDF5 filter callback: returns the new data size, 0 on failure. */
static size_t zf_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                        size_t nbytes, size_t *buf_size, void **buf)
{
    if (!buf || !*buf || !buf_size)
        return 0;
    if (flags & H5Z_FLAG_REVERSE)
        return zf_decompress(nbytes, buf_size, buf);
    return zf_compress(zf_level(cd_nelmts, cd_values), nbytes, buf_size, buf);
}

const H5Z_class2_t ngs_zstd_filter_class = {
    H5Z_CLASS_T_VERS,      /* version */
    (H5Z_filter_t)32015,   /* id: registered Zstandard filter */
    1,                     /* encoder_present */
    1,                     /* decoder_present */
    "Zstandard (ngscale)", /* name */
    NULL,                  /* can_apply */
    NULL,                  /* set_local */
    zf_filter,             /* filter */
};
