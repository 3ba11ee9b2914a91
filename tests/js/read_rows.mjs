// Reads the rows of many Parquet files with DuckDB in one process (values
// as text) and prints {file: [row, …]} as JSON:
//   node read_rows.mjs FILE…
import { DuckDBInstance } from '@duckdb/node-api'

const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
})
const con = await inst.connect()
await con.run("SET TimeZone = 'UTC'")
const out = {}
for (const f of process.argv.slice(2)) {
  const lit = "'" + f.replace(/'/g, "''") + "'"
  out[f] = (await con.runAndReadAll(`SELECT * FROM read_parquet(${lit})`)).getRowObjectsJson()
}
con.closeSync()
process.stdout.write(JSON.stringify(out) + '\n')
