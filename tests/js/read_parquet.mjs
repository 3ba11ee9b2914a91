// Reads one Parquet file with two independent readers, hyparquet and DuckDB,
// and prints what each saw as one JSON document on stdout:
//   {hyparquet: {schema, kv, row_groups, rows}, duckdb: {schema, metadata, kv, rows}}
// Values are normalized to strings so the Python test can compare them with
// the rows it asked cdc's writer to store: integers and decimals exactly,
// timestamps as microseconds since the epoch, dates as days, bytes as hex.
//
//   node read_parquet.mjs FILE.parquet
import fs from 'node:fs'
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { DuckDBInstance } from '@duckdb/node-api'
// hyparquet's own Thrift decoder, for the footer fields its metadata object
// leaves out (column_orders)
import { deserializeTCompactProtocol } from './node_modules/hyparquet/src/thrift.js'

const file = process.argv[2]

function norm(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v)
  if (typeof v === 'boolean') return v ? 't' : 'f'
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (v instanceof Date) return 'date:' + v.toISOString()
  if (typeof v === 'object' && 'micros' in v) return v.micros
  return String(v)
}

function jsonSafe(o) {
  return JSON.parse(JSON.stringify(o, (k, v) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return { hex: Buffer.from(v).toString('hex') }
    return v
  }))
}

async function readHyparquet() {
  const data = fs.readFileSync(file)
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
  const meta = parquetMetadata(ab)
  const view = new DataView(ab)
  const footerLen = view.getUint32(ab.byteLength - 8, true)
  const raw = deserializeTCompactProtocol({ view, offset: ab.byteLength - 8 - footerLen })
  // FileMetaData field 7: list<ColumnOrder>, a union whose field 1 is TYPE_ORDER
  const columnOrders = (raw.field_7 || []).map(o => (o.field_1 !== undefined ? 'TYPE_DEFINED_ORDER' : 'OTHER'))
  const tree = parquetSchema(meta)
  const schema = tree.children.map(c => c.element)
  const rows = meta.num_rows > 0n ? await parquetReadObjects({
    file: ab,
    compressors,
    utf8: false,
    parsers: {
      // keep microseconds and days exact instead of JS Dates
      timestampFromMicroseconds: v => ({ micros: v.toString() }),
      timestampFromMilliseconds: v => ({ micros: (BigInt(v) * 1000n).toString() }),
      dateFromDays: v => ({ micros: String(v) }),
    },
  }) : []
  return jsonSafe({
    version: meta.version,
    created_by: meta.created_by,
    num_rows: meta.num_rows,
    schema,
    kv: Object.fromEntries((meta.key_value_metadata || []).map(kv => [kv.key, kv.value])),
    column_orders: columnOrders,
    row_groups: meta.row_groups.map(rg => ({
      num_rows: rg.num_rows,
      columns: rg.columns.map(c => ({
        codec: c.meta_data.codec,
        encodings: c.meta_data.encodings,
        num_values: c.meta_data.num_values,
        dictionary_page_offset: c.meta_data.dictionary_page_offset,
        stats: c.meta_data.statistics,
      })),
    })),
    rows: rows.map(r => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, norm(v)]))),
  })
}

async function readDuckdb() {
  const inst = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  })
  const con = await inst.connect()
  await con.run("SET TimeZone = 'UTC'")
  const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson()
  const lit = "'" + file.replace(/'/g, "''") + "'"
  const schema = await q(`SELECT name, type, type_length, repetition_type, num_children, converted_type,
      scale, precision, field_id, logical_type FROM parquet_schema(${lit})`)
  const metadata = await q(`SELECT row_group_id, row_group_num_rows, column_id, path_in_schema, type,
      stats_min_value, stats_max_value, stats_null_count, compression, encodings,
      dictionary_page_offset, data_page_offset, total_compressed_size FROM parquet_metadata(${lit})`)
  const kv = await q(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${lit})`)
  const cols = schema.slice(1).map(s => s.name)
  // Values as text in DuckDB's own formatting, plus epoch micros/days for times.
  const exprs = cols.map((c, i) => {
    const t = schema[i + 1]
    const id = '"' + c.replace(/"/g, '""') + '"'
    const lt = String(t.logical_type || '')
    if (lt.includes('TimestampType')) return `CAST(epoch_us(${id}) AS VARCHAR) AS ${id}`
    if (lt.includes('DateType')) return `CAST(CAST(${id} - DATE '1970-01-01' AS BIGINT) AS VARCHAR) AS ${id}`
    if (lt.includes('TimeType')) return `CAST(epoch_us(DATE '1970-01-01' + ${id}) AS VARCHAR) AS ${id}`
    if (t.type === 'BYTE_ARRAY' && !t.converted_type) return `hex(${id}) AS ${id}`
    if (t.type === 'BOOLEAN') return `CASE WHEN ${id} THEN 't' WHEN NOT ${id} THEN 'f' END AS ${id}`
    return `CAST(${id} AS VARCHAR) AS ${id}`
  })
  const rows = cols.length ? await q(`SELECT ${exprs.join(', ')} FROM read_parquet(${lit})`) : []
  const types = cols.length ? await q(`DESCRIBE SELECT * FROM read_parquet(${lit})`) : []
  con.closeSync()
  return { schema, metadata, kv, types, rows }
}

const out = { hyparquet: await readHyparquet(), duckdb: await readDuckdb() }
process.stdout.write(JSON.stringify(out) + '\n')
