/* h5attr.c - scalar attributes of ngscale's schema (see h5attr.h). */
#include "storage/h5attr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hid_t ngs_h5_vlen_str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Every HDF5 call takes the library's global lock, which a batch's workers share:
 * one scalar dataspace and one string type serve every attribute write. They are
 * made again if a host's H5close() took them away. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static hid_t shared_space = H5I_INVALID_HID, shared_str = H5I_INVALID_HID;

static int shared_ids(hid_t *space, hid_t *str)
{
    pthread_mutex_lock(&shared_lock);
    if (H5Iget_type(shared_space) != H5I_DATASPACE || H5Iget_type(shared_str) != H5I_DATATYPE) {
        H5E_BEGIN_TRY {
            H5Sclose(shared_space);
            H5Tclose(shared_str);
        } H5E_END_TRY;
        shared_space = H5Screate(H5S_SCALAR);
        shared_str = ngs_h5_vlen_str_type();
    }
    *space = shared_space;
    *str = shared_str;
    pthread_mutex_unlock(&shared_lock);
    return shared_space >= 0 && shared_str >= 0 ? 0 : -1;
}

/* The existing attribute key of obj, when it is a scalar of this type. */
static hid_t open_same(hid_t obj, const char *key, hid_t type)
{
    hid_t attr = H5Aopen(obj, key, H5P_DEFAULT), t, sp;
    int same;
    if (attr < 0) return attr;
    t = H5Aget_type(attr);
    sp = H5Aget_space(attr);
    same = t >= 0 && sp >= 0 && H5Tequal(t, type) > 0 && H5Sget_simple_extent_type(sp) == H5S_SCALAR;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (same) return attr;
    H5Aclose(attr);
    return H5I_INVALID_HID;
}

/* type: a native type, or SHARED_STR for the shared string type */
#define SHARED_STR H5I_INVALID_HID

static int write_scalar(hid_t obj, const char *key, hid_t type, const void *value)
{
    hid_t space, str, attr;
    herr_t rc = -1;
    if (shared_ids(&space, &str) != 0) return -1;
    if (type == SHARED_STR) type = str;
    if (H5Aexists(obj, key) > 0) {
        /* rewritten in place when it matches (a run's status, message...) */
        if ((attr = open_same(obj, key, type)) >= 0) {
            rc = H5Awrite(attr, type, value);
            H5Aclose(attr);
            return rc < 0 ? -1 : 0;
        }
        H5Adelete(obj, key);
    }
    attr = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
        rc = H5Awrite(attr, type, value);
        H5Aclose(attr);
    }
    return rc < 0 ? -1 : 0;
}

int ngs_h5_attr_write_str(hid_t obj, const char *key, const char *value)
{
    const char *v = value ? value : "";
    return write_scalar(obj, key, SHARED_STR, &v);
}

int ngs_h5_attr_write_i64(hid_t obj, const char *key, int64_t value)
{
    return write_scalar(obj, key, H5T_NATIVE_INT64, &value);
}

int ngs_h5_attr_write_f64(hid_t obj, const char *key, double value)
{
    return write_scalar(obj, key, H5T_NATIVE_DOUBLE, &value);
}

char *ngs_h5_attr_dup_str(hid_t obj, const char *key)
{
    hid_t a, t;
    char *out = NULL;
    htri_t exists;
    H5E_BEGIN_TRY { exists = H5Aexists(obj, key); } H5E_END_TRY;
    if (exists <= 0 || (a = H5Aopen(obj, key, H5P_DEFAULT)) < 0) return NULL;
    t = H5Aget_type(a);
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = ngs_h5_vlen_str_type();
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &s) >= 0) out = strdup(s ? s : ""); /* NULL: stored empty */
            if (s) H5free_memory(s);
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *tmp = calloc(1, sz + 1);
            if (tmp && H5Aread(a, t, tmp) >= 0) out = strdup(tmp);
            free(tmp);
        }
    }
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return out;
}

long long ngs_h5_attr_read_i64(hid_t obj, const char *key, long long dflt)
{
    long long v = dflt;
    hid_t a;
    if (H5Aexists(obj, key) <= 0 || (a = H5Aopen(obj, key, H5P_DEFAULT)) < 0) return dflt;
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = dflt;
    H5Aclose(a);
    return v;
}

double ngs_h5_attr_read_f64(hid_t obj, const char *key, double dflt)
{
    double v = dflt;
    hid_t a;
    if (H5Aexists(obj, key) <= 0 || (a = H5Aopen(obj, key, H5P_DEFAULT)) < 0) return dflt;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) v = dflt;
    H5Aclose(a);
    return v;
}

herr_t ngs_h5_iterate_links(hid_t g, H5L_iterate_t op, void *data)
{
    hsize_t idx = 0;
    herr_t rc;
    H5E_BEGIN_TRY {
        rc = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, op, data);
        if (rc < 0 && idx == 0) /* no creation-order index: nothing was visited */
            rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, op, data);
    } H5E_END_TRY;
    return rc;
}
