/* h5attr.h - reading and writing the scalar attributes of ngscale's schema, and
 * walking its groups.
 * Strings are variable-length UTF-8. Writers replace an existing attribute. */
#ifndef NGS_STORAGE_H5ATTR_H
#define NGS_STORAGE_H5ATTR_H
#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* 0 on success, -1 on an HDF5 error (as HDF5 itself returns). */
int ngs_h5_attr_write_str(hid_t obj, const char *key, const char *value);
int ngs_h5_attr_write_i64(hid_t obj, const char *key, int64_t value);
int ngs_h5_attr_write_f64(hid_t obj, const char *key, double value);

/* The string, malloc'ed; NULL when absent or not a string. */
char *ngs_h5_attr_dup_str(hid_t obj, const char *key);
/* dflt when absent or unreadable. */
long long ngs_h5_attr_read_i64(hid_t obj, const char *key, long long dflt);
double ngs_h5_attr_read_f64(hid_t obj, const char *key, double dflt);

/* H5Literate over g's links in creation order where g tracks it (ngscale's files), else
 * in name order (a group written without it, as by h5py without track_order, has no
 * creation-order index, and iterating by one lists nothing). HDF5's error stack is
 * silenced; returns what H5Literate returns. */
herr_t ngs_h5_iterate_links(hid_t g, H5L_iterate_t op, void *data);

/* A variable-length UTF-8 string type (caller closes it). */
hid_t ngs_h5_vlen_str_type(void);
#endif
