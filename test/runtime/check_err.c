/*
 * check_err.c: the error catalogue and lm_error helpers.
 */
#include <check.h>
#include <string.h>

#include "lm_err.h"

START_TEST(test_err_every_code_has_text_and_name)
{
    static const int codes[] = {
#define LM_ERR_CODE(name, value, text) name,
        LM_ERRORS(LM_ERR_CODE)
#undef LM_ERR_CODE
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_str_ne(lm_strerror(codes[i]), "unknown error");
        ck_assert_str_ne(lm_errname(codes[i]), "LM_E?");
        ck_assert_int_lt(codes[i], 0);
    }
    ck_assert_str_eq(lm_strerror(-9999), "unknown error");
    ck_assert_str_eq(lm_errname(LM_EPROTO), "LM_EPROTO");
}
END_TEST

START_TEST(test_err_set_and_prefix_build_the_message)
{
    lm_error err;
    lm_error_clear(&err);
    ck_assert_int_eq(err.code, LM_OK);
    ck_assert_int_eq(lm_error_set(&err, LM_EPROTO, "truncated at byte %d", 5), LM_EPROTO);
    ck_assert_int_eq(lm_error_prefix(&err, "link to node %d", 2), LM_EPROTO);
    ck_assert_str_eq(err.msg, "link to node 2: truncated at byte 5");
    ck_assert_int_eq(lm_error_set(NULL, LM_EINVAL, "ignored"), LM_EINVAL);
}
END_TEST

Suite *
err_suite(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_err_every_code_has_text_and_name);
    tcase_add_test(tc, test_err_set_and_prefix_build_the_message);
    suite_add_tcase(s, tc);
    return s;
}
