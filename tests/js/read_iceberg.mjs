// Reads a whole Iceberg table with icebird (an independent reader that
// applies position and equality deletes) and prints its rows as JSON:
//   node read_iceberg.mjs TABLE_URL                 the current snapshot
//   node read_iceberg.mjs TABLE_URL --metadata vN    that metadata version
//   node read_iceberg.mjs TABLE_URL --snapshot ID    time travel: the current
//       metadata with current-snapshot-id set to ID (icebird has no option)
// Values: bigint and numbers as strings, bytes as hex, dates as ISO text.
import { icebergMetadata, icebergRead } from 'icebird'
import { installFileFetch } from './file_fetch.mjs'

installFileFetch()
const [tableUrl, flag, arg] = process.argv.slice(2)

function norm(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return String(v)
  if (typeof v === 'boolean') return v ? 't' : 'f'
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

let opts = { tableUrl }
if (flag === '--metadata') opts.metadataFileName = arg + '.metadata.json'
if (flag === '--snapshot') {
  const metadata = await icebergMetadata({ tableUrl })
  const id = Number(arg)
  if (!metadata.snapshots.some(s => s['snapshot-id'] === id)) throw new Error('no snapshot ' + arg)
  metadata['current-snapshot-id'] = id
  opts = { tableUrl, metadata }
}
const rows = await icebergRead(opts)
const out = rows.map(r => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, norm(v)])))
process.stdout.write(JSON.stringify({ rows: out }) + '\n')
