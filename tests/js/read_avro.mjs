// Decodes Avro object container files with avsc (independent of cdc's
// reader) and prints, per file, the header metadata (as strings), the
// writer schema and every record, as JSON:
//   node read_avro.mjs FILE…
import avro from 'avsc'

function decode(path) {
  return new Promise((resolve, reject) => {
    const out = { file: path, meta: {}, codec: null, schema: null, records: [] }
    avro.createFileDecoder(path)
      .on('metadata', (type, codec, header) => {
        out.codec = codec
        out.schema = type.schema({ exportAttrs: true })
        for (const [k, v] of Object.entries(header.meta)) out.meta[k] = v.toString()
      })
      .on('data', rec => out.records.push(rec))
      .on('error', reject)
      .on('end', () => resolve(out))
  })
}

function jsonSafe(o) {
  return JSON.parse(JSON.stringify(o, (k, v) => {
    if (v && v.type === 'Buffer' && Array.isArray(v.data)) return { hex: Buffer.from(v.data).toString('hex') }
    return v
  }))
}

const files = []
for (const f of process.argv.slice(2)) files.push(await decode(f))
process.stdout.write(JSON.stringify(jsonSafe(files)) + '\n')
