/* ngs_check.h - shared runner for the Check unit tests: one suite, exit status for ctest. */
#ifndef NGS_TESTS_CHECK_H
#define NGS_TESTS_CHECK_H
#include <check.h>
#include <stdlib.h>

static inline int ngs_run_suite(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
