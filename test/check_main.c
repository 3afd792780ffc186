/*
 * check_main.c: the one Check runner for every suite of the project, so
 * that `make test` ends with a single Check summary line and exits
 * non-zero when any test fails.
 *
 * Each suite lives in test/<area>/check_<module>.c and exports
 * `Suite *<module>_suite(void)`; add it to LM_SUITES below.
 * Set CK_RUN_SUITE / CK_RUN_CASE to run a subset.
 */
#include <check.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>

#define LM_SUITES(X)                                                                               \
    X(err)                                                                                         \
    X(log)                                                                                         \
    X(config)                                                                                      \
    X(mpscq)                                                                                       \
    X(mp)                                                                                          \
    X(batch)                                                                                       \
    X(time)                                                                                        \
    X(row)                                                                                         \
    X(state)                                                                                       \
    X(expr)                                                                                        \
    X(proto)                                                                                       \
    X(rt)                                                                                          \
    X(transport)                                                                                   \
    X(nexmark)                                                                                     \
    X(engine)                                                                                      \
    X(join)                                                                                        \
    X(file_source)                                                                                 \
    X(operators)                                                                                   \
    X(nexmark_oracle)                                                                              \
    X(recovery)                                                                                    \
    X(distributed)                                                                                 \
    X(jobstats)                                                                                    \
    X(sql_parse)                                                                                   \
    X(sql_errors)                                                                                  \
    X(sql_plan)                                                                                    \
    X(metastore)                                                                                   \
    X(ms_actor)                                                                                    \
    X(api)                                                                                         \
    X(scheduler)                                                                                   \
    X(cli)                                                                                         \
    X(standalone)                                                                                  \
    X(cluster)

#define LM_SUITE_DECL(name) Suite *name##_suite(void);
LM_SUITES(LM_SUITE_DECL)
#undef LM_SUITE_DECL

/* At the exit of each test process, nng's reaper threads finish freeing
 * the sockets a test closed (nng frees them after nng_close returns), so
 * that the leak checker sees only what the test itself lost. */
static void
nng_quiesce(void)
{
    nng_fini();
}

int
main(void)
{
    SRunner *sr = srunner_create(NULL);
    int failed;

    atexit(nng_quiesce);
#define LM_SUITE_ADD(name) srunner_add_suite(sr, name##_suite());
    LM_SUITES(LM_SUITE_ADD)
#undef LM_SUITE_ADD

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
