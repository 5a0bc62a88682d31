/* ngs_check.h - shared runner for the Check unit tests: one suite, exit status for ctest. */
#ifndef NGS_TESTS_CHECK_H
#define NGS_TESTS_CHECK_H
#include <check.h>
#include <errno.h>
#include <hdf5.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ngscale.h"

/* An engine with the real libngspice, or the test fails with its error. */
static inline ngs_engine *ngs_check_engine(void)
{
    ngs_engine *e = NULL;
    int rc = ngs_engine_create(&e, NULL);
    ck_assert_msg(rc == NGS_OK, "engine: %s", e ? ngs_engine_last_error(e) : "?");
    return e;
}

static inline int ngs_run_suite(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A temporary directory removed with everything in it, and small file helpers. */
typedef struct {
    char dir[256];
} tmpdir;

static inline void tmp_make(tmpdir *t)
{
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/ngs_test_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(t->dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tmp_free(tmpdir *t)
{
    nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void path_in(const tmpdir *t, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->dir, name);
}

static inline void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static inline unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    b[len] = 0;
    *n = (size_t)len;
    return b;
}

/* A variable-length UTF-8 string attribute of loc/obj (obj "." for loc itself), read
 * with HDF5 alone rather than with the writer's helpers; missing fails the test.
 * The caller frees it. */
static inline char *h5_str_attr(hid_t loc, const char *obj, const char *name)
{
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
    char *s = NULL, *out;
    ck_assert_msg(a >= 0, "no attribute %s on %s", name, obj);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    ck_assert_int_ge(H5Aread(a, t, &s), 0);
    out = strdup(s);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

static inline void check_h5_str_attr(hid_t loc, const char *obj, const char *name, const char *expect)
{
    char *s = h5_str_attr(loc, obj, name);
    ck_assert_msg(strcmp(s, expect) == 0, "%s@%s = '%s', expected '%s'", obj, name, s, expect);
    free(s);
}

#endif
