// Serves file:// URLs to code that reads tables with fetch() (icebird), as
// node's fetch has no file:// support: whole files, or a byte range with
// 206 when a Range header asks for one.  With S3_ENDPOINT set, the AWS URLs
// icebird makes of s3://bucket/key (https://bucket.s3.amazonaws.com/key) go
// to that local S3 server instead (path style).  Other URLs go to the real
// fetch.
import fs from 'node:fs'

const realFetch = globalThis.fetch

export function installFileFetch() {
  globalThis.fetch = async (url, init = {}) => {
    const u = String(url)
    const aws = /^https:\/\/([^./]+)\.s3\.amazonaws\.com\/(.*)$/.exec(u)
    if (aws && process.env.S3_ENDPOINT) return realFetch(`${process.env.S3_ENDPOINT}/${aws[1]}/${aws[2]}`, init)
    if (!u.startsWith('file://')) return realFetch(url, init)
    const path = decodeURI(u.slice('file://'.length))
    if (!fs.existsSync(path)) return new Response('not found', { status: 404, statusText: 'Not Found' })
    const data = fs.readFileSync(path)
    const headers = new Headers(init.headers || {})
    const range = headers.get('range')
    if (init.method === 'HEAD') {
      return new Response(null, { status: 200, headers: { 'content-length': String(data.length) } })
    }
    if (range) {
      const m = /bytes=(\d+)-(\d*)/.exec(range)
      const start = Number(m[1])
      const end = m[2] === '' ? data.length - 1 : Math.min(Number(m[2]), data.length - 1)
      return new Response(data.subarray(start, end + 1), {
        status: 206,
        headers: { 'content-length': String(end + 1 - start), 'content-range': `bytes ${start}-${end}/${data.length}` },
      })
    }
    return new Response(data, { status: 200, headers: { 'content-length': String(data.length) } })
  }
}
