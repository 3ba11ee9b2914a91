// Reads a whole Iceberg table with icebird (an independent reader that
// applies position and equality deletes) and prints its rows as JSON:
//   node read_iceberg.mjs TABLE_URL [--metadata NAME] [--snapshot ID]
// NAME: a metadata file in TABLE_URL/metadata without ".metadata.json"
// (default: what version-hint.text names); ID: time travel, the metadata
// with current-snapshot-id set to ID (icebird has no option for it).
// Values: bigint and numbers as strings, bytes as hex, dates as ISO text.
import { icebergMetadata, icebergRead } from 'icebird'
import { installFileFetch } from './file_fetch.mjs'

installFileFetch()
const [tableUrl, ...rest] = process.argv.slice(2)
const opt = {}
for (let i = 0; i + 1 < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1]

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
if (opt.metadata) opts.metadataFileName = opt.metadata + '.metadata.json'
if (opt.snapshot) {
  const metadata = await icebergMetadata(opts)
  const id = Number(opt.snapshot)
  if (!metadata.snapshots.some(s => s['snapshot-id'] === id)) throw new Error('no snapshot ' + id)
  metadata['current-snapshot-id'] = id
  opts = { tableUrl, metadata }
}
const rows = await icebergRead(opts)
const out = rows.map(r => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, norm(v)])))
process.stdout.write(JSON.stringify({ rows: out }) + '\n')
