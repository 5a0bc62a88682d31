/* h5info.h - summary of an ngscale HDF5 file (ngscale info). */
#ifndef NGS_STORAGE_H5INFO_H
#define NGS_STORAGE_H5INFO_H
#include <stdio.h>
#include <stddef.h>

/* Prints runs, plots, vectors, points, stored size and compression ratio. Opens
 * files still being written (SWMR) and files left by a killed writer. */
int ngs_h5_info_print(const char *path, FILE *out, char *err, size_t errlen);
#endif
