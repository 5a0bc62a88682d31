/* zstd_filter.h - the HDF5 zstd filter (id 32015), shared by the library and the plugin. */
#ifndef NGS_STORAGE_ZSTD_FILTER_H
#define NGS_STORAGE_ZSTD_FILTER_H
#include <hdf5.h>
extern const H5Z_class2_t ngs_zstd_filter_class;
#endif
