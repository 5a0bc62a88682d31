/*
 * h5z_zstd_plugin.c - entry points of libh5zzstd.so, the HDF5 dynamic filter plugin
 * for Zstandard (id 32015). Stock readers (h5dump, h5py, HDFView) load it from
 * HDF5_PLUGIN_PATH or HDF5's default plugin directory; the filter itself is
 * storage/zstd_filter.c, shared with libngscale.
 */
#include <H5PLextern.h>

#include "storage/zstd_filter.h"

H5PL_type_t H5PLget_plugin_type(void)
{
    return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
    return &ngs_zstd_filter_class;
}
