/*
 * check_sql_errors.c: what the SQL compiler tells a user about a wrong
 * pipeline. Each case is a mistake written after a shared, valid prefix
 * (the Nexmark source table, its three views and a sink); the compiler
 * must refuse it with LM_EINVAL, at the exact line and column of the
 * mistake, with a message that says what is wrong (and, for a near miss,
 * what was meant). Also: lm_sql_diag_print's rendering, and that no cut
 * of a valid Nexmark pipeline crashes the compiler.
 */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lm_sql.h"
#include "lm_test.h"

/* --- the shared prefix ----------------------------------------------------- */

/* The Nexmark source as the benchmark declares it, its views, and a sink of
 * two BIGINT columns. Valid on its own, but with nothing to run. */
static const char prefix[] =
    "CREATE TABLE datagen (\n"
    "    event_type int,\n"
    "    person  ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR,\n"
    "                city VARCHAR, state VARCHAR, dateTime TIMESTAMP(3), extra VARCHAR>,\n"
    "    auction ROW<id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT,\n"
    "                reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3),\n"
    "                seller BIGINT, category BIGINT, extra VARCHAR>,\n"
    "    bid     ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,\n"
    "                url VARCHAR, dateTime TIMESTAMP(3), extra VARCHAR>,\n"
    "    dateTime AS CASE WHEN event_type = 0 THEN person.dateTime\n"
    "                     WHEN event_type = 1 THEN auction.dateTime\n"
    "                     ELSE bid.dateTime END,\n"
    "    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND\n"
    ") WITH ('connector' = 'nexmark', 'first-event.rate' = '10000', 'events.num' = '1000');\n"
    "CREATE VIEW person AS\n"
    "SELECT person.id, person.name, person.emailAddress, person.creditCard, person.city,\n"
    "       person.state, dateTime, person.extra\n"
    "FROM datagen WHERE event_type = 0;\n"
    "CREATE VIEW auction AS\n"
    "SELECT auction.id, auction.itemName, auction.description, auction.initialBid,\n"
    "       auction.reserve, dateTime, auction.expires, auction.seller, auction.category,\n"
    "       auction.extra\n"
    "FROM datagen WHERE event_type = 1;\n"
    "CREATE VIEW bid AS\n"
    "SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, dateTime, bid.extra\n"
    "FROM datagen WHERE event_type = 2;\n"
    "CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');\n";

/* A statement that completes the prefix into a valid pipeline. */
#define OK_INSERT "INSERT INTO sink SELECT auction, price FROM bid;\n"

/* The lines of the prefix (it ends with a newline). */
static uint32_t
prefix_lines(void)
{
    uint32_t n = 0;
    for (const char *p = prefix; *p != '\0'; p++) {
        n += *p == '\n';
    }
    return n;
}

/* prefix + sql in a new buffer of exactly the text's length (no NUL, so
 * that a read past the end shows under ASan); *len its length. */
static char *
with_prefix(const char *sql, size_t *len)
{
    size_t a = strlen(prefix), b = strlen(sql);
    char *text = malloc(a + b > 0 ? a + b : 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, prefix, a);
    memcpy(text + a, sql, b);
    *len = a + b;
    return text;
}

/* --- the wrong pipelines --------------------------------------------------- */

typedef struct err_case {
    const char *name;
    const char *sql;    /* written after the prefix */
    uint32_t line, col; /* of the mistake, line counted from the start of sql */
    const char *frag;   /* the message contains it */
    const char *absent; /* the message must not contain it (NULL: no check) */
} err_case;

#define P10     "(((((((((("
#define P50     P10 P10 P10 P10 P10
#define WIN_BID "TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))"

static const err_case cases[] = {
    /* --- names ------------------------------------------------------------ */
    {"unknown table, near miss", "INSERT INTO sink SELECT auction, price FROM bids;\n", 1, 45,
     "unknown table or view 'bids' (did you mean 'bid'?)", NULL},
    {"unknown table, far miss", "INSERT INTO sink SELECT auction, price FROM zzz;\n", 1, 45,
     "unknown table or view 'zzz'", "did you mean"},
    {"unknown column, near miss", "INSERT INTO sink SELECT auction, prce FROM bid;\n", 1, 34,
     "unknown column 'prce' (did you mean 'price'?)", NULL},
    {"unknown qualifier", "INSERT INTO sink SELECT b.auction, x.price FROM bid AS b;\n", 1, 36,
     "unknown table or alias 'x' in 'x.price'", NULL},
    {"table name hidden by its alias",
     "INSERT INTO sink SELECT auction, price FROM bid b WHERE bid.price > 1;\n", 1, 57,
     "(did you mean 'b.price'?)", NULL},
    {"qualifier of a table not in FROM",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE person.name = 'x';\n", 1, 55,
     "unknown table or alias 'person' in 'person.name'", NULL},
    {"unknown field of a ROW", "INSERT INTO sink SELECT bid.auction, bid.prce FROM datagen;\n", 1,
     38, "unknown column 'bid.prce' (did you mean 'bid.price'?)", NULL},
    {"field of a non-ROW column",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE channel.name = 'x';\n", 1, 55,
     "not a ROW", "did you mean 'channel'"},
    {"unknown qualifier in t.*", "INSERT INTO sink SELECT x.* FROM bid;\n", 1, 25,
     "unknown table or alias 'x' in x.*", NULL},
    {"ambiguous column in a join",
     "INSERT INTO sink\n"
     "SELECT auction, id FROM bid JOIN auction ON bid.auction = auction.id WHERE extra <> '';\n",
     2, 76, "column reference 'extra' is ambiguous: it could be bid.extra or auction.extra", NULL},
    {"unknown column in ON",
     "INSERT INTO sink\n"
     "SELECT b.auction, b.price FROM bid b JOIN auction a ON b.auction = a.idd;\n",
     2, 68, "unknown column 'a.idd' (did you mean 'a.id'?)", NULL},
    {"unknown function, near miss", "INSERT INTO sink SELECT auction, lenght(channel) FROM bid;\n",
     1, 34, "unknown function 'lenght' (did you mean 'length'?)", NULL},
    {"double-quoted string",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE channel = \"abc\";\n", 1, 65,
     "single quotes", NULL},

    /* --- types (named as SQL names them, not as the engine does) ---------- */
    {"string plus number", "INSERT INTO sink SELECT auction, 'a' + 1 FROM bid;\n", 1, 34, "VARCHAR",
     "utf8"},
    {"number compared with a string",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE price = 'x';\n", 1, 55,
     "cannot compare BIGINT with VARCHAR", NULL},
    {"timestamp compared with a number",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE dateTime > 5;\n", 1, 55,
     "cannot compare TIMESTAMP", "int64"},
    {"IN list of another type",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE price IN (1, 'two');\n", 1, 55,
     "BIGINT with VARCHAR", NULL},
    {"BETWEEN of another type",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE price BETWEEN 'a' AND 'b';\n", 1, 55,
     "BIGINT with VARCHAR", NULL},
    {"LIKE on a number", "INSERT INTO sink SELECT auction, price FROM bid WHERE price LIKE 'a%';\n",
     1, 55, "got BIGINT", "utf8"},
    {"NOT of a number", "INSERT INTO sink SELECT auction, price FROM bid WHERE NOT price;\n", 1, 59,
     "NOT needs BOOLEAN operands, this one is BIGINT", "int64"},
    {"AND of a string",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE price > 10 AND channel;\n", 1, 70,
     "AND needs BOOLEAN operands, this one is VARCHAR", "utf8"},
    {"CASE branches of different types",
     "INSERT INTO sink SELECT auction, CASE WHEN price > 1 THEN 'big' ELSE 0 END FROM bid;\n", 1,
     34, "VARCHAR", "utf8"},
    {"WHERE on a non-boolean", "INSERT INTO sink SELECT auction, price FROM bid WHERE price;\n", 1,
     55, "WHERE needs a BOOLEAN condition, got BIGINT", NULL},
    {"HAVING on a non-boolean",
     "INSERT INTO sink SELECT auction, count(*) FROM bid GROUP BY auction HAVING count(*);\n", 1,
     76, "HAVING needs a BOOLEAN condition, got BIGINT", NULL},
    {"CAST to ROW", "INSERT INTO sink SELECT auction, CAST(price AS ROW<a BIGINT>) FROM bid;\n", 1,
     48, "a ROW type is only allowed for a table's columns", NULL},
    {"CAST to an unknown type",
     "INSERT INTO sink SELECT auction, CAST(price AS BIGNUM) FROM bid;\n", 1, 48,
     "unknown type 'BIGNUM'", NULL},

    /* --- aggregates and grouping ------------------------------------------ */
    {"aggregate in WHERE", "INSERT INTO sink SELECT auction, price FROM bid WHERE count(*) > 1;\n",
     1, 55, "aggregate function count is not allowed in WHERE", NULL},
    {"nested aggregate",
     "INSERT INTO sink SELECT auction, sum(max(price)) FROM bid GROUP BY auction;\n", 1, 38,
     "aggregate functions cannot be nested", NULL},
    {"aggregate in GROUP BY",
     "INSERT INTO sink SELECT auction, count(*) FROM bid GROUP BY count(*);\n", 1, 61,
     "aggregate functions are not allowed in GROUP BY", NULL},
    {"column not grouped", "INSERT INTO sink SELECT auction, price FROM bid GROUP BY auction;\n", 1,
     34, "column 'price' must appear in GROUP BY or be used in an aggregate function", NULL},
    {"SELECT * with GROUP BY", "INSERT INTO sink SELECT * FROM bid GROUP BY auction;\n", 1, 25,
     "SELECT * cannot be used with GROUP BY", NULL},
    {"sum of VARCHAR",
     "CREATE TABLE s2 (auction BIGINT, n VARCHAR) WITH ('connector' = 'blackhole');\n"
     "INSERT INTO s2 SELECT auction, sum(channel) FROM bid GROUP BY auction;\n",
     2, 36, "sum needs a number, got VARCHAR", NULL},
    {"sum(*)", "INSERT INTO sink SELECT auction, sum(*) FROM bid GROUP BY auction;\n", 1, 34,
     "sum(*) is not allowed: only count(*)", NULL},
    {"count of two arguments",
     "INSERT INTO sink SELECT auction, count(price, bidder) FROM bid GROUP BY auction;\n", 1, 34,
     "count takes one argument or *", NULL},
    {"MAX over an updating input",
     "CREATE VIEW c AS SELECT auction, count(*) AS n FROM bid GROUP BY auction;\n"
     "INSERT INTO sink SELECT auction, max(n) FROM c GROUP BY auction;\n",
     2, 34, "MAX over an updated input", NULL},

    /* --- windows ---------------------------------------------------------- */
    {"window_start of a plain table", "INSERT INTO sink SELECT auction, window_start FROM bid;\n",
     1, 34, "window bounds come from a window, FROM TABLE(TUMBLE(", NULL},
    {"window_start without GROUP BY",
     "INSERT INTO sink SELECT auction, window_start FROM " WIN_BID ";\n", 1, 34,
     "window_start of a window table function can only be used in GROUP BY", NULL},
    {"window_start in WHERE",
     "INSERT INTO sink SELECT auction, count(*) FROM " WIN_BID "\n"
     "WHERE window_start > dateTime GROUP BY auction, window_start, window_end;\n",
     2, 7, "can only be used in GROUP BY", NULL},
    {"DESCRIPTOR of a non-time column",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(price), INTERVAL '10' "
     "SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 66, "DESCRIPTOR(price): windows need an event-time column", NULL},
    {"hop size not a multiple of the slide",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '3' "
     "SECOND, INTERVAL '10' SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 95, "the window size must be a multiple of the slide", NULL},
    {"window size not an interval",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), 10))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 77, "the window size must be an INTERVAL literal", NULL},
    {"window size zero",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '0' "
     "SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 77, "the window size must be a positive", NULL},
    {"bad interval text",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL 'abc' "
     "SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 86, "invalid interval 'abc'", NULL},
    {"TUMBLE without its size",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime)))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 37, "TUMBLE takes one interval (the window size) after DESCRIPTOR(...), got 0", NULL},
    {"SESSION with two intervals",
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(SESSION(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' "
     "SECOND, INTERVAL '2' SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     2, 37, "SESSION takes one interval (the gap)", NULL},
    {"window aggregate over an outer join",
     "CREATE VIEW j AS SELECT b.auction, b.price, b.dateTime FROM bid b LEFT JOIN auction a ON "
     "b.auction = a.id;\n"
     "INSERT INTO sink\n"
     "SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE j, DESCRIPTOR(dateTime), INTERVAL '10' "
     "SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     3, 50, "'j' is updated", NULL},
    {"window aggregate over an updating aggregate",
     "CREATE VIEW c AS SELECT auction, dateTime, count(*) AS n FROM bid GROUP BY auction, "
     "dateTime;\n"
     "INSERT INTO sink\n"
     "SELECT auction, sum(n) FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(dateTime), INTERVAL '10' "
     "SECOND))\n"
     "GROUP BY auction, window_start, window_end;\n",
     3, 48, "'c' is updated (it comes from a GROUP BY without a window", NULL},

    /* --- joins ------------------------------------------------------------ */
    {"join without an equality",
     "INSERT INTO sink\n"
     "SELECT b.auction, b.price FROM bid b JOIN auction a ON b.price > a.initialBid;\n",
     2, 38, "this join has no equality between columns of its two inputs", NULL},
    {"alias used twice",
     "INSERT INTO sink SELECT b.auction, b.price FROM bid b JOIN bid b ON b.auction = b.auction;\n",
     1, 64, "'b' names two inputs of this FROM", NULL},
    {"comma join without a condition",
     "INSERT INTO sink SELECT b.auction, b.price FROM bid b, auction a;\n", 1, 54,
     "a streaming join needs one (a.x = b.y)", NULL},

    /* --- INSERT ----------------------------------------------------------- */
    {"INSERT column count", "INSERT INTO sink SELECT auction, price, bidder FROM bid;\n", 1, 18,
     "INSERT INTO sink: the query gives 3 column(s), the table has 2", NULL},
    {"INSERT column type", "INSERT INTO sink SELECT auction, channel FROM bid;\n", 1, 34,
     "column 2 (price) is BIGINT in the table but the query gives VARCHAR", NULL},
    {"INSERT INTO an unknown table", "INSERT INTO sinks SELECT auction, price FROM bid;\n", 1, 13,
     "unknown table or view 'sinks' (did you mean 'sink'?)", NULL},
    {"INSERT INTO a view",
     "INSERT INTO bid SELECT auction, price, 0, '', '', dateTime, '' FROM bid;\n", 1, 13,
     "cannot INSERT INTO view 'bid'", NULL},
    {"INSERT INTO a source-only connector", "INSERT INTO datagen SELECT auction, price FROM bid;\n",
     1, 13, "table 'datagen' (connector 'nexmark') cannot be written to", NULL},
    {"INSERT with a column list",
     "INSERT INTO sink (auction, price) SELECT auction, price FROM bid;\n", 1, 18,
     "a column list in INSERT INTO is not supported", NULL},
    {"reading a sink-only connector", "INSERT INTO sink SELECT auction, price FROM sink;\n", 1, 45,
     "table 'sink' (connector 'blackhole') cannot be read from", NULL},
    {"reading stdout",
     "CREATE TABLE out (a BIGINT) WITH ('connector' = 'stdout');\n"
     "INSERT INTO sink SELECT a, a FROM out;\n",
     2, 35, "table 'out' (connector 'stdout') cannot be read from", NULL},

    /* --- tables and connectors ------------------------------------------- */
    {"unknown connector, near miss",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'blackhol');\n" OK_INSERT, 1, 48,
     "(did you mean 'blackhole'?)", NULL},
    {"missing connector option",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'filesystem');\n" OK_INSERT, 1, 1,
     "table 't2': connector 'filesystem' needs option 'path'", NULL},
    {"no connector", "CREATE TABLE t2 (a BIGINT);\n" OK_INSERT, 1, 14,
     "table 't2' needs WITH ('connector' = '...')", NULL},
    {"unknown option, near miss",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'nexmark', 'events.nums' = '5');\n" OK_INSERT,
     1, 59, "unknown option 'events.nums' for connector 'nexmark' (did you mean 'events.num'?)",
     NULL},
    {"unknown option, far miss",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'impulse', 'event_rate' = '10');\n" OK_INSERT,
     1, 59, "interval_us", NULL},
    {"option given twice",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'blackhole', 'connector' = "
     "'stdout');\n" OK_INSERT,
     1, 61, "option 'connector' is given twice", NULL},
    {"bad option word",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'filesystem', 'path' = '/x', 'format' = "
     "'xml');\n" OK_INSERT,
     1, 88, "option 'format' must be one of json/csv, got 'xml'", NULL},
    {"bad option number",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'filesystem', 'path' = '/x', 'rolling_ms' = "
     "'10s');\n" OK_INSERT,
     1, 92, "option 'rolling_ms' must be a whole number (0 or more), got '10s'", NULL},
    {"bad nexmark option value",
     "CREATE TABLE t2 (a BIGINT) WITH ('connector' = 'nexmark', 'events.num' = "
     "'lots');\n" OK_INSERT,
     1, 74, "option 'events.num': 'lots' is not an integer", "option 'events.num': nexmark"},
    {"duplicate column",
     "CREATE TABLE t2 (a BIGINT, b VARCHAR, a BIGINT) WITH ('connector' = "
     "'blackhole');\n" OK_INSERT,
     1, 39, "column 'a' is declared twice", NULL},
    {"duplicate table",
     "CREATE TABLE sink (a BIGINT) WITH ('connector' = 'blackhole');\n" OK_INSERT, 1, 14,
     "a table or view named 'sink' already exists", NULL},
    {"view named as a view", "CREATE VIEW bid AS SELECT auction FROM datagen;\n" OK_INSERT, 1, 13,
     "a table or view named 'bid' already exists", NULL},
    {"computed column of a wrong type",
     "CREATE TABLE t2 (a BIGINT, a2 AS a + 'x') WITH ('connector' = 'blackhole');\n" OK_INSERT, 1,
     34, "'+' needs numbers", NULL},
    {"WATERMARK on a non-timestamp",
     "CREATE TABLE t2 (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR a AS a - 5) WITH ('connector' = "
     "'impulse');\n" OK_INSERT,
     1, 59, "WATERMARK FOR 'a': the column is BIGINT, it must be a TIMESTAMP", NULL},
    {"WATERMARK of another column",
     "CREATE TABLE t2 (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS a) WITH ('connector' = "
     "'impulse');\n" OK_INSERT,
     1, 65, "the WATERMARK expression must be the column itself or the column minus a constant",
     NULL},
    {"WATERMARK ahead of the column",
     "CREATE TABLE t2 (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts + INTERVAL '1' SECOND) "
     "WITH ('connector' = 'impulse');\n" OK_INSERT,
     1, 65, "the WATERMARK expression must be", NULL},
    {"WATERMARK on an unknown column",
     "CREATE TABLE t2 (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR tss AS tss) WITH ('connector' = "
     "'impulse');\n" OK_INSERT,
     1, 59, "WATERMARK FOR 'tss': no such column in table 't2'", NULL},

    /* --- settings and whole pipelines ------------------------------------ */
    {"unknown SET key", "SET pipeline.paralellism = 4;\n" OK_INSERT, 1, 5,
     "unknown setting 'pipeline.paralellism'", NULL},
    {"bad SET value", "SET pipeline.parallelism = 'many';\n" OK_INSERT, 1, 28,
     "pipeline.parallelism must be a whole number from 1 to 1024, got 'many'", NULL},
    {"bad checkpoint interval", "SET checkpoint.interval = 'often';\n" OK_INSERT, 1, 27,
     "checkpoint.interval must be a duration", NULL},
    {"checkpoint interval of nan", "SET checkpoint.interval = nan;\n" OK_INSERT, 1, 27,
     "checkpoint.interval must be a duration", NULL},
    {"negative checkpoint interval", "SET checkpoint.interval = '-5s';\n" OK_INSERT, 1, 27,
     "checkpoint.interval must be a duration", NULL},
    {"checkpoint interval with a made-up unit",
     "SET checkpoint.interval = '10 secxyz';\n" OK_INSERT, 1, 27,
     "checkpoint.interval must be a duration", NULL},
    {"bad state TTL", "SET state.ttl = '1 month';\n" OK_INSERT, 1, 17,
     "state.ttl must be a duration", NULL},
    {"nothing to run", "CREATE VIEW v AS SELECT auction FROM bid;\n", 1, 1,
     "the pipeline has no INSERT INTO and no query: nothing to run", NULL},
    {"view with an unknown column",
     "CREATE VIEW v AS SELECT auction, prize FROM bid;\n"
     "INSERT INTO sink SELECT auction, prize FROM v;\n",
     1, 34, "unknown column 'prize' (did you mean 'price'?)", NULL},
    {"view over itself", "CREATE VIEW v1 AS SELECT * FROM v1;\n" OK_INSERT, 1, 33,
     "refers to itself", NULL},
    {"view over an unknown table",
     "CREATE VIEW v AS SELECT auction, price FROM bidz;\n"
     "INSERT INTO sink SELECT auction, price FROM v;\n",
     1, 45, "unknown table or view 'bidz' (did you mean 'bid'?)", NULL},
    {"UNION ALL of different widths",
     "INSERT INTO sink\n"
     "SELECT auction, price FROM bid\n"
     "UNION ALL\n"
     "SELECT auction FROM bid;\n",
     4, 1, "UNION ALL: this query gives 1 column", NULL},
    {"duplicate output column", "INSERT INTO sink SELECT auction, price AS auction FROM bid;\n", 1,
     34, "the output column name 'auction' is used twice", NULL},

    /* --- syntax ----------------------------------------------------------- */
    {"missing FROM item", "INSERT INTO sink SELECT auction, price FROM;\n", 1, 44,
     "expected a table name after FROM, got ';'", NULL},
    {"unbalanced parenthesis", "INSERT INTO sink SELECT auction, (price + 1 FROM bid;\n", 1, 45,
     "expected ')' to close the '('", NULL},
    {"unterminated string",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE channel = 'abc;\n", 1, 65,
     "unterminated string", NULL},
    {"unterminated comment", "INSERT INTO sink SELECT auction, price FROM bid; /* to the end\n", 1,
     50, "unterminated comment", NULL},
    {"misspelled keyword", "SELEC auction, price FROM bid;\n", 1, 1,
     "expected a statement (CREATE TABLE, CREATE VIEW, INSERT INTO, SET or SELECT), got 'SELEC'",
     NULL},
    {"missing semicolon", "INSERT INTO sink SELECT auction, price FROM bid\n" OK_INSERT, 2, 1,
     "expected ';' or end of input after the statement, got 'INSERT'", NULL},
    {"trailing comma in the select list", "INSERT INTO sink SELECT auction, price, FROM bid;\n", 1,
     41, "expected an expression after ',', got 'FROM'", NULL},
    {"dangling OR", "INSERT INTO sink SELECT auction, price FROM bid WHERE price > 1 OR;\n", 1, 67,
     "expected an expression after 'OR', got ';'", NULL},
    {"missing comma between columns",
     "CREATE TABLE t2 (a BIGINT b VARCHAR) WITH ('connector' = 'blackhole');\n", 1, 27,
     "expected ',' or ')' in the column list, got 'b'", NULL},
    {"unknown type", "CREATE TABLE t2 (a BIGINTT) WITH ('connector' = 'blackhole');\n", 1, 20,
     "unknown type 'BIGINTT'", NULL},
    {"SELECT without FROM", "SELECT 1;\n", 1, 9, "expected ',' or FROM after the select list",
     NULL},
    {"TABLE of a subquery in a window",
     "INSERT INTO sink SELECT auction, count(*) FROM TABLE(TUMBLE(TABLE (SELECT * FROM bid), "
     "DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY auction, window_start, window_end;\n",
     1, 67, "expected a table name after TABLE, got '('", NULL},
    {"nesting too deep",
     "INSERT INTO sink SELECT auction, price FROM bid WHERE " P50 P50 P50 P50 P10 "price > 1;\n", 1,
     254, "nested too deeply", NULL},

    /* --- constructs a stream cannot run ----------------------------------- */
    {"ORDER BY", "INSERT INTO sink SELECT auction, price FROM bid ORDER BY price;\n", 1, 49,
     "ORDER BY is not supported in a streaming query", NULL},
    {"LIMIT", "INSERT INTO sink SELECT auction, price FROM bid LIMIT 10;\n", 1, 49,
     "LIMIT is not supported in a streaming query", NULL},
    {"OFFSET", "INSERT INTO sink SELECT auction, price FROM bid OFFSET 3;\n", 1, 49,
     "OFFSET is not supported in a streaming query", NULL},
    {"RIGHT JOIN",
     "INSERT INTO sink\n"
     "SELECT b.auction, b.price FROM bid b RIGHT JOIN auction a ON b.auction = a.id;\n",
     2, 38, "RIGHT JOIN is not supported in a streaming query", NULL},
    {"FULL JOIN",
     "INSERT INTO sink SELECT b.auction, b.price FROM bid b FULL JOIN auction a ON b.auction = "
     "a.id;\n",
     1, 55, "FULL JOIN is not supported in a streaming query", NULL},
    {"SELECT DISTINCT", "INSERT INTO sink SELECT DISTINCT auction, price FROM bid;\n", 1, 25,
     "SELECT DISTINCT is not supported in a streaming query; use GROUP BY", NULL},
    {"OVER", "INSERT INTO sink SELECT auction, count(*) OVER (PARTITION BY auction) FROM bid;\n", 1,
     43, "window functions (OVER ...) are not supported in a streaming query", NULL},
};

#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* The prefix with a valid INSERT compiles: the cases fail for their own
 * mistake, not the prefix's. */
START_TEST(test_prefix_compiles)
{
    size_t len;
    char *text = with_prefix(OK_INSERT, &len);
    json_t *plan = NULL;
    lm_sql_diag d;
    int rv = lm_sql_compile(text, len, NULL, &plan, NULL, &d);
    free(text);
    ck_assert_msg(rv == LM_OK, "the prefix fails: %u:%u: %s", d.pos.line, d.pos.col, d.msg);
    ck_assert_ptr_nonnull(plan);
    json_decref(plan);
    ck_assert_uint_eq(prefix_lines(), 27);
}
END_TEST

START_TEST(test_error_case)
{
    const err_case *c = &cases[_i];
    uint32_t base = prefix_lines();
    size_t len;
    char *text = with_prefix(c->sql, &len);
    json_t *plan = NULL;
    lm_sql_diag d;
    int64_t cp = 0;

    int rv = lm_sql_compile(text, len, NULL, &plan, &cp, &d);
    free(text);
    if (rv == LM_OK) {
        json_decref(plan);
        ck_abort_msg("[%s] compiled, but should fail at %u:%u with \"%s\":\n%s", c->name, c->line,
                     c->col, c->frag, c->sql);
    }
    ck_assert_ptr_null(plan);
    ck_assert_msg(rv == LM_EINVAL, "[%s] rv %d, want LM_EINVAL", c->name, rv);
    bool at = d.pos.line == base + c->line && d.pos.col == c->col;
    bool says = strstr(d.msg, c->frag) != NULL && (c->absent == NULL || !strstr(d.msg, c->absent));
    if (!at || !says) {
        ck_abort_msg("[%s]\n%s  got      %u:%u: %s\n  expected %u:%u: ...%s...%s%s%s", c->name,
                     c->sql, d.pos.line > base ? d.pos.line - base : 0, d.pos.col, d.msg, c->line,
                     c->col, c->frag, c->absent ? " (without: " : "", c->absent ? c->absent : "",
                     c->absent ? ")" : "");
    }
    ck_assert_msg(strchr(d.msg, '\n') == NULL, "[%s] a message of one line: %s", c->name, d.msg);
}
END_TEST

/* Corners that are not mistakes compile. */
static const char *const valid[] = {
    "INSERT INTO sink SELECT auction, count(*) FROM bid GROUP BY auction, auction;\n",
    "INSERT INTO sink SELECT auction, count(*) FROM " WIN_BID
    " GROUP BY auction, window_start, window_end, window_start;\n",
    "INSERT INTO sink SELECT auction, price FROM bid WHERE price = NULL;\n",
    "INSERT INTO sink SELECT auction, count(DISTINCT price) FROM bid GROUP BY auction;\n",
    "SELECT *, 1 AS one FROM bid;\n",
};

START_TEST(test_valid_corner)
{
    size_t len;
    char *text = with_prefix(valid[_i], &len);
    json_t *plan = NULL;
    lm_sql_diag d;
    int rv = lm_sql_compile(text, len, NULL, &plan, NULL, &d);
    free(text);
    ck_assert_msg(rv == LM_OK, "%s  fails: %u:%u: %s", valid[_i],
                  d.pos.line > prefix_lines() ? d.pos.line - prefix_lines() : 0, d.pos.col, d.msg);
    json_decref(plan);
}
END_TEST

/* A checkpoint interval is set as milliseconds or as an interval's text. */
START_TEST(test_set_durations)
{
    static const struct {
        const char *value;
        int64_t ms;
    } durations[] = {
        {"500", 500},       {"'10s'", 10000},        {"'1.5 s'", 1500},
        {"'1 min'", 60000}, {"'1 min 30 s'", 90000}, {"'2 hours'", 7200000},
        {"'250 ms'", 250},  {"'1 day'", 86400000},
    };
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        char sql[256];
        size_t len;
        snprintf(sql, sizeof(sql), "SET checkpoint.interval = %s;\n" OK_INSERT, durations[i].value);
        char *text = with_prefix(sql, &len);
        json_t *plan = NULL;
        lm_sql_diag d;
        int64_t cp = -1;
        int rv = lm_sql_compile(text, len, NULL, &plan, &cp, &d);
        free(text);
        ck_assert_msg(rv == LM_OK, "%s: %s", durations[i].value, d.msg);
        ck_assert_msg(cp == durations[i].ms, "%s: %lld ms, want %lld", durations[i].value,
                      (long long)cp, (long long)durations[i].ms);
        json_decref(plan);
    }
}
END_TEST

/* An empty pipeline, or one of comments and semicolons, is an error at 1:1. */
START_TEST(test_empty)
{
    static const char *const texts[] = {"", "-- nothing\n", ";;;", "/* a */ ; -- b"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t len = strlen(texts[i]);
        char *text = malloc(len > 0 ? len : 1);
        ck_assert_ptr_nonnull(text);
        memcpy(text, texts[i], len);
        json_t *plan = NULL;
        lm_sql_diag d;
        int rv = lm_sql_compile(text, len, NULL, &plan, NULL, &d);
        free(text);
        ck_assert_int_eq(rv, LM_EINVAL);
        ck_assert_ptr_null(plan);
        ck_assert_uint_eq(d.pos.line, 1);
        ck_assert_uint_eq(d.pos.col, 1);
        ck_assert_ptr_nonnull(strstr(d.msg, "nothing to run"));
    }
}
END_TEST

/* --- lm_sql_diag_print ----------------------------------------------------- */

static char *
print_diag(const lm_sql_diag *d, const char *origin, const char *text, size_t len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(f);
    lm_sql_diag_print(d, origin, text, len, f);
    fclose(f);
    return buf;
}

/* A compile error prints as "origin:LINE:COL: error: MSG", the line, and a
 * caret under the column. */
START_TEST(test_diag_print)
{
    const char *sql = "INSERT INTO sink\nSELECT auction, prce FROM bid;\n";
    uint32_t base = prefix_lines();
    size_t len;
    char *text = with_prefix(sql, &len);
    json_t *plan = NULL;
    lm_sql_diag d;
    char want[1024];

    ck_assert_int_eq(lm_sql_compile(text, len, NULL, &plan, NULL, &d), LM_EINVAL);
    ck_assert_uint_eq(d.pos.line, base + 2);
    ck_assert_uint_eq(d.pos.col, 17);
    char *out = print_diag(&d, "q.sql", text, len);
    snprintf(want, sizeof(want),
             "q.sql:%u:17: error: unknown column 'prce' (did you mean 'price'?)\n"
             "  SELECT auction, prce FROM bid;\n"
             "                  ^\n",
             base + 2);
    ck_assert_str_eq(out, want);
    free(out);
    free(text);
}
END_TEST

/* The caret keeps the line's tabs so that it lines up; the last line
 * without a newline, a CRLF line, a position past the text, and no
 * position at all. */
START_TEST(test_diag_print_edges)
{
    lm_sql_diag d = {.pos = {2, 4}};
    snprintf(d.msg, sizeof(d.msg), "bad");
    const char *t1 = "x\n\tab cd";
    char *out = print_diag(&d, "f", t1, strlen(t1));
    ck_assert_str_eq(out, "f:2:4: error: bad\n  \tab cd\n  \t  ^\n");
    free(out);

    const char *t2 = "abc\r\nxyz def\r\n";
    d.pos = (lm_sql_pos){2, 5};
    out = print_diag(&d, "f", t2, strlen(t2));
    ck_assert_str_eq(out, "f:2:5: error: bad\n  xyz def\n      ^\n");
    free(out);

    d.pos = (lm_sql_pos){9, 1};
    out = print_diag(&d, "f", t2, strlen(t2));
    ck_assert_str_eq(out, "f:9:1: error: bad\n");
    free(out);

    d.pos = (lm_sql_pos){0, 0};
    out = print_diag(&d, "f", t2, strlen(t2));
    ck_assert_str_eq(out, "f: error: bad\n");
    free(out);
}
END_TEST

/* --- cuts of the valid pipelines ----------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every cut of every Nexmark pipeline (at every 7th byte) compiles or
 * fails cleanly: LM_EINVAL, a message, a position inside the text. */
START_TEST(test_prefixes_of_nexmark)
{
    char dir[1024], path[1400];
    char *names[64];
    size_t nnames = 0, ncompiled = 0, nfailed = 0;

    snprintf(dir, sizeof(dir), "%s/scripts/nexmark/sql", lm_test_root());
    DIR *dp = opendir(dir);
    ck_assert_msg(dp != NULL, "cannot open %s", dir);
    for (struct dirent *e; (e = readdir(dp)) != NULL && nnames < 64;) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == 'q' && l > 4 && strcmp(e->d_name + l - 4, ".sql") == 0) {
            names[nnames++] = strdup(e->d_name);
        }
    }
    closedir(dp);
    ck_assert_uint_ge(nnames, 5);
    qsort(names, nnames, sizeof(names[0]), cmp_str);

    int64_t t0 = lm_test_now_ms();
    for (size_t f = 0; f < nnames; f++) {
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
        char *whole = lm_test_read_file(path, &len);
        ck_assert_msg(whole != NULL, "cannot read %s", path);
        for (size_t cut = 0; cut < len; cut += 7) {
            char *text = malloc(cut > 0 ? cut : 1);
            ck_assert_ptr_nonnull(text);
            memcpy(text, whole, cut);
            uint32_t lines = 1;
            for (size_t i = 0; i < cut; i++) {
                lines += text[i] == '\n';
            }
            json_t *plan = NULL;
            lm_sql_diag d;
            int rv = lm_sql_compile(text, cut, NULL, &plan, NULL, &d);
            free(text);
            if (rv == LM_OK) {
                ck_assert_ptr_nonnull(plan);
                json_decref(plan);
                ncompiled++;
                continue;
            }
            nfailed++;
            ck_assert_ptr_null(plan);
            ck_assert_msg(rv == LM_EINVAL, "%s cut at %zu: rv %d", names[f], cut, rv);
            ck_assert_msg(d.msg[0] != '\0', "%s cut at %zu: no message", names[f], cut);
            ck_assert_msg(d.pos.line >= 1 && d.pos.line <= lines && d.pos.col >= 1,
                          "%s cut at %zu (%u lines): position %u:%u: %s", names[f], cut, lines,
                          d.pos.line, d.pos.col, d.msg);
            ck_assert_msg(strstr(d.msg, "internal") == NULL, "%s cut at %zu: %u:%u: %s", names[f],
                          cut, d.pos.line, d.pos.col, d.msg);
        }
        /* the whole file compiles */
        json_t *plan = NULL;
        lm_sql_diag d;
        ck_assert_msg(lm_sql_compile(whole, len, NULL, &plan, NULL, &d) == LM_OK, "%s: %u:%u: %s",
                      names[f], d.pos.line, d.pos.col, d.msg);
        json_decref(plan);
        ncompiled++;
        free(whole);
        free(names[f]);
    }
    int64_t ms = lm_test_now_ms() - t0;
    ck_assert_uint_gt(ncompiled, 0);
    ck_assert_uint_gt(nfailed, 0);
    ck_assert_msg(ms < 3000 * lm_test_slowdown(), "%zu cuts took %lld ms", ncompiled + nfailed,
                  (long long)ms);
}
END_TEST

Suite *
sql_errors_suite(void)
{
    Suite *s = suite_create("sql_errors");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_prefix_compiles);
    tcase_add_loop_test(tc, test_error_case, 0, NCASES);
    tcase_add_loop_test(tc, test_valid_corner, 0, (int)(sizeof(valid) / sizeof(valid[0])));
    tcase_add_test(tc, test_set_durations);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_diag_print);
    tcase_add_test(tc, test_diag_print_edges);
    tcase_add_test(tc, test_prefixes_of_nexmark);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
