/*
 * h5z_bounded_plugin.c - entry points of libh5zbounded.so, the HDF5 dynamic filter
 * plugin for ngscale's bounded-error codec (id 52807). Stock readers (h5py, h5dump,
 * HDFView) load it from HDF5_PLUGIN_PATH and get float64 back. The filter itself is
 * storage/bounded_filter.c + storage/bounded.c, shared with libngscale. Build with
 * -fvisibility=hidden: only these two symbols are exported.
 */
#include <H5PLextern.h>

#include "storage/bounded.h"

H5PL_type_t H5PLget_plugin_type(void)
{
    return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
    return &ngs_bounded_filter_class;
}
