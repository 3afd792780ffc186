SET pipeline.parallelism = 2;
SET 'state.ttl' = '1 h';
CREATE TABLE sink (id BIGINT NOT NULL, n DECIMAL(10, 2), r ROW(a INT, b ROW<c DOUBLE>), ts TIMESTAMP(3))
WITH (connector = 'blackhole', 'rate' = 100);
INSERT INTO sink SELECT `a`, "b", 'c''d', -1.5e3, CAST(x AS DOUBLE), x NOT IN (1, 2),
  y NOT LIKE 'z' ESCAPE '!', z IS NOT NULL, CASE q WHEN 1 THEN TIMESTAMP '2020-01-01 00:00:00.5' END,
  INTERVAL '1 minute 30 seconds', INTERVAL 10 SECOND, count(DISTINCT w), -9223372036854775808
FROM t LEFT JOIN u ON t.a = u.a CROSS JOIN (v JOIN w ON v.a = w.a)
WHERE a BETWEEN 1 AND 2 AND NOT b OR c || d = 'e' /* comment */
GROUP BY a HAVING count(*) > 1
UNION ALL SELECT * FROM TABLE(SESSION(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) s;
