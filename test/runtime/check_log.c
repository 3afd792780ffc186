/*
 * check_log.c: log lines, formats, levels, and reopening while logging.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_test.h"

static char path[256];

static void
setup(void)
{
    snprintf(path, sizeof(path), "%s/log.txt", lm_test_tmpdir());
}

/* Reads the whole file at p (caller frees). */
static char *
slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    char *buf;
    long n;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static int evaluated;

static const char *
side_effect(void)
{
    evaluated++;
    return "x";
}

START_TEST(test_log_text_line_names_component_and_actor)
{
    lm_log_opts o = {LM_LOG_INFO, LM_LOG_TEXT, false, false, path};
    char *text;

    ck_assert_int_eq(lm_log_configure(&o, NULL), LM_OK);
    lm_log_set_context("link", "transport@1:4.2");
    LM_LOG(LM_LOG_WARN, "peer %d gone", 7);
    LM_LOGC(LM_LOG_ERROR, "config", "bad key");
    LM_LOG(LM_LOG_DEBUG, "hidden %s", side_effect()); /* below the level */
    lm_log_set_context(NULL, NULL);
    text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "WARN  link[transport@1:4.2] peer 7 gone\n"));
    ck_assert_ptr_nonnull(strstr(text, "ERROR config[transport@1:4.2] bad key\n"));
    ck_assert_ptr_null(strstr(text, "hidden"));
    ck_assert_int_eq(evaluated, 0);
    ck_assert(text[4] == '-' && text[10] == 'T' && text[23] == 'Z'); /* ISO 8601, UTC */
    free(text);
}
END_TEST

START_TEST(test_log_json_line_is_escaped)
{
    lm_log_opts o = {LM_LOG_TRACE, LM_LOG_JSON, false, false, path};
    char *text;

    ck_assert_int_eq(lm_log_configure(&o, NULL), LM_OK);
    lm_log_set_context("api", NULL);
    LM_LOG(LM_LOG_INFO, "quote \" backslash \\ newline \n tab \t ctl \x01 end");
    lm_log_set_context(NULL, NULL);
    text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "\"level\":\"info\",\"component\":\"api\","
                                       "\"msg\":\"quote \\\" backslash \\\\ newline \\n tab \\t "
                                       "ctl \\u0001 end\"}\n"));
    ck_assert_ptr_null(strstr(text, "\"actor\""));
    ck_assert(text[0] == '{');
    free(text);
}
END_TEST

START_TEST(test_log_level_names_parse)
{
    lm_log_level l;
    ck_assert_int_eq(lm_log_level_parse("WARN", &l), LM_OK);
    ck_assert_int_eq(l, LM_LOG_WARN);
    ck_assert_int_eq(lm_log_level_parse("warning", &l), LM_OK);
    ck_assert_int_eq(lm_log_level_parse("trace", &l), LM_OK);
    ck_assert_int_eq(l, LM_LOG_TRACE);
    ck_assert_int_eq(lm_log_level_parse("loud", &l), LM_EINVAL);
}
END_TEST

START_TEST(test_log_unwritable_file_is_an_error_naming_it)
{
    lm_log_opts o = {LM_LOG_INFO, LM_LOG_TEXT, false, false, "/nonexistent/dir/x.log"};
    lm_error err;
    ck_assert_int_eq(lm_log_configure(&o, &err), LM_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/dir/x.log"));
}
END_TEST

#define WRITERS 4
#define LINES   5000

static void *
writer(void *arg)
{
    long id = (long)arg;
    lm_log_set_context("writer", NULL);
    for (int i = 0; i < LINES; i++) {
        LM_LOG(LM_LOG_INFO, "w%ld line %d %s", id, i, "................................");
    }
    return NULL;
}

/* Lines from many threads never interleave, and reopening the file (log
 * rotation) while they write loses or splits none of them. */
START_TEST(test_log_concurrent_lines_stay_whole_across_reopen)
{
    lm_log_opts o = {LM_LOG_INFO, LM_LOG_TEXT, false, false, path};
    char rotated[300];
    pthread_t th[WRITERS];
    int lines = 0;

    ck_assert_int_eq(lm_log_configure(&o, NULL), LM_OK);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    for (long i = 0; i < WRITERS; i++) {
        pthread_create(&th[i], NULL, writer, (void *)i);
    }
    usleep(2000);
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_int_eq(lm_log_configure(&o, NULL), LM_OK); /* reopen: a new file at path */
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
    }
    for (int f = 0; f < 2; f++) {
        char *text = slurp(f == 0 ? rotated : path);
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            ck_assert_msg(strstr(line, "INFO  writer ") != NULL &&
                              strstr(line, "................................") != NULL,
                          "broken line: %s", line);
            lines++;
        }
        free(text);
    }
    ck_assert_int_eq(lines, WRITERS * LINES);
}
END_TEST

Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_log_text_line_names_component_and_actor);
    tcase_add_test(tc, test_log_json_line_is_escaped);
    tcase_add_test(tc, test_log_level_names_parse);
    tcase_add_test(tc, test_log_unwritable_file_is_an_error_naming_it);
    tcase_add_test(tc, test_log_concurrent_lines_stay_whole_across_reopen);
    suite_add_tcase(s, tc);
    return s;
}
