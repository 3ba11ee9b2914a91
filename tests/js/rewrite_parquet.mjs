// Has DuckDB write the rows of Parquet files again, in one file with the
// given codec, for a bytes-per-row comparison with the files given, and
// checks the two hold the same rows:
//   node rewrite_parquet.mjs CODEC OUT.parquet FILE…
// Prints {"rows", "duckdb_bytes", "input_bytes", "same_rows"}.
import fs from 'node:fs'
import { DuckDBInstance } from '@duckdb/node-api'

const [codec, out, ...files] = process.argv.slice(2)
const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
})
const con = await inst.connect()
await con.run("SET TimeZone = 'UTC'")
const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson()
const lit = s => "'" + s.replace(/'/g, "''") + "'"
const list = '[' + files.map(lit).join(', ') + ']'
await con.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${list})`)
await con.run(`COPY t TO ${lit(out)} (FORMAT parquet, COMPRESSION ${codec})`)
const diff = await q(`SELECT count(*) AS c FROM (
    (SELECT * FROM read_parquet(${lit(out)}) EXCEPT ALL SELECT * FROM t)
    UNION ALL
    (SELECT * FROM t EXCEPT ALL SELECT * FROM read_parquet(${lit(out)})))`)
const count = await q('SELECT count(*) AS c FROM t')
con.closeSync()
process.stdout.write(JSON.stringify({
  rows: Number(count[0].c),
  duckdb_bytes: fs.statSync(out).size,
  input_bytes: files.reduce((n, f) => n + fs.statSync(f).size, 0),
  same_rows: Number(diff[0].c) === 0,
}) + '\n')
