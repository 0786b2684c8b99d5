#!/usr/bin/env node
// Recall latency through the binding vs. through the Rust bench, in the same run, on the same
// shard, with the same queries, model files and ONNX Runtime library.
//
//   node bench/recall.mjs [--n 10000] [--queries 200] [--k 5] [--rounds 3] [--dir DIR] [--json]
//
// --dir keeps the shard and queries there (and reuses them when the next run names the same
// directory with the same --n and --queries); by default they go to a temporary directory.
//
// 1. Builds the addon and `reasonbank-bench` in release (`cargo build --release`, one target
//    directory: $CARGO_TARGET_DIR or cargo metadata's) and loads that addon.
// 2. Remembers --n memories through the binding (two real sentences each, from
//    benches/data/texts.jsonl, as `reasonbank-bench memory` makes them) into a new shard, and
//    writes --queries short queries (three content words of a random sentence) to a file.
// 3. Each round, alternately: a fresh `AgentMemory` handle (so an empty query-embedding cache)
//    recalls every query, after the same 5 warm-up queries as the Rust bench; then
//    `reasonbank-bench memory --root <shard root> --queries-file <file>` does the same in its own
//    process. Both times include embedding the query.
// 4. Prints the medians over rounds of each p50 and their ratio (binding / Rust).
import { spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, '..')
const repo = path.resolve(pkg, '../..')
const { values: o } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    queries: { type: 'string', default: '200' },
    k: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
})
const N = Number(o.n)
const Q = Number(o.queries)
const K = Number(o.k)
const ROUNDS = Number(o.rounds)
const log = (...a) => console.error(...a)

// --- build (release) and locate the artifacts --------------------------------------------------
const targetDir =
  process.env.CARGO_TARGET_DIR ||
  JSON.parse(execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: repo, encoding: 'utf8' })).target_directory
log(`building the addon and reasonbank-bench (release) in ${targetDir} ...`)
const build = spawnSync('cargo', ['build', '--release', '--locked', '-p', 'reasonbank-node', '-p', 'reasonbank-bench'], {
  cwd: repo,
  stdio: ['ignore', 'inherit', 'inherit'],
})
if (build.status !== 0) throw new Error(`cargo build failed (${build.status})`)
const work = o.dir ? path.resolve(o.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'rb-bench-node-'))
fs.mkdirSync(work, { recursive: true })
const addon = path.join(work, 'reasonbank.node')
fs.copyFileSync(path.join(targetDir, 'release', 'libreasonbank_node.so'), addon)
const benchBin = path.join(targetDir, 'release', 'reasonbank-bench')
process.env.NAPI_RS_NATIVE_LIBRARY_PATH = addon
const rb = createRequire(import.meta.url)(path.join(pkg, 'main.js'))

// The Rust crate's runtime (ORT_DYLIB_PATH, else the reasonbank cache, fetched from PyPI if
// missing) for both sides, so the comparison is of the binding and nothing else.
rb.setDefaultOrtLibrary(null)
const files = await rb.fetchModels()
log(`ONNX Runtime ${files.ortLibrary}\nmodel ${files.model}`)

// --- corpus, as benches/src/memory.rs `prose` makes it ------------------------------------------
let seed = 11
function random() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = (xs) => xs[Math.floor(random() * xs.length)]
const sentences = []
for (const line of fs.readFileSync(path.join(repo, 'benches/data/texts.jsonl'), 'utf8').split('\n')) {
  if (!line.trim()) continue
  for (const s of JSON.parse(line).text.split('. ')) {
    const t = s.trim()
    if (t.split(/\s+/).filter(Boolean).length >= 4) sentences.push(t)
  }
}
const texts = Array.from({ length: N }, (_, i) => `Note ${i}: ${pick(sentences)} ${pick(sentences)}`)
const queries = []
while (queries.length < Q) {
  const words = pick(sentences).split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 3)
  if (words.length === 0) continue
  const start = Math.floor(random() * Math.max(words.length - 2, 1))
  queries.push(words.slice(start, start + 3).join(' '))
}

const root = path.join(work, 'shards')
const opts = { ortLibrary: files.ortLibrary }
const queriesFile = path.join(work, 'queries.txt')
{
  const mem = await rb.AgentMemory.open(root, 'bench', opts)
  const have = (await mem.stats()).records
  if (have !== 0 && have !== N) throw new Error(`${root} holds ${have} memories, not --n ${N}`)
  const t = performance.now()
  for (let i = have; i < N; i += 512) {
    await mem.rememberBatch(texts.slice(i, i + 512).map((text, j) => ({ text, metadata: { i: i + j } })))
  }
  if (have === 0) log(`remembered ${N} memories through the binding in ${((performance.now() - t) / 1e3).toFixed(1)} s`)
  else log(`reusing the ${N} memories in ${root}`)
}
fs.writeFileSync(queriesFile, queries.join('\n') + '\n')

// --- timing -------------------------------------------------------------------------------------
/** The Rust bench's percentile: sorted[round((len - 1) * q)]. */
function pct(xs, q) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.round((s.length - 1) * q)]
}
const median = (xs) => pct(xs, 0.5)

async function bindingRound() {
  const mem = await rb.AgentMemory.open(root, 'bench', opts)
  const ro = { k: K }
  for (const q of queries.slice(0, 5)) await mem.recall(q, ro)
  const lat = []
  for (const q of queries) {
    const t = process.hrtime.bigint()
    const hits = await mem.recall(q, ro)
    lat.push(Number(process.hrtime.bigint() - t) / 1e6)
    if (hits.length === 0) throw new Error(`recall returned nothing for ${JSON.stringify(q)}`)
  }
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99) }
}

function rustRound() {
  const r = spawnSync(
    benchBin,
    ['memory', '--root', root, '--agent', 'bench', '--queries-file', queriesFile, '--k', String(K), '--n', '0', '--queries', '1', '--learns', '0', '--json'],
    { encoding: 'utf8', env: { ...process.env, ORT_DYLIB_PATH: files.ortLibrary } },
  )
  if (r.status !== 0) throw new Error(`reasonbank-bench failed (${r.status}): ${r.stderr}`)
  const j = JSON.parse(r.stdout.trim().split('\n').pop())
  if (j.queries !== queries.length || j.n !== N) throw new Error(`reasonbank-bench ran on something else: ${r.stdout}`)
  return { p50: j.recall_p50_ms, p99: j.recall_p99_ms }
}

const binding = []
const rust = []
for (let r = 0; r < ROUNDS; r++) {
  binding.push(await bindingRound())
  rust.push(rustRound())
  log(`round ${r + 1}: binding p50 ${binding[r].p50.toFixed(3)} ms, Rust p50 ${rust[r].p50.toFixed(3)} ms (load ${os.loadavg()[0].toFixed(1)})`)
}
const b50 = median(binding.map((x) => x.p50))
const r50 = median(rust.map((x) => x.p50))
const result = {
  n: N,
  queries: queries.length,
  k: K,
  rounds: ROUNDS,
  binding_recall_p50_ms: b50,
  rust_recall_p50_ms: r50,
  binding_recall_p99_ms: median(binding.map((x) => x.p99)),
  rust_recall_p99_ms: median(rust.map((x) => x.p99)),
  ratio: b50 / r50,
  // Each round's binding p50 over the Rust p50 of the round right after it: pairs in time,
  // so less sensitive to the load changing during the run.
  median_round_ratio: median(binding.map((b, i) => b.p50 / rust[i].p50)),
  target: 1.2,
  // Other processes on the machine: every extra thread hop of the binding (JS thread -> tokio
  // worker -> JS thread) waits for a core when the run queue is long.
  loadavg_1m: Number(os.loadavg()[0].toFixed(2)),
  cpus: os.availableParallelism(),
}
if (!o.dir) fs.rmSync(work, { recursive: true, force: true })
if (o.json) console.log(JSON.stringify(result))
else {
  console.log(
    `recall p50 on ${N} memories, k ${K}, ${queries.length} queries, median of ${ROUNDS} rounds: ` +
      `binding ${b50.toFixed(3)} ms, Rust ${r50.toFixed(3)} ms, ratio ${result.ratio.toFixed(3)} ` +
      `(median of per-round ratios ${result.median_round_ratio.toFixed(3)}; target <= 1.2); ` +
      `load average ${result.loadavg_1m} on ${result.cpus} cores`,
  )
}
process.exitCode = result.ratio <= 1.2 ? 0 : 1
