// Writes the benchmark table of `lake_write gen` (the same rows, made with
// SQL) to Parquet with DuckDB, for a bytes-per-row comparison, and checks
// that cdc's file holds the same rows:
//   node bench_duckdb.mjs N CODEC OUT.parquet CDC.parquet
// Prints {"rows", "duckdb_bytes", "cdc_bytes", "same_rows"}.
import fs from 'node:fs'
import { DuckDBInstance } from '@duckdb/node-api'

const [n, codec, out, ours] = process.argv.slice(2)
const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
})
const con = await inst.connect()
await con.run("SET TimeZone = 'UTC'")
const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson()
const lit = s => "'" + s.replace(/'/g, "''") + "'"
// the rows lake_write's gen_row makes (see tests/helpers/lake_write.c)
await con.run(`CREATE TABLE bench AS SELECT
    i::BIGINT AS id,
    CASE WHEN i % 10 = 7 THEN NULL ELSE 'customer-' || (i % 5000) END AS name,
    ((i * 37 % 1000000) / 100.0)::DECIMAL(12,2) AS amount,
    (TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i)) AS ts,
    (i % 3 = 0) AS flag,
    (i % 100)::INTEGER AS qty
  FROM range(${Number(n)}) t(i)`)
await con.run(`COPY bench TO ${lit(out)} (FORMAT parquet, COMPRESSION ${codec},
  FIELD_IDS {id: 1, name: 2, amount: 3, ts: 4, flag: 5, qty: 6})`)
const diff = await q(`SELECT count(*) AS c FROM (
    (SELECT * FROM read_parquet(${lit(ours)}) EXCEPT ALL SELECT * FROM bench)
    UNION ALL
    (SELECT * FROM bench EXCEPT ALL SELECT * FROM read_parquet(${lit(ours)})))`)
const count = await q(`SELECT count(*) AS c FROM read_parquet(${lit(ours)})`)
con.closeSync()
process.stdout.write(JSON.stringify({
  rows: Number(n),
  duckdb_bytes: fs.statSync(out).size,
  cdc_bytes: fs.statSync(ours).size,
  cdc_rows: Number(count[0].c),
  same_rows: Number(diff[0].c) === 0 && Number(count[0].c) === Number(n),
}) + '\n')
