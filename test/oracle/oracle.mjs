// oracle.mjs: DuckDB as the batch oracle of Laminar's Nexmark queries.
//
//   node test/oracle/oracle.mjs QUERY DUMP_DIR OUT_FILE
//
// Loads DUMP_DIR/person.csv, auction.csv and bid.csv (written by
// lm_nexmark_dump) into DuckDB tables person / auction / bid, runs the
// DuckDB equivalent of Nexmark query QUERY (q0 .. q8) and writes its rows
// to OUT_FILE as JSON lines formatted exactly as Laminar's file_sink
// writes them (runtime/lm_rowfmt.c): one compact object per row, keys in
// the query's output order, int64 as integers, float64 as C's first
// round-tripping %.15g / %.16g / %.17g, timestamps as
// "YYYY-MM-DD HH:MM:SS.ffffff" (UTC), strings JSON-escaped the way
// Laminar escapes them. Row order is not meaningful (the caller sorts).
// The rows are the final answer: no "_retract" column.
//
// Exit 0 on success; on any error the error is printed and the exit
// status is 1.
//
// Adding a query: add an entry to QUERIES (the tables it reads and its
// SQL). The SQL must have Flink's semantics for the Nexmark query, with
// the output column names and order of Laminar's plan, and only the
// column types the formatter accepts (BOOLEAN, integers, DOUBLE,
// TIMESTAMP, VARCHAR): cast DECIMAL and HUGEINT results explicitly.
//
// Windows (DuckDB has no TUMBLE / HOP table functions) are computed on
// epoch microseconds with the macros below, with Flink's definitions:
// a tumbling window of size S starts at floor(ts / S) * S; the hopping
// windows of size S sliding every L that contain ts are those whose start
// is a multiple of L in (ts - S, ts]; window_end = window_start + S.
// AVG is Laminar's: sum(x)::DOUBLE / count(x).

import { DuckDBInstance, DuckDBTypeId } from '@duckdb/node-api';
import fs from 'node:fs';
import path from 'node:path';

// --- the queries ----------------------------------------------------------

const SEC = 1000000; // microseconds

const QUERIES = {
    q0: {
        tables: ['bid'],
        sql: `SELECT auction, bidder, price, dateTime, extra FROM bid`,
    },
    q1: {
        tables: ['bid'],
        // Laminar multiplies in float64: the double 0.908 times price as a double.
        sql: `SELECT auction, bidder, 0.908::DOUBLE * price::DOUBLE AS price, dateTime, extra
              FROM bid`,
    },
    q2: {
        tables: ['bid'],
        sql: `SELECT auction, price FROM bid WHERE auction % 123 = 0`,
    },
    q3: {
        tables: ['person', 'auction'],
        sql: `SELECT P.name, P.city, P.state, A.id
              FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
              WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')`,
    },
    q4: {
        tables: ['auction', 'bid'],
        sql: `SELECT Q.category, sum(Q.final)::BIGINT::DOUBLE / count(Q.final) AS avg
              FROM (SELECT max(B.price) AS final, A.category
                    FROM auction A, bid B
                    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
                    GROUP BY A.id, A.category) Q
              GROUP BY Q.category`,
    },
    q5: {
        tables: ['bid'],
        sql: `WITH hb AS (
                  SELECT B.auction, W.starttime, W.endtime
                  FROM bid B, LATERAL hop_windows(epoch_us(B.dateTime), ${2 * SEC}, ${10 * SEC}) W
              ),
              AuctionBids AS (
                  SELECT auction, count(*) AS num, starttime, endtime
                  FROM hb GROUP BY auction, starttime, endtime
              ),
              MaxBids AS (
                  SELECT max(num) AS maxn, starttime, endtime
                  FROM AuctionBids GROUP BY starttime, endtime
              )
              SELECT AuctionBids.auction, AuctionBids.num
              FROM AuctionBids JOIN MaxBids
                ON AuctionBids.starttime = MaxBids.starttime
               AND AuctionBids.endtime = MaxBids.endtime
               AND AuctionBids.num >= MaxBids.maxn`,
    },
    q7: {
        tables: ['bid'],
        sql: `SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
              FROM bid B JOIN (
                  SELECT max(price) AS maxprice, window_end AS dateTime
                  FROM (SELECT price,
                               tumble_start(epoch_us(dateTime), ${10 * SEC}) AS window_start,
                               tumble_end(epoch_us(dateTime), ${10 * SEC}) AS window_end
                        FROM bid)
                  GROUP BY window_start, window_end) B1
                ON B.price = B1.maxprice
              WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime`,
    },
    q8: {
        tables: ['person', 'auction'],
        sql: `SELECT P.id, P.name, P.starttime
              FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
                    FROM (SELECT id, name,
                                 tumble_start(epoch_us(dateTime), ${10 * SEC}) AS window_start,
                                 tumble_end(epoch_us(dateTime), ${10 * SEC}) AS window_end
                          FROM person)
                    GROUP BY id, name, window_start, window_end) P
              JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
                    FROM (SELECT seller,
                                 tumble_start(epoch_us(dateTime), ${10 * SEC}) AS window_start,
                                 tumble_end(epoch_us(dateTime), ${10 * SEC}) AS window_end
                          FROM auction)
                    GROUP BY seller, window_start, window_end) A
                ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime`,
    },
};

// Window arithmetic on epoch microseconds (BIGINT), floor semantics for
// negative times too.
const MACROS = [
    `CREATE MACRO floor_to(us, size) AS us - (((us % size) + size) % size)`,
    `CREATE MACRO tumble_start(us, size) AS make_timestamp(floor_to(us, size))`,
    `CREATE MACRO tumble_end(us, size) AS make_timestamp(floor_to(us, size) + size)`,
    // One row per hopping window containing us: starts are the multiples of
    // slide in (us - size, us].
    `CREATE MACRO hop_windows(us, slide, size) AS TABLE
         SELECT make_timestamp(floor_to(us, slide) - k * slide) AS starttime,
                make_timestamp(floor_to(us, slide) - k * slide + size) AS endtime
         FROM range(0, (size + slide - 1) // slide) AS t(k)
         WHERE floor_to(us, slide) - k * slide > us - size`,
];

// The dump's CSV files (lm_nexmark_dump): a header, strings always quoted
// with inner quotes doubled, timestamps 'YYYY-MM-DD HH:MM:SS.mmm' UTC.
const TABLES = {
    person: {
        id: 'BIGINT', name: 'VARCHAR', emailAddress: 'VARCHAR', creditCard: 'VARCHAR',
        city: 'VARCHAR', state: 'VARCHAR', dateTime: 'TIMESTAMP', extra: 'VARCHAR',
    },
    auction: {
        id: 'BIGINT', itemName: 'VARCHAR', description: 'VARCHAR', initialBid: 'BIGINT',
        reserve: 'BIGINT', dateTime: 'TIMESTAMP', expires: 'TIMESTAMP', seller: 'BIGINT',
        category: 'BIGINT', extra: 'VARCHAR',
    },
    bid: {
        auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR',
        url: 'VARCHAR', dateTime: 'TIMESTAMP', extra: 'VARCHAR',
    },
};

function sqlString(s) {
    return `'${s.replace(/'/g, "''")}'`;
}

function loadTableSql(name, dir) {
    const cols = Object.entries(TABLES[name])
        .map(([c, t]) => `${sqlString(c)}: ${sqlString(t)}`)
        .join(', ');
    // An empty quoted string is an empty string, not NULL (strings can be
    // empty after the generator trims spaces).
    return `CREATE TABLE ${name} AS SELECT * FROM read_csv(
                ${sqlString(path.join(dir, `${name}.csv`))},
                header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
                allow_quoted_nulls = false, strict_mode = true, columns = {${cols}})`;
}

// --- formatting, as runtime/lm_rowfmt.c ------------------------------------

// The exact decimal expansion of a finite, non-zero |v|: its significant
// digits (no leading or trailing zeros) and the decimal exponent of the
// first one. A double is m * 2^e exactly, so this is integer arithmetic.
const F64 = new DataView(new ArrayBuffer(8));

function exactDecimal(v) {
    F64.setFloat64(0, Math.abs(v));
    const bits = F64.getBigUint64(0);
    const be = Number(bits >> 52n);
    let m = bits & ((1n << 52n) - 1n);
    let e;
    if (be === 0) {
        e = -1074;
    } else {
        m |= 1n << 52n;
        e = be - 1075;
    }
    let s, x;
    if (e >= 0) {
        s = (m << BigInt(e)).toString();
        x = s.length - 1;
    } else {
        s = (m * 5n ** BigInt(-e)).toString(); // |v| = s * 10^e
        x = s.length - 1 + e;
    }
    return { digits: s.replace(/0+$/, ''), x };
}

// The p significant digits of |v| rounded as glibc's printf rounds (the
// exact value, ties to even), and the decimal exponent of the first.
function roundedDigits(v, p) {
    // JavaScript's toExponential rounds the exact value correctly too, but
    // breaks ties away from zero. A tie at p digits means the exact value
    // has p + 1 digits ending in 5, which toExponential(p) then shows
    // exactly: only then is the exact (slow) path needed.
    const wider = Math.abs(v).toExponential(p);
    if (wider[wider.indexOf('e') - 1] !== '5') {
        const e = Math.abs(v).toExponential(p - 1);
        const ei = e.indexOf('e');
        return { digits: e.slice(0, ei).replace('.', ''), x: parseInt(e.slice(ei + 1), 10) };
    }
    let { digits, x } = exactDecimal(v);
    if (digits.length <= p) {
        return { digits: digits.padEnd(p, '0'), x };
    }
    let head = digits.slice(0, p);
    const rest = digits.slice(p);
    const up = rest[0] > '5' || (rest[0] === '5' && (rest.length > 1 || (head.charCodeAt(p - 1) & 1) === 1));
    if (up) {
        head = (BigInt(head) + 1n).toString();
        if (head.length > p) {
            head = head.slice(0, p);
            x += 1;
        }
    }
    return { digits: head, x };
}

// C's "%.{p}g" of a finite double.
export function formatG(v, p) {
    if (v === 0) {
        return Object.is(v, -0) ? '-0' : '0';
    }
    const neg = v < 0;
    const { digits, x } = roundedDigits(v, p);
    let out;
    if (x < -4 || x >= p) {
        let mant = digits[0];
        const frac = digits.slice(1).replace(/0+$/, '');
        if (frac.length > 0) {
            mant += '.' + frac;
        }
        const ax = Math.abs(x);
        out = `${mant}e${x < 0 ? '-' : '+'}${ax < 10 ? '0' : ''}${ax}`;
    } else if (x >= 0) {
        const ip = digits.slice(0, x + 1);
        const frac = digits.slice(x + 1).replace(/0+$/, '');
        out = frac.length > 0 ? `${ip}.${frac}` : ip;
    } else {
        const frac = ('0'.repeat(-x - 1) + digits).replace(/0+$/, '');
        out = `0.${frac}`;
    }
    return neg ? '-' + out : out;
}

// lm_format_double: the first of %.15g, %.16g, %.17g that reads back as v;
// non-finite values are written as null.
export function formatDouble(v) {
    if (!Number.isFinite(v)) {
        return 'null';
    }
    for (let p = 15; p < 17; p++) {
        const s = formatG(v, p);
        if (Number(s) === v) {
            return s;
        }
    }
    return formatG(v, 17);
}

const HEX = '0123456789abcdef';

// json_string of lm_rowfmt.c: \" \\ \n \r \t, other control characters
// \u00XX, everything else as is.
export function jsonString(s) {
    if (!/["\\\x00-\x1f]/.test(s)) {
        return `"${s}"`;
    }
    let out = '"';
    for (let i = 0; i < s.length; i++) {
        const ch = s[i];
        const c = s.charCodeAt(i);
        if (ch === '"' || ch === '\\') {
            out += '\\' + ch;
        } else if (c === 10) {
            out += '\\n';
        } else if (c === 13) {
            out += '\\r';
        } else if (c === 9) {
            out += '\\t';
        } else if (c < 0x20) {
            out += '\\u00' + HEX[c >> 4] + HEX[c & 15];
        } else {
            out += ch;
        }
    }
    return out + '"';
}

function pad(n, w) {
    return String(n).padStart(w, '0');
}

// Civil date of a day count since 1970-01-01 (proleptic Gregorian).
function civilFromDays(z) {
    z += 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) -
                            Math.floor(doe / 146096)) / 365);
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
    const m = mp < 10 ? mp + 3 : mp - 9;
    const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    return [y, m, d];
}

let tsCacheSecs = NaN;
let tsCacheText = '';

// lm_format_timestamp of microseconds since the epoch:
// "%04d-%02d-%02d %02d:%02d:%02d.%06lld", quoted.
export function formatTimestamp(us) {
    let secs, frac;
    if (typeof us === 'bigint' &&
        (us > BigInt(Number.MAX_SAFE_INTEGER) || us < BigInt(Number.MIN_SAFE_INTEGER))) {
        let s = us / 1000000n; // truncated
        let f = us % 1000000n;
        if (f < 0n) {
            f += 1000000n;
            s -= 1n;
        }
        secs = Number(s);
        frac = Number(f);
    } else {
        us = Number(us);
        secs = Math.floor(us / SEC);
        frac = us - secs * SEC;
    }
    if (secs !== tsCacheSecs) {
        const days = Math.floor(secs / 86400);
        const sod = secs - days * 86400;
        const [y, m, d] = civilFromDays(days);
        const ys = y < 0 ? '-' + pad(-y, 3) : pad(y, 4);
        tsCacheText = `${ys}-${pad(m, 2)}-${pad(d, 2)} ${pad(Math.floor(sod / 3600), 2)}:` +
                      `${pad(Math.floor(sod / 60) % 60, 2)}:${pad(sod % 60, 2)}.`;
        tsCacheSecs = secs;
    }
    return `"${tsCacheText}${pad(frac, 6)}"`;
}

// A function formatting one non-null item of a vector of type typeId.
function formatterFor(typeId, name, typeText) {
    switch (typeId) {
    case DuckDBTypeId.BOOLEAN:
        return (v) => (v ? 'true' : 'false');
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
        return (v) => v.toString();
    case DuckDBTypeId.DOUBLE:
        return formatDouble;
    case DuckDBTypeId.TIMESTAMP:
        return (v) => {
            if (!v.isFinite) {
                throw new Error(`column '${name}': infinite timestamp`);
            }
            return formatTimestamp(v.micros);
        };
    case DuckDBTypeId.VARCHAR:
        return jsonString;
    default:
        throw new Error(`column '${name}' has type ${typeText}, which Laminar's schemas do not ` +
                        `have: cast it to BIGINT, DOUBLE, TIMESTAMP, VARCHAR or BOOLEAN`);
    }
}

// --- main ----------------------------------------------------------------------

async function run(query, dumpDir, outFile) {
    const q = QUERIES[query];
    if (q === undefined) {
        throw new Error(`unknown query '${query}' (known: ${Object.keys(QUERIES).join(', ')})`);
    }
    for (const t of q.tables) {
        if (!fs.existsSync(path.join(dumpDir, `${t}.csv`))) {
            throw new Error(`${path.join(dumpDir, `${t}.csv`)} does not exist`);
        }
    }
    const instance = await DuckDBInstance.create(':memory:');
    const con = await instance.connect();
    try {
        for (const m of MACROS) {
            await con.run(m);
        }
        for (const t of q.tables) {
            await con.run(loadTableSql(t, dumpDir));
        }
        const result = await con.stream(q.sql);
        const ncols = result.columnCount;
        const keys = [];
        const fmts = [];
        for (let c = 0; c < ncols; c++) {
            const name = result.columnName(c);
            keys.push((c === 0 ? '{' : ',') + jsonString(name) + ':');
            fmts.push(formatterFor(result.columnTypeId(c), name, result.columnType(c).toString()));
        }
        const fd = fs.openSync(outFile, 'w');
        try {
            for (;;) {
                const chunk = await result.fetchChunk();
                if (chunk === null || chunk.rowCount === 0) {
                    break;
                }
                const n = chunk.rowCount;
                const lines = new Array(n).fill('');
                for (let c = 0; c < ncols; c++) {
                    const vec = chunk.getColumnVector(c);
                    const key = keys[c];
                    const fmt = fmts[c];
                    for (let r = 0; r < n; r++) {
                        const v = vec.getItem(r);
                        lines[r] += key + (v === null ? 'null' : fmt(v));
                    }
                }
                fs.writeSync(fd, lines.join('}\n') + '}\n');
            }
        } finally {
            fs.closeSync(fd);
        }
    } finally {
        con.closeSync();
        instance.closeSync();
    }
}

async function main(argv) {
    if (argv.length !== 3) {
        throw new Error('usage: node oracle.mjs QUERY DUMP_DIR OUT_FILE');
    }
    const [query, dumpDir, outFile] = argv;
    try {
        await run(query, dumpDir, outFile);
    } catch (e) {
        fs.rmSync(outFile, { force: true });
        throw e;
    }
}

if (process.argv[1] !== undefined &&
    path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
    main(process.argv.slice(2)).then(
        () => process.exit(0),
        (e) => {
            console.error(`oracle: ${e && e.stack ? e.stack : e}`);
            process.exit(1);
        });
}
