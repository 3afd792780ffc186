/*
 * check_config.c: the configuration module: defaults, the shipped
 * conf/laminar.yaml, value syntax, every error with its position, ${VAR}
 * interpolation, environment overrides, precedence, all-or-nothing loads
 * and the dump/load round trip.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_config.h"

static char *no_env[] = {NULL};

/* Loads yaml (NUL-terminated) as "t.yaml" over cfg. */
static int
load(lm_config *cfg, const char *yaml, char **envp, lm_error *err)
{
    return lm_config_load_string(cfg, "t.yaml", yaml, strlen(yaml), envp, err);
}

/* Asserts that loading yaml over defaults fails with LM_ECONFIG and a
 * message that starts with where ("t.yaml:3:5: ") and contains what. */
static void
expect_load_error(const char *yaml, char **envp, const char *where, const char *what)
{
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(load(&cfg, yaml, envp, &err), LM_ECONFIG);
    ck_assert_int_eq(err.code, LM_ECONFIG);
    ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0, "message '%s' does not start '%s'",
                  err.msg, where);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    lm_config_fini(&cfg);
}

/* Asserts that setting key to value fails with a message containing what. */
static void
expect_set_error(const char *key, const char *value, const char *what)
{
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, key, value, &err), LM_ECONFIG);
    ck_assert_msg(strstr(err.msg, what) != NULL, "message '%s' lacks '%s'", err.msg, what);
    lm_config_fini(&cfg);
}

static void
expect_text(const lm_config *cfg, const char *key, const char *want)
{
    char buf[256];
    ck_assert_int_eq(lm_config_get_text(cfg, key, buf, sizeof(buf)), LM_OK);
    ck_assert_str_eq(buf, want);
}

/* Asserts that a and b hold the same value for every key. */
static void
expect_same(const lm_config *a, const lm_config *b)
{
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        char va[512], vb[512];
        const char *key = lm_config_key_name(i);
        ck_assert_int_eq(lm_config_get_text(a, key, va, sizeof(va)), LM_OK);
        ck_assert_int_eq(lm_config_get_text(b, key, vb, sizeof(vb)), LM_OK);
        ck_assert_msg(strcmp(va, vb) == 0, "%s: '%s' != '%s'", key, va, vb);
    }
}

static void
shipped_path(char *buf, size_t cap)
{
    const char *root = getenv("LM_TEST_ROOT");
    snprintf(buf, cap, "%s/conf/laminar.yaml", root != NULL && root[0] != '\0' ? root : ".");
}

START_TEST(test_config_defaults)
{
    lm_config cfg;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(cfg.node.id, 0);
    ck_assert_str_eq(cfg.node.name, "");
    ck_assert_str_eq(cfg.node.run_dir, "/tmp/laminar");
    ck_assert_int_eq(cfg.runtime.loops, 0);
    ck_assert_int_eq(cfg.runtime.mailbox_batch, 64);
    ck_assert_int_eq(cfg.runtime.batch_rows, 4096);
    ck_assert_int_eq(cfg.transport.max_message_bytes, 64 << 20);
    ck_assert_int_eq(cfg.transport.max_queued_bytes, 256 << 20);
    ck_assert_int_eq(cfg.transport.send_buffer, 256);
    ck_assert_int_eq(cfg.transport.connect_timeout_ms, 5000);
    ck_assert_int_eq(cfg.transport.reconnect_min_ms, 100);
    ck_assert_int_eq(cfg.transport.reconnect_max_ms, 5000);
    ck_assert_int_eq(cfg.transport.peer_timeout_ms, 30000);
    ck_assert_int_eq(cfg.database.type, LM_CONFIG_DB_SQLITE);
    ck_assert_str_eq(cfg.database.sqlite.path, "/tmp/laminar/laminar.db");
    ck_assert_str_eq(cfg.database.postgres.url, "");
    ck_assert_int_eq(cfg.database.retry_max_ms, 30000);
    ck_assert_str_eq(cfg.storage.s3.endpoint, "");
    ck_assert_str_eq(cfg.storage.s3.region, "us-east-1");
    ck_assert_str_eq(cfg.storage.s3.access_key_id, "");
    ck_assert_str_eq(cfg.storage.s3.secret_access_key, "");
    ck_assert(cfg.storage.s3.path_style);
    ck_assert_str_eq(cfg.checkpointing.url, "file:///tmp/laminar/checkpoints");
    ck_assert_int_eq(cfg.checkpointing.interval_ms, 10000);
    ck_assert_int_eq(cfg.checkpointing.timeout_ms, 600000);
    ck_assert_int_eq(cfg.checkpointing.retained, 3);
    ck_assert_str_eq(cfg.api.bind, "127.0.0.1");
    ck_assert_int_eq(cfg.api.port, 8001);
    ck_assert_int_eq(cfg.api.max_body_bytes, 1 << 20);
    ck_assert(cfg.metrics.enabled);
    ck_assert_str_eq(cfg.metrics.bind, "127.0.0.1");
    ck_assert_int_eq(cfg.metrics.port, 9090);
    ck_assert_int_eq(cfg.logging.level, LM_LOG_INFO);
    ck_assert_int_eq(cfg.logging.format, LM_LOG_TEXT);
    ck_assert(cfg.logging.to_stdout);
    ck_assert_str_eq(cfg.logging.file, "");
    ck_assert_str_eq(cfg.worker.rpc_url, "tcp://127.0.0.1:6669");
    ck_assert_int_eq(cfg.worker.slots, 0);
    ck_assert_str_eq(cfg.worker.controller_url, "tcp://127.0.0.1:9000");
    ck_assert_int_eq(cfg.worker.heartbeat_interval_ms, 1000);
    ck_assert_str_eq(cfg.controller.rpc_url, "tcp://127.0.0.1:9000");
    ck_assert_int_eq(cfg.controller.heartbeat_timeout_ms, 10000);
    ck_assert_int_eq(cfg.controller.restart_limit, 10);
    ck_assert_int_eq(cfg.controller.restart_backoff_ms, 1000);
    ck_assert_int_eq(cfg.controller.restart_backoff_max_ms, 60000);
    ck_assert_int_eq(cfg.controller.deploy_timeout_ms, 30000);

    ck_assert_uint_eq(lm_config_key_count(), 46);
    ck_assert_ptr_null(lm_config_key_name(lm_config_key_count()));
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        ck_assert_ptr_nonnull(lm_config_key_doc(i));
    }
    expect_text(&cfg, "transport.max_message_bytes", "64MiB");
    expect_text(&cfg, "checkpointing.timeout", "10m");
    expect_text(&cfg, "logging.level", "info");
    expect_text(&cfg, "storage.s3.path_style", "true");
    ck_assert_int_eq(lm_config_validate(&cfg, NULL), LM_OK);
    lm_config_fini(&cfg);
    lm_config_fini(&cfg); /* a second fini is harmless */
}
END_TEST

/* Values to move a key off its default, whatever its type: the first one
 * the key accepts and that differs from the default is used. */
static const char *const other_values[] = {
    "7",        "2",  "off",  "on",   "json",      "debug", "postgres", "ipc:///tmp/x",
    "s3://b/x", "3s", "3MiB", "2KiB", "some-text", NULL,
};

START_TEST(test_config_shipped_file_equals_defaults)
{
    lm_config defaults, loaded;
    lm_error err;
    char path[1024];

    shipped_path(path, sizeof(path));
    ck_assert_int_eq(lm_config_init(&defaults), LM_OK);

    /* loading the file over the defaults changes nothing */
    ck_assert_int_eq(lm_config_init(&loaded), LM_OK);
    ck_assert_msg(lm_config_load_file(&loaded, path, no_env, &err) == LM_OK, "%s", err.msg);
    expect_same(&defaults, &loaded);

    /* and the file names every key: each one moved off its default comes back */
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        const char *key = lm_config_key_name(i);
        char def[512], now[512];
        size_t v;
        ck_assert_int_eq(lm_config_get_text(&defaults, key, def, sizeof(def)), LM_OK);
        for (v = 0; other_values[v] != NULL; v++) {
            if (lm_config_set(&loaded, key, other_values[v], NULL) == LM_OK &&
                lm_config_get_text(&loaded, key, now, sizeof(now)) == LM_OK &&
                strcmp(now, def) != 0) {
                break;
            }
        }
        ck_assert_msg(other_values[v] != NULL, "no other value for %s", key);
    }
    ck_assert_int_eq(lm_config_load_file(&loaded, path, no_env, &err), LM_OK);
    expect_same(&defaults, &loaded);

    lm_config_fini(&loaded);
    lm_config_fini(&defaults);
}
END_TEST

START_TEST(test_config_durations_parse)
{
    static const struct {
        const char *text;
        int64_t ms;
        const char *canonical;
    } ok[] = {
        {"250ms", 250, "250ms"},
        {"10s", 10000, "10s"},
        {"5m", 300000, "5m"},
        {"1h", 3600000, "1h"},
        {"1.5s", 1500, "1500ms"},
        {"42", 42, "42ms"},
        {"0", 0, "0s"},
        {"1h30m", 5400000, "90m"},
        {"1m 30s", 90000, "90s"},
        {"0.5m", 30000, "30s"},
        {"2H", 7200000, "2h"},
        {" 7s ", 7000, "7s"},
        {"1.250s", 1250, "1250ms"},
        {"+3s", 3000, "3s"},
        {"8760h", 8760 * 3600000LL, "8760h"},
    };
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"5x", "expected a duration"},
        {"s", "expected a duration"},
        {"1.5", "expected a duration"},
        {"", "expected a duration"},
        {"5 s", "expected a duration"},
        {"1.0001s", "not a whole number of milliseconds"},
        {"ten seconds", "expected a duration"},
        {"-5s", "-5s is out of range (0s..8760h)"},
        {"8761h", "out of range"},
        {"99999999999999999999ms", "out of range"},
    };
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(lm_config_set(&cfg, "transport.peer_timeout", ok[i].text, &err) == LM_OK,
                      "%s: %s", ok[i].text, err.msg);
        ck_assert_int_eq(cfg.transport.peer_timeout_ms, ok[i].ms);
        expect_text(&cfg, "transport.peer_timeout", ok[i].canonical);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(lm_config_set(&cfg, "transport.peer_timeout", bad[i].text, &err),
                         LM_ECONFIG);
        ck_assert_msg(strstr(err.msg, bad[i].why) != NULL, "%s: %s", bad[i].text, err.msg);
        ck_assert_int_eq(cfg.transport.peer_timeout_ms, 8760 * 3600000LL); /* unchanged */
    }
    /* a key whose minimum is 1ms */
    ck_assert_int_eq(lm_config_set(&cfg, "worker.heartbeat_interval", "0s", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set worker.heartbeat_interval=0s: worker.heartbeat_interval: 0s "
                              "is out of range (1ms..8760h)");

    /* and through YAML */
    ck_assert_int_eq(
        load(&cfg, "transport:\n  connect_timeout: 1.5s\n  reconnect_min: 20\n", no_env, &err),
        LM_OK);
    ck_assert_int_eq(cfg.transport.connect_timeout_ms, 1500);
    ck_assert_int_eq(cfg.transport.reconnect_min_ms, 20);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_sizes_parse)
{
    static const struct {
        const char *text;
        int64_t bytes;
        const char *canonical;
    } ok[] = {
        {"64MiB", 64LL << 20, "64MiB"},    {"1GiB", 1LL << 30, "1GiB"},
        {"512KiB", 512LL << 10, "512KiB"}, {"1MB", 1000000, "1MB"},
        {"2048B", 2048, "2KiB"},           {"2048", 2048, "2KiB"},
        {"1.5KiB", 1536, "1536B"},         {"1 MiB", 1LL << 20, "1MiB"},
        {"1mib", 1LL << 20, "1MiB"},       {"2kB", 2000, "2kB"},
        {"0.5GiB", 1LL << 29, "512MiB"},   {"1000001", 1000001, "1000001B"},
    };
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"1.5", "expected a size"},
        {"12XB", "expected a size"},
        {"1K", "expected a size"},
        {"MiB", "expected a size"},
        {"1.0000001KiB", "not a whole number of bytes"},
        {"100B", "100B is out of range (1KiB..1GiB)"},
        {"2GiB", "2GiB is out of range (1KiB..1GiB)"},
        {"99999999999GiB", "99999999999GiB is out of range (1KiB..1GiB)"},
        {"-1MiB", "-1MiB is out of range (1KiB..1GiB)"},
        {"99999999999999999999", "out of range"},
    };
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(lm_config_set(&cfg, "api.max_body_bytes", ok[i].text, &err) == LM_OK,
                      "%s: %s", ok[i].text, err.msg);
        ck_assert_int_eq(cfg.api.max_body_bytes, ok[i].bytes);
        expect_text(&cfg, "api.max_body_bytes", ok[i].canonical);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(lm_config_set(&cfg, "api.max_body_bytes", bad[i].text, &err), LM_ECONFIG);
        ck_assert_msg(strstr(err.msg, bad[i].why) != NULL, "%s: %s", bad[i].text, err.msg);
        ck_assert_int_eq(cfg.api.max_body_bytes, 1000001);
    }
    ck_assert_int_eq(lm_config_set(&cfg, "transport.max_queued_bytes", "64GiB", &err), LM_OK);
    ck_assert_int_eq(cfg.transport.max_queued_bytes, 64LL << 30);
    ck_assert_int_eq(load(&cfg, "transport:\n  max_message_bytes: 1 GiB\n", no_env, &err), LM_OK);
    ck_assert_int_eq(cfg.transport.max_message_bytes, 1LL << 30);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_bools_parse)
{
    static const struct {
        const char *text;
        bool value;
    } ok[] = {
        {"true", true}, {"false", false}, {"yes", true},  {"no", false},
        {"on", true},   {"off", false},   {"TRUE", true}, {"Off", false},
        {"Yes", true},  {"NO", false},    {" on ", true},
    };
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_int_eq(lm_config_set(&cfg, "metrics.enabled", ok[i].text, &err), LM_OK);
        ck_assert(cfg.metrics.enabled == ok[i].value);
        expect_text(&cfg, "metrics.enabled", ok[i].value ? "true" : "false");
    }
    ck_assert_int_eq(lm_config_set(&cfg, "metrics.enabled", "maybe", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set metrics.enabled=maybe: metrics.enabled: expected true or "
                              "false (or yes/no, on/off), got 'maybe'");
    ck_assert_int_eq(lm_config_set(&cfg, "metrics.enabled", "1", &err), LM_ECONFIG);
    ck_assert_int_eq(
        load(&cfg, "storage:\n  s3:\n    path_style: no\nlogging:\n  stdout: OFF\n", no_env, &err),
        LM_OK);
    ck_assert(!cfg.storage.s3.path_style);
    ck_assert(!cfg.logging.to_stdout);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_enums_urls_and_strings_parse)
{
    lm_config cfg;
    lm_error err;
    const char *yaml = "logging:\n"
                       "  level: DEBUG\n"
                       "  format: json\n"
                       "  file: \n"
                       "database:\n"
                       "  type: postgres\n"
                       "  postgres:\n"
                       "    url: 'host=db user=me'\n"
                       "checkpointing:\n"
                       "  url: s3://bucket/prefix\n"
                       "worker:\n"
                       "  rpc_url: \"ipc:///tmp/w.sock\"\n"
                       "node:\n"
                       "  name: \"caf\\u00e9 #1\"\n"
                       "  run_dir: ~\n";

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "logging.file", "/var/log/x", &err), LM_OK);
    ck_assert_msg(load(&cfg, yaml, no_env, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(cfg.logging.level, LM_LOG_DEBUG);
    ck_assert_int_eq(cfg.logging.format, LM_LOG_JSON);
    ck_assert_str_eq(cfg.logging.file, ""); /* null is the empty string */
    ck_assert_int_eq(cfg.database.type, LM_CONFIG_DB_POSTGRES);
    ck_assert_str_eq(cfg.database.postgres.url, "host=db user=me");
    ck_assert_str_eq(cfg.checkpointing.url, "s3://bucket/prefix");
    ck_assert_str_eq(cfg.worker.rpc_url, "ipc:///tmp/w.sock");
    ck_assert_str_eq(cfg.node.name, "caf\xc3\xa9 #1");
    ck_assert_str_eq(cfg.node.run_dir, "");
    expect_text(&cfg, "logging.level", "debug");
    expect_text(&cfg, "database.type", "postgres");
    ck_assert_int_eq(lm_config_validate(&cfg, &err), LM_OK);

    ck_assert_int_eq(lm_config_set(&cfg, "logging.level", "warn", &err), LM_OK);
    ck_assert_int_eq(cfg.logging.level, LM_LOG_WARN);
    ck_assert_int_eq(lm_config_set(&cfg, "logging.level", "loud", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set logging.level=loud: logging.level: expected one of trace, "
                              "debug, info, warn, error; got 'loud'");
    ck_assert_int_eq(lm_config_set(&cfg, "worker.rpc_url", "http://x", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set worker.rpc_url=http://x: worker.rpc_url: expected a URL "
                              "starting with tcp:// or ipc://, got 'http://x'");
    ck_assert_int_eq(lm_config_set(&cfg, "checkpointing.url", "file://", &err), LM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "nothing after the scheme"));
    ck_assert_int_eq(lm_config_set(&cfg, "node.name", "bad \xff utf8", &err), LM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "node.name: expected UTF-8 text"));
    ck_assert_str_eq(cfg.node.name, "caf\xc3\xa9 #1");
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_yaml_syntax_error)
{
    expect_load_error("api:\n  bind: 127.0.0.1\n  port: 80: 1\n", no_env, "t.yaml:3:11: ",
                      "YAML syntax error: mapping values are not allowed in this context");
    expect_load_error("worker:\n  slots: [1, 2\nnode:\n  id: 1\n", no_env,
                      "t.yaml:3:", "YAML syntax error: did not find expected ',' or ']'");
    expect_load_error("api:\n  bind: \"127.0.0.1\n", no_env,
                      "t.yaml:3:1: ", "YAML syntax error: found unexpected end of stream");
    expect_load_error("api:\n  bind: a\xff\n", no_env,
                      "t.yaml:2:10: ", "YAML syntax error: invalid leading UTF-8 octet");
    expect_load_error("api:\n  bind: *nowhere\n", no_env,
                      "t.yaml:2:9: ", "YAML syntax error: found undefined alias");
    expect_load_error("api:\n  port: 1\n---\napi:\n  port: 2\n", no_env,
                      "t.yaml:3:1: ", "more than one YAML document");
}
END_TEST

START_TEST(test_config_unknown_key_names_line_and_suggests)
{
    lm_config cfg;
    lm_error err;

    expect_load_error("# worker settings\n"
                      "worker:\n"
                      "  slots: 4\n"
                      "\n"
                      "  slotz: 5\n",
                      no_env,
                      "t.yaml:5:3: ", "unknown key 'worker.slotz' (did you mean 'worker.slots'?)");
    expect_load_error("wroker:\n  slots: 4\n", no_env,
                      "t.yaml:1:1: ", "unknown key 'wroker' (did you mean 'worker'?)");
    expect_load_error("storage:\n  s3:\n    regoin: x\n", no_env, "t.yaml:3:5: ",
                      "unknown key 'storage.s3.regoin' (did you mean 'storage.s3.region'?)");
    expect_load_error("worker:\n  frobnicate: 1\n", no_env,
                      "t.yaml:2:3: ", "unknown key 'worker.frobnicate'");

    /* far from every key: no suggestion */
    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(load(&cfg, "worker:\n  frobnicate: 1\n", no_env, &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "t.yaml:2:3: unknown key 'worker.frobnicate'");
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_bad_values_name_line_and_key)
{
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(load(&cfg,
                          "worker:\n"
                          "  rpc_url: tcp://127.0.0.1:1\n"
                          "  slots: many\n",
                          no_env, &err),
                     LM_ECONFIG);
    ck_assert_str_eq(err.msg, "t.yaml:3:10: worker.slots: expected an integer, got 'many'");
    lm_config_fini(&cfg);

    expect_load_error("worker:\n  slots: 5000\n", no_env,
                      "t.yaml:2:10: ", "worker.slots: 5000 is out of range (0..1024)");
    expect_load_error("logging:\n  format: xml\n", no_env,
                      "t.yaml:2:11: ", "logging.format: expected one of text, json; got 'xml'");
    expect_load_error(
        "checkpointing:\n  url: ftp://x\n", no_env, "t.yaml:2:8: ",
        "checkpointing.url: expected a URL starting with file:// or s3://, got 'ftp://x'");
    expect_load_error("transport:\n  connect_timeout: soon\n", no_env,
                      "t.yaml:2:20: ", "transport.connect_timeout: expected a duration");
    expect_load_error("api:\n  max_body_bytes: lots\n", no_env,
                      "t.yaml:2:19: ", "api.max_body_bytes: expected a size");
    expect_load_error("metrics:\n  enabled: sometimes\n", no_env,
                      "t.yaml:2:12: ", "metrics.enabled: expected true or false");
    expect_load_error("api:\n  port:\n", no_env,
                      "t.yaml:2:", "api.port: expected an integer, got ''");
    expect_load_error("api:\n  port: \"80\\0\"\n", no_env,
                      "t.yaml:2:9: ", "api.port: the value contains a NUL character");
}
END_TEST

START_TEST(test_config_shape_errors)
{
    lm_config cfg;
    lm_error err;

    expect_load_error("worker: 5\n", no_env,
                      "t.yaml:1:9: ", "expected a mapping for section 'worker', got '5'");
    expect_load_error("storage:\n  s3: [a]\n", no_env, "t.yaml:2:7: ",
                      "expected a mapping for section 'storage.s3', got a sequence");
    expect_load_error("worker:\n  slots:\n    a: 1\n", no_env,
                      "t.yaml:3:5: ", "worker.slots: expected a scalar value");
    expect_load_error("worker:\n  slots: [1, 2]\n", no_env,
                      "t.yaml:2:10: ", "worker.slots: expected a scalar value");
    expect_load_error("- a\n- b\n", no_env, "t.yaml:1:1: ",
                      "expected a mapping of sections at the top level, got a sequence");
    expect_load_error("just text\n", no_env, "t.yaml:1:1: ",
                      "expected a mapping of sections at the top level, got a scalar");
    expect_load_error("worker:\n  ? [a]\n  : 1\n", no_env,
                      "t.yaml:2:5: ", "expected a key name, got a sequence in section 'worker'");

    /* an empty section, and dotted keys, are fine */
    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_msg(
        load(&cfg, "worker:\nworker.slots: 3\nstorage.s3:\n  region: x\n", no_env, &err) == LM_OK,
        "%s", err.msg);
    ck_assert_int_eq(cfg.worker.slots, 3);
    ck_assert_str_eq(cfg.storage.s3.region, "x");
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_duplicate_key_names_both_lines)
{
    expect_load_error(
        "worker:\n"
        "  slots: 1\n"
        "  rpc_url: tcp://a:1\n"
        "  slots: 2\n",
        no_env, "t.yaml:4:3: ", "duplicate key 'worker.slots' (first given at line 2, column 3)");
    expect_load_error("api:\n"
                      "  port: 1\n"
                      "worker:\n"
                      "  slots: 1\n"
                      "api:\n"
                      "  bind: x\n",
                      no_env,
                      "t.yaml:5:1: ", "duplicate key 'api' (first given at line 1, column 1)");
    expect_load_error(
        "worker:\n"
        "  slots: 1\n"
        "worker.slots: 2\n",
        no_env, "t.yaml:3:1: ", "duplicate key 'worker.slots' (first given at line 2, column 3)");
}
END_TEST

START_TEST(test_config_empty_file_is_defaults)
{
    static const char *const empties[] = {"", "# nothing here\n\n", "---\n", "~\n", "--- ~\n"};
    lm_config defaults, cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&defaults), LM_OK);
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
        ck_assert_msg(load(&cfg, empties[i], no_env, &err) == LM_OK, "'%s': %s", empties[i],
                      err.msg);
        ck_assert_str_eq(err.msg, "");
        expect_same(&defaults, &cfg);
        lm_config_fini(&cfg);
    }
    lm_config_fini(&defaults);
}
END_TEST

START_TEST(test_config_interpolation)
{
    char *envp[] = {"HOST=10.0.0.1", "EMPTY=", "PORT=7000", "DOLLAR=a$b", NULL};
    const char *yaml = "worker:\n"
                       "  rpc_url: tcp://${HOST}:${PORT}\n"
                       "  controller_url: \"tcp://${CTRL:-127.0.0.2}:9000\"\n"
                       "node:\n"
                       "  name: ${EMPTY:-fallback}\n"
                       "  run_dir: /tmp/$$HOME/x$y/${DOLLAR}\n"
                       "api:\n"
                       "  port: ${PORT:-1}\n"
                       "  bind: ${NOPE:-${ALSO_NOPE:-${HOST}}}\n"
                       "metrics:\n"
                       "  bind: '${NOPE:-{x}}'\n"
                       "logging:\n"
                       "  file: \"${EMPTY}\"\n"
                       "  level: ${NOPE:-}warn\n";
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_msg(load(&cfg, yaml, envp, &err) == LM_OK, "%s", err.msg);
    ck_assert_str_eq(cfg.worker.rpc_url, "tcp://10.0.0.1:7000");
    ck_assert_str_eq(cfg.worker.controller_url, "tcp://127.0.0.2:9000");
    ck_assert_str_eq(cfg.node.name, "fallback");
    ck_assert_str_eq(cfg.node.run_dir, "/tmp/$HOME/x$y/a$b");
    ck_assert_int_eq(cfg.api.port, 7000);
    ck_assert_str_eq(cfg.api.bind, "10.0.0.1");
    ck_assert_str_eq(cfg.metrics.bind, "{x}");
    ck_assert_str_eq(cfg.logging.file, "");
    ck_assert_int_eq(cfg.logging.level, LM_LOG_WARN);
    lm_config_fini(&cfg);

    expect_load_error("api:\n  port: 1\n  bind: ${NOT_SET}\n", envp,
                      "t.yaml:3:9: ", "api.bind: environment variable 'NOT_SET' is not set");
    expect_load_error("api:\n  bind: ${NOT_SET}\n", NULL,
                      "t.yaml:2:9: ", "environment variable 'NOT_SET' is not set");
    expect_load_error("api:\n  bind: x${HOST\n", envp,
                      "t.yaml:2:9: ", "api.bind: unterminated '${'");
    expect_load_error("api:\n  bind: ${NOPE:-abc\n", envp,
                      "t.yaml:2:9: ", "api.bind: unterminated '${'");
    expect_load_error("api:\n  bind: \"${}\"\n", envp,
                      "t.yaml:2:9: ", "api.bind: bad variable reference '${}'");
    expect_load_error("api:\n  bind: \"${HOST-x}\"\n", envp,
                      "t.yaml:2:9: ", "bad variable reference");
    /* an interpolated value is still type-checked, at the value's position */
    expect_load_error("worker:\n  slots: ${HOST}\n", envp,
                      "t.yaml:2:10: ", "worker.slots: expected an integer, got '10.0.0.1'");
}
END_TEST

START_TEST(test_config_env_overrides_and_aliases)
{
    char *envp[] = {"PATH=/usr/bin:/bin",
                    "LAMINAR_WORKER_SLOTS=8",
                    "LAMINAR_STORAGE_S3_REGION=eu-west-1",
                    "LAMINAR_CHECKPOINT_URL=s3://bucket/cp",
                    "LAMINAR_S3_ENDPOINT=http://127.0.0.1:9000",
                    "LAMINAR_S3_ACCESS_KEY_ID=AKID",
                    "LAMINAR_S3_SECRET_ACCESS_KEY=SECRET",
                    "LAMINAR_LOG_LEVEL=debug",
                    "LAMINAR_TRANSPORT_CONNECT_TIMEOUT=250ms",
                    "LAMINAR_TRANSPORT_MAX_QUEUED_BYTES=1GiB",
                    "LAMINAR_METRICS_ENABLED=off",
                    "LAMINAR_NODE_NAME=",
                    "LAMINAR_DATABASE_SQLITE_PATH=/data/$x.db",
                    NULL};
    char *both[] = {"LAMINAR_LOGGING_LEVEL=error", "LAMINAR_LOG_LEVEL=trace",
                    "LAMINAR_S3_REGION=ap-1", NULL};
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "node.name", "was-set", &err), LM_OK);
    ck_assert_msg(lm_config_apply_env(&cfg, envp, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(cfg.worker.slots, 8);
    ck_assert_str_eq(cfg.storage.s3.region, "eu-west-1");
    ck_assert_str_eq(cfg.checkpointing.url, "s3://bucket/cp");
    ck_assert_str_eq(cfg.storage.s3.endpoint, "http://127.0.0.1:9000");
    ck_assert_str_eq(cfg.storage.s3.access_key_id, "AKID");
    ck_assert_str_eq(cfg.storage.s3.secret_access_key, "SECRET");
    ck_assert_int_eq(cfg.logging.level, LM_LOG_DEBUG);
    ck_assert_int_eq(cfg.transport.connect_timeout_ms, 250);
    ck_assert_int_eq(cfg.transport.max_queued_bytes, 1LL << 30);
    ck_assert(!cfg.metrics.enabled);
    ck_assert_str_eq(cfg.node.name, "");                       /* an empty value is a value */
    ck_assert_str_eq(cfg.database.sqlite.path, "/data/$x.db"); /* taken literally */
    ck_assert_int_eq(cfg.api.port, 8001);                      /* untouched */

    /* the full name wins over the alias, whatever their order */
    ck_assert_int_eq(lm_config_apply_env(&cfg, both, &err), LM_OK);
    ck_assert_int_eq(cfg.logging.level, LM_LOG_ERROR);
    ck_assert_str_eq(cfg.storage.s3.region, "ap-1");
    ck_assert_int_eq(lm_config_apply_env(&cfg, NULL, &err), LM_OK);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_env_bad_value_names_variable)
{
    char *bad[] = {"LAMINAR_API_PORT=8080", "LAMINAR_WORKER_SLOTS=x", NULL};
    char *bad_alias[] = {"LAMINAR_LOG_LEVEL=loud", NULL};
    char *bad_url[] = {"LAMINAR_CHECKPOINT_URL=ftp://x", NULL};
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_apply_env(&cfg, bad, &err), LM_ECONFIG);
    ck_assert_str_eq(
        err.msg, "environment LAMINAR_WORKER_SLOTS: worker.slots: expected an integer, got 'x'");
    ck_assert_int_eq(cfg.api.port, 8001); /* the good one was not applied either */
    ck_assert_int_eq(lm_config_apply_env(&cfg, bad_alias, &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "environment LAMINAR_LOG_LEVEL: logging.level: expected one of "
                              "trace, debug, info, warn, error; got 'loud'");
    ck_assert_int_eq(lm_config_apply_env(&cfg, bad_url, &err), LM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "environment LAMINAR_CHECKPOINT_URL: checkpointing.url: "
                                          "expected a URL starting with file:// or s3://"));
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_env_unknown_laminar_variable_ignored)
{
    char *envp[] = {"LAMINAR_API=http://127.0.0.1:8001",
                    "LAMINAR_FOO=1",
                    "LAMINAR_WORKER_SLOTZ=x",
                    "LAMINAR_=x",
                    "LAMINAR",
                    "laminar_worker_slots=x",
                    NULL};
    lm_config defaults, cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&defaults), LM_OK);
    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_msg(lm_config_apply_env(&cfg, envp, &err) == LM_OK, "%s", err.msg);
    expect_same(&defaults, &cfg);
    lm_config_fini(&cfg);
    lm_config_fini(&defaults);
}
END_TEST

START_TEST(test_config_precedence)
{
    char *envp[] = {"LAMINAR_WORKER_SLOTS=4", "LAMINAR_RUNTIME_LOOPS=5", NULL};
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(load(&cfg,
                          "worker:\n  slots: 2\nruntime:\n  loops: 3\n  batch_rows: 100\n"
                          "api:\n  port: 1000\n",
                          envp, &err),
                     LM_OK);
    ck_assert_int_eq(cfg.worker.slots, 2); /* loading does not apply the environment */
    ck_assert_int_eq(lm_config_apply_env(&cfg, envp, &err), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "6", &err), LM_OK);
    ck_assert_int_eq(cfg.worker.slots, 6);           /* set > env > file */
    ck_assert_int_eq(cfg.runtime.loops, 5);          /* env > file */
    ck_assert_int_eq(cfg.runtime.batch_rows, 100);   /* file > default */
    ck_assert_int_eq(cfg.api.port, 1000);            /* file > default */
    ck_assert_int_eq(cfg.metrics.port, 9090);        /* default */
    ck_assert_int_eq(cfg.runtime.mailbox_batch, 64); /* default */
    lm_config_fini(&cfg);
}
END_TEST

/* Snapshot of every key's text. */
typedef struct snapshot {
    char v[64][512];
} snapshot;

static void
take(const lm_config *cfg, snapshot *s)
{
    ck_assert_uint_le(lm_config_key_count(), 64);
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        ck_assert_int_eq(lm_config_get_text(cfg, lm_config_key_name(i), s->v[i], sizeof(s->v[i])),
                         LM_OK);
    }
}

static void
expect_snapshot(const lm_config *cfg, const snapshot *s)
{
    snapshot now;
    take(cfg, &now);
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        ck_assert_msg(strcmp(now.v[i], s->v[i]) == 0, "%s changed: '%s' -> '%s'",
                      lm_config_key_name(i), s->v[i], now.v[i]);
    }
}

START_TEST(test_config_failed_load_leaves_struct_unchanged)
{
    char *bad_env[] = {"LAMINAR_NODE_NAME=changed", "LAMINAR_API_PORT=8080",
                       "LAMINAR_WORKER_SLOTS=-1", NULL};
    static snapshot before;
    lm_config cfg;
    lm_error err;
    char *name_before;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "node.name", "keep", &err), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "7", &err), LM_OK);
    take(&cfg, &before);
    name_before = cfg.node.name;

    /* good keys first, then a bad one */
    ck_assert_int_eq(load(&cfg,
                          "node:\n  name: changed\n  run_dir: /elsewhere\nworker:\n  slots: 9\n"
                          "api:\n  port: 0\n",
                          no_env, &err),
                     LM_ECONFIG);
    ck_assert_str_eq(err.msg, "t.yaml:7:9: api.port: 0 is out of range (1..65535)");
    expect_snapshot(&cfg, &before);
    ck_assert_ptr_eq(cfg.node.name, name_before);

    ck_assert_int_eq(load(&cfg, "node:\n  name: changed\nworker:\n  slots: [\n", no_env, &err),
                     LM_ECONFIG);
    expect_snapshot(&cfg, &before);
    ck_assert_int_eq(load(&cfg, "node:\n  name: changed\n  id: ${UNSET}\n", no_env, &err),
                     LM_ECONFIG);
    expect_snapshot(&cfg, &before);
    ck_assert_int_eq(lm_config_apply_env(&cfg, bad_env, &err), LM_ECONFIG);
    ck_assert_str_eq(
        err.msg, "environment LAMINAR_WORKER_SLOTS: worker.slots: -1 is out of range (0..1024)");
    expect_snapshot(&cfg, &before);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "lots", &err), LM_ECONFIG);
    expect_snapshot(&cfg, &before);
    ck_assert_int_eq(lm_config_load_file(&cfg, "/nonexistent/laminar.yaml", no_env, &err), LM_EIO);
    expect_snapshot(&cfg, &before);
    ck_assert_ptr_eq(cfg.node.name, name_before);

    /* and a good load after all that still works */
    ck_assert_int_eq(load(&cfg, "worker:\n  slots: 9\n", no_env, &err), LM_OK);
    ck_assert_int_eq(cfg.worker.slots, 9);
    ck_assert_str_eq(cfg.node.name, "keep");
    lm_config_fini(&cfg);
}
END_TEST

/* Dumps cfg into a malloc'd string. */
static char *
dump_text(const lm_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(lm_config_dump(cfg, f), LM_OK);
    fclose(f);
    return text;
}

START_TEST(test_config_dump_round_trip)
{
    static const struct {
        const char *key, *value;
    } sets[] = {
        {"node.id", "4294967295"},
        {"node.name", "we\"ird $x ${Y} $$ \\ tab\there: #not-a-comment 'q' caf\xc3\xa9 "
                      "\xc2\x85 \xe2\x80\xa8 \x01 end"},
        {"node.run_dir", "  leading and trailing  "},
        {"runtime.loops", "256"},
        {"transport.max_message_bytes", "1MB"},
        {"transport.reconnect_min", "1.5s"},
        {"transport.peer_timeout", "0"},
        {"database.type", "postgres"},
        {"database.postgres.url", "postgresql://laminar@db.example:5432/laminar?sslmode=disable"},
        {"storage.s3.region", "true"},
        {"storage.s3.endpoint", "null"},
        {"storage.s3.access_key_id", "~"},
        {"storage.s3.path_style", "off"},
        {"checkpointing.url", "s3://bucket/with space/and:colon"},
        {"checkpointing.timeout", "1h30m"},
        {"logging.level", "error"},
        {"logging.format", "json"},
        {"logging.file", "- [not, a, list]"},
        {"worker.rpc_url", "ipc:///run/laminar/w.sock"},
        {"metrics.bind", "::1"},
    };
    lm_config cfg, back;
    lm_error err;
    char *text;
    size_t len;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        ck_assert_msg(lm_config_set(&cfg, sets[i].key, sets[i].value, &err) == LM_OK, "%s: %s",
                      sets[i].key, err.msg);
    }
    text = dump_text(&cfg, &len);
    ck_assert_ptr_nonnull(strstr(text, "\nworker:\n  rpc_url: \"ipc:///run/laminar/w.sock\"\n"));
    ck_assert_ptr_nonnull(strstr(text, "\ndatabase:\n  type: postgres\n  sqlite:\n    path: "));
    ck_assert_ptr_nonnull(strstr(text, "\n  retry_max: 30s\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nstorage:\n  s3:\n    endpoint: \"null\"\n"));

    /* loaded over something else, the dump gives back every value */
    ck_assert_int_eq(lm_config_init(&back), LM_OK);
    ck_assert_int_eq(lm_config_set(&back, "worker.slots", "12", &err), LM_OK);
    ck_assert_msg(lm_config_load_string(&back, "dump", text, len, no_env, &err) == LM_OK, "%s\n%s",
                  err.msg, text);
    expect_same(&cfg, &back);
    ck_assert_str_eq(back.node.name, cfg.node.name);
    lm_config_fini(&back);
    free(text);

    /* the defaults, through a real file */
    {
        char path[] = "/tmp/lm_config_test_XXXXXX";
        lm_config defaults;
        int fd = mkstemp(path);
        FILE *f;
        ck_assert_int_ge(fd, 0);
        f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(lm_config_init(&defaults), LM_OK);
        ck_assert_int_eq(lm_config_dump(&defaults, f), LM_OK);
        fclose(f);
        ck_assert_int_eq(lm_config_load_file(&cfg, path, no_env, &err), LM_OK);
        expect_same(&defaults, &cfg);
        unlink(path);
        lm_config_fini(&defaults);
    }
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_dump_masks_secrets)
{
    static const struct {
        const char *url, *shown;
    } urls[] = {
        {"postgresql://laminar:hunter2@db:5432/laminar?sslmode=require",
         "postgresql://laminar:***@db:5432/laminar?sslmode=require"},
        {"postgres://u:p%40ss@h/db?password=other&sslmode=disable",
         "postgres://u:***@h/db?password=***&sslmode=disable"},
        {"postgresql://u@h/db", "postgresql://u@h/db"},
        {"postgresql://u:@h/db", "postgresql://u:@h/db"},
        {"host=db user=me password=hunter2 dbname=x", "host=db user=me password=*** dbname=x"},
        {"host=db password = 'it\\'s a secret' port=5432", "host=db password = *** port=5432"},
        {"host=db password=''", "host=db password=''"},
        {"host=db", "host=db"},
    };
    lm_config cfg;
    lm_error err;
    char *text, want[512];
    size_t len;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    text = dump_text(&cfg, &len);
    ck_assert_ptr_nonnull(strstr(text, "    secret_access_key: \"\"\n")); /* empty: as is */
    free(text);

    ck_assert_int_eq(lm_config_set(&cfg, "storage.s3.secret_access_key", "wJalrXUtnFEMI", &err),
                     LM_OK);
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        ck_assert_int_eq(lm_config_set(&cfg, "database.postgres.url", urls[i].url, &err), LM_OK);
        text = dump_text(&cfg, &len);
        ck_assert_ptr_nonnull(strstr(text, "    secret_access_key: \"***\"\n"));
        ck_assert_ptr_null(strstr(text, "wJalrXUtnFEMI"));
        ck_assert_ptr_null(strstr(text, "hunter2"));
        snprintf(want, sizeof(want), "    url: \"%s\"\n", urls[i].shown);
        /* the dump doubles backslashes inside the quotes */
        if (strchr(urls[i].shown, '\\') == NULL) {
            ck_assert_msg(strstr(text, want) != NULL, "want %s in\n%s", want, text);
        }
        free(text);
    }
    /* get_text is not masked */
    expect_text(&cfg, "storage.s3.secret_access_key", "wJalrXUtnFEMI");

    /* nor do error messages show a secret */
    ck_assert_int_eq(lm_config_set(&cfg, "storage.s3.secret_access_key", "s3cr\xff", &err),
                     LM_ECONFIG);
    ck_assert_ptr_null(strstr(err.msg, "s3cr"));
    ck_assert_ptr_nonnull(strstr(err.msg, "--set storage.s3.secret_access_key=***: "));
    ck_assert_int_eq(
        lm_config_set(&cfg, "database.postgres.url", "postgresql://u:pw\xff@h/d", &err),
        LM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "--set database.postgres.url=postgresql://u:***@h/d: "));
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_rejects_huge_and_negative_values)
{
    expect_set_error("worker.slots", "99999999999999999999",
                     "worker.slots: 99999999999999999999 is out of range (0..1024)");
    expect_set_error("worker.slots", "-1", "worker.slots: -1 is out of range (0..1024)");
    expect_set_error("node.id", "4294967296",
                     "node.id: 4294967296 is out of range (0..4294967295)");
    expect_set_error("node.id", "-9223372036854775809", "is out of range (0..4294967295)");
    expect_set_error("node.id", "9223372036854775808", "is out of range");
    expect_set_error("worker.slots", "4.0", "expected an integer, got '4.0'");
    expect_set_error("worker.slots", "0x10", "expected an integer");
    expect_set_error("worker.slots", "", "expected an integer, got ''");
    expect_set_error("transport.max_message_bytes", "99999999999GiB",
                     "transport.max_message_bytes: 99999999999GiB is out of range (1KiB..1GiB)");
    expect_set_error("transport.max_queued_bytes", "18446744073709551616",
                     "is out of range (1MiB..64GiB)");
    expect_set_error("transport.max_queued_bytes", "-5MiB", "-5MiB is out of range");
    expect_set_error("checkpointing.interval", "9999999999999999h", "is out of range");
    expect_set_error("checkpointing.interval", "-1s", "-1s is out of range (1ms..8760h)");
    expect_load_error("node:\n  id: 123456789012345678901234567890\n", no_env, "t.yaml:2:7: ",
                      "node.id: 123456789012345678901234567890 is out of range (0..4294967295)");

    /* the largest values are fine */
    {
        lm_config cfg;
        ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
        ck_assert_int_eq(lm_config_set(&cfg, "node.id", "4294967295", NULL), LM_OK);
        ck_assert_int_eq(cfg.node.id, 4294967295LL);
        ck_assert_int_eq(lm_config_set(&cfg, "transport.max_message_bytes", "1GiB", NULL), LM_OK);
        ck_assert_int_eq(lm_config_set(&cfg, "transport.max_message_bytes", "1KiB", NULL), LM_OK);
        lm_config_fini(&cfg);
    }
}
END_TEST

START_TEST(test_config_set_errors)
{
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "x", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set worker.slots=x: worker.slots: expected an integer, got 'x'");
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slotz", "3", &err), LM_ECONFIG);
    ck_assert_str_eq(
        err.msg, "--set worker.slotz=3: unknown key 'worker.slotz' (did you mean 'worker.slots'?)");
    ck_assert_int_eq(lm_config_set(&cfg, "worker", "3", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set worker=3: 'worker' is a section, not a key");
    ck_assert_int_eq(lm_config_set(&cfg, "zzz", "3", &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "--set zzz=3: unknown key 'zzz'");
    ck_assert_int_eq(lm_config_set(&cfg, NULL, "3", &err), LM_EINVAL);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "3", NULL), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "worker.slots", "3", &err), LM_OK);
    ck_assert_int_eq(err.code, LM_OK);
    ck_assert_str_eq(err.msg, "");
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_get_text_errors)
{
    lm_config cfg;
    char buf[8];

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_get_text(&cfg, "worker.slotz", buf, sizeof(buf)), LM_ENOTFOUND);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(lm_config_get_text(&cfg, "worker", buf, sizeof(buf)), LM_ENOTFOUND);
    ck_assert_int_eq(lm_config_get_text(&cfg, "node.run_dir", buf, sizeof(buf)), LM_ETOOBIG);
    ck_assert_str_eq(buf, "/tmp/la");
    ck_assert_int_eq(lm_config_get_text(&cfg, "api.port", buf, sizeof(buf)), LM_OK);
    ck_assert_str_eq(buf, "8001");
    ck_assert_int_eq(lm_config_get_text(&cfg, "api.port", buf, 0), LM_EINVAL);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_load_file_errors)
{
    char path[] = "/tmp/lm_config_test_XXXXXX";
    lm_config cfg;
    lm_error err;
    int fd;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_load_file(&cfg, "/nonexistent/x.yaml", no_env, &err), LM_EIO);
    ck_assert_str_eq(err.msg, "/nonexistent/x.yaml: cannot read: No such file or directory");
    ck_assert_int_eq(lm_config_load_file(&cfg, "/tmp", no_env, &err), LM_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/tmp: cannot read"));

    /* messages name the file as given */
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "api:\n  port: 1\n  prot: 2\n", 25), 25);
    close(fd);
    ck_assert_int_eq(lm_config_load_file(&cfg, path, no_env, &err), LM_ECONFIG);
    ck_assert_ptr_eq(strstr(err.msg, path), err.msg);
    ck_assert_ptr_nonnull(
        strstr(err.msg, ":3:3: unknown key 'api.prot' (did you mean 'api.port'?)"));
    ck_assert_int_eq(cfg.api.port, 8001);
    unlink(path);

    ck_assert_int_eq(lm_config_load_string(&cfg, NULL, "x: 1", 4, no_env, &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "<string>:1:1: unknown key 'x'");
    /* the length is honoured: the text need not end in NUL */
    ck_assert_int_eq(lm_config_load_string(&cfg, "n", "api:\n  port: 1234567", 17, no_env, &err),
                     LM_OK);
    ck_assert_int_eq(cfg.api.port, 1234);
    lm_config_fini(&cfg);
}
END_TEST

START_TEST(test_config_validate_cross_key_rules)
{
    lm_config cfg;
    lm_error err;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_config_validate(&cfg, &err), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "transport.reconnect_min", "10s", &err), LM_OK);
    ck_assert_int_eq(lm_config_validate(&cfg, &err), LM_ECONFIG);
    ck_assert_str_eq(err.msg, "transport.reconnect_min (10s) is greater than "
                              "transport.reconnect_max (5s)");
    ck_assert_int_eq(lm_config_set(&cfg, "transport.reconnect_max", "1m", &err), LM_OK);
    ck_assert_int_eq(lm_config_set(&cfg, "database.type", "postgres", &err), LM_OK);
    ck_assert_int_eq(lm_config_validate(&cfg, &err), LM_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "database.postgres.url is empty"));
    ck_assert_int_eq(lm_config_set(&cfg, "database.postgres.url", "host=db", &err), LM_OK);
    ck_assert_int_eq(lm_config_validate(&cfg, &err), LM_OK);
    lm_config_fini(&cfg);
}
END_TEST

Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_config_defaults);
    tcase_add_test(tc, test_config_shipped_file_equals_defaults);
    tcase_add_test(tc, test_config_durations_parse);
    tcase_add_test(tc, test_config_sizes_parse);
    tcase_add_test(tc, test_config_bools_parse);
    tcase_add_test(tc, test_config_enums_urls_and_strings_parse);
    tcase_add_test(tc, test_config_yaml_syntax_error);
    tcase_add_test(tc, test_config_unknown_key_names_line_and_suggests);
    tcase_add_test(tc, test_config_bad_values_name_line_and_key);
    tcase_add_test(tc, test_config_shape_errors);
    tcase_add_test(tc, test_config_duplicate_key_names_both_lines);
    tcase_add_test(tc, test_config_empty_file_is_defaults);
    tcase_add_test(tc, test_config_interpolation);
    tcase_add_test(tc, test_config_env_overrides_and_aliases);
    tcase_add_test(tc, test_config_env_bad_value_names_variable);
    tcase_add_test(tc, test_config_env_unknown_laminar_variable_ignored);
    tcase_add_test(tc, test_config_precedence);
    tcase_add_test(tc, test_config_failed_load_leaves_struct_unchanged);
    tcase_add_test(tc, test_config_dump_round_trip);
    tcase_add_test(tc, test_config_dump_masks_secrets);
    tcase_add_test(tc, test_config_rejects_huge_and_negative_values);
    tcase_add_test(tc, test_config_set_errors);
    tcase_add_test(tc, test_config_get_text_errors);
    tcase_add_test(tc, test_config_load_file_errors);
    tcase_add_test(tc, test_config_validate_cross_key_rules);
    suite_add_tcase(s, tc);
    return s;
}
