#!/usr/bin/env node
'use strict'
// `reasonbank` from npm: the common commands of the Rust CLI (`src/bin/reasonbank.rs`) over the
// binding, with the same flags, output and exit status: 0 success; 1 an error (the message says
// what and how to fix it, and its `code`); 2 bad usage; 3 the memory asked for does not exist.
//
// Every command takes --root DIR (env REASONBANK_ROOT; default $XDG_DATA_HOME/reasonbank or
// ~/.local/share/reasonbank), --agent ID (env REASONBANK_AGENT; default `default`) and --json
// (one JSON document per line, with the Rust CLI's snake_case field names).
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const rb = require('../main.js')

const EXIT_ERROR = 1
const EXIT_USAGE = 2
const EXIT_NOT_FOUND = 3

class Usage extends Error {}
class NotFound extends Error {}

const USAGE = `Agent memory that learns

Usage: reasonbank [--root DIR] [--agent ID] [--json] <COMMAND>

Commands:
  remember TEXT [--meta JSON] [--kind K] [--namespace NS]   Remember a text
  recall QUERY [--k N] [--threshold T] [--filter JSON] [--mode hybrid|vector|text]
         [--search auto|exact|quantized|binary|ann] [--shard ID]...
                                                            Recall the memories that best match a query
  get ID                                                    Print one memory
  forget ID                                                 Forget one memory
  stats [--all]                                             Counts, sizes and model of the agent's shard
  learn FILE [--contrastive]                                Learn from a finished task (trajectory JSON, - for stdin)
  feedback ID success|failure|REWARD                        Tell whether a memory item helped
  consolidate [--dry-run]                                   Merge near-duplicates, flag contradictions
  patterns TASK [--k N] [--threshold T]                     The memory items most useful for a task
  synthesize TASK [--budget N] [--shard ID]...              A prompt-ready context block within a budget
  models fetch|path [--cache-dir DIR]                       Download (fetch) or show (path) the model files
  mcp [--root DIR] [--agent ID]                             Serve this memory to an MCP client over stdio`

const GLOBAL = {
  root: { type: 'string' },
  agent: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
}

const COMMANDS = {
  remember: { args: ['text'], options: { meta: { type: 'string' }, kind: { type: 'string' }, namespace: { type: 'string' } } },
  recall: {
    args: ['query'],
    options: {
      k: { type: 'string' },
      threshold: { type: 'string' },
      filter: { type: 'string' },
      mode: { type: 'string' },
      search: { type: 'string' },
      shard: { type: 'string', multiple: true },
    },
  },
  get: { args: ['id'], options: {} },
  forget: { args: ['id'], options: {} },
  stats: { args: [], options: { all: { type: 'boolean' } } },
  learn: { args: ['file'], options: { contrastive: { type: 'boolean' } } },
  feedback: { args: ['id', 'verdict'], options: {} },
  consolidate: { args: [], options: { 'dry-run': { type: 'boolean' } } },
  patterns: { args: ['task'], options: { k: { type: 'string' }, threshold: { type: 'string' } } },
  synthesize: { args: ['task'], options: { budget: { type: 'string' }, shard: { type: 'string', multiple: true } } },
  models: { args: ['action'], options: { 'cache-dir': { type: 'string' } } },
}

/** The command name: the first argument that is not an option or a global option's value. */
function commandOf(argv) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--root' || a === '--agent') i++
    else if (!a.startsWith('-')) return a
  }
  return undefined
}

function parse(argv) {
  const name = commandOf(argv)
  if (name === undefined) throw new Usage('a command is required')
  const cmd = COMMANDS[name]
  if (!cmd) throw new Usage(`unrecognized command ${JSON.stringify(name)}`)
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...cmd.options }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new Usage(e.message)
  }
  const positionals = parsed.positionals.slice(1)
  if (positionals.length !== cmd.args.length) {
    throw new Usage(`${name} takes ${cmd.args.map((a) => a.toUpperCase()).join(' ') || 'no arguments'}`)
  }
  const args = Object.fromEntries(cmd.args.map((a, i) => [a, positionals[i]]))
  return { name, args, o: parsed.values }
}

function defaultRoot() {
  if (process.env.REASONBANK_ROOT) return process.env.REASONBANK_ROOT
  if (process.env.XDG_DATA_HOME) return path.join(process.env.XDG_DATA_HOME, 'reasonbank')
  const home = process.env.HOME || os.homedir()
  if (home) return path.join(home, '.local/share/reasonbank')
  throw new Error('no shard root: pass --root DIR or set REASONBANK_ROOT')
}

/** A number option, as clap would parse it: anything else is bad usage. */
function number(name, value, { integer = false } = {}) {
  if (value === undefined) return undefined
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || (integer && (!Number.isInteger(n) || n < 0))) {
    throw new Usage(`invalid value ${JSON.stringify(value)} for --${name}: expected ${integer ? 'a non-negative integer' : 'a number'}`)
  }
  return n
}

/** camelCase keys to the Rust CLI's snake_case, except inside user metadata. */
function snake(v) {
  if (Array.isArray(v)) return v.map(snake)
  if (v instanceof Float32Array) return Array.from(v)
  if (v && typeof v === 'object') {
    const out = {}
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue
      out[k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = k === 'metadata' ? x : snake(x)
    }
    return out
  }
  return v
}

function readInput(file) {
  return file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8')
}

function shardFile(root, agent) {
  return path.join(root, `${agent}.sqlite`)
}

async function run(argv) {
  const { name, args, o } = parse(argv)
  const json = Boolean(o.json)
  const out = (v) => console.log(JSON.stringify(snake(v)))
  const root = o.root ?? defaultRoot()
  const agent = o.agent ?? (process.env.REASONBANK_AGENT || 'default')
  const open = async (id = agent) => {
    try {
      return await rb.AgentMemory.open(root, id)
    } catch (e) {
      e.message = `opening agent ${JSON.stringify(id)} in ${root}; caused by: ${e.message}`
      throw e
    }
  }
  // Commands that only read an agent's shard must not create it (as the Rust CLI).
  const existing = async (id = agent) => {
    if (!fs.existsSync(shardFile(root, id))) throw new NotFound(`agent ${id} has no shard in ${root}`)
    return open(id)
  }

  switch (name) {
    case 'remember': {
      let metadata = {}
      if (o.meta !== undefined) {
        try {
          metadata = JSON.parse(o.meta)
        } catch (e) {
          throw new Error(`--meta is not valid JSON; caused by: ${e.message}`)
        }
      }
      const id = await (await open()).remember(args.text, metadata, { kind: o.kind, namespace: o.namespace })
      console.log(json ? JSON.stringify({ id }) : id)
      break
    }
    case 'recall': {
      const opts = {
        k: number('k', o.k, { integer: true }) ?? 5,
        threshold: number('threshold', o.threshold),
        mode: o.mode ?? 'hybrid',
        search: o.search,
        shards: o.shard ?? [],
      }
      if (o.filter !== undefined) opts.filter = o.filter
      const hits = await (await open()).recall(args.query, opts)
      if (json) out(hits)
      else if (hits.length === 0) console.log('no memories match')
      else {
        for (const h of hits) {
          const why = []
          if (h.why.similarity != null) why.push(`cosine ${h.why.similarity.toFixed(3)}`)
          if (h.why.bm25 != null) why.push(`bm25 ${h.why.bm25.toFixed(2)}`)
          console.log(`${h.score.toFixed(4)}  ${h.id}  [${h.shard}/${h.kind}] ${h.text}`)
          console.log(`        ${why.join(', ')}`)
        }
      }
      break
    }
    case 'get': {
      const r = await (await existing()).get(args.id)
      if (!r) throw new NotFound(`memory ${args.id} not found in agent ${agent}`)
      if (json) {
        const { embedding: _embedding, ...rest } = r
        out(rest)
      } else {
        console.log(`id        ${r.id}`)
        console.log(`kind      ${r.kind}`)
        console.log(`namespace ${r.namespace}`)
        console.log(`metadata  ${JSON.stringify(r.metadata)}`)
        console.log(`text      ${r.text}`)
      }
      break
    }
    case 'forget': {
      if (!(await (await existing()).forget(args.id))) throw new NotFound(`memory ${args.id} not found in agent ${agent}`)
      console.log(json ? JSON.stringify({ forgotten: args.id }) : `forgot ${args.id}`)
      break
    }
    case 'stats': {
      let ids = [agent]
      if (o.all) {
        if (!fs.existsSync(root)) throw new NotFound(`no shards in ${root}`)
        ids = fs.readdirSync(root).filter((f) => f.endsWith('.sqlite')).map((f) => f.slice(0, -'.sqlite'.length)).sort()
      }
      if (!json) console.log(`${'agent'.padEnd(24)} ${'memories'.padStart(9)} ${'forgotten'.padStart(10)} ${'dims'.padStart(5)} ${'size'.padStart(10)}  model`)
      for (const id of ids) {
        const s = await (await existing(id)).stats()
        if (json) out({ ...s, agent: id })
        else {
          const size = `${(s.fileBytes / 1e6).toFixed(1)}M`
          console.log(`${id.padEnd(24)} ${String(s.records).padStart(9)} ${String(s.tombstones).padStart(10)} ${String(s.dimensions).padStart(5)} ${size.padStart(10)}  ${s.modelId}`)
        }
      }
      break
    }
    case 'learn': {
      const text = readInput(args.file)
      let value
      try {
        value = JSON.parse(text)
      } catch (e) {
        throw new Error(`expected ${o.contrastive ? 'a JSON array of trajectories' : 'a trajectory as JSON'}; caused by: ${e.message}`)
      }
      const mem = await open()
      let report
      if (o.contrastive) {
        if (!Array.isArray(value)) throw new Error('expected a JSON array of trajectories')
        if (value.length === 0) throw new Error('no trajectories')
        report = await mem.learnContrastive(value[0].task, value)
      } else {
        report = await mem.learn(value)
      }
      if (json) out(report)
      else {
        for (const v of report.verdicts) console.log(`verdict: ${JSON.stringify(snake(v))}`)
        for (const i of report.items) console.log(`learned ${i.id} ${i.kind}: ${i.title}`)
      }
      break
    }
    case 'feedback': {
      let verdict = args.verdict
      if (verdict !== 'success' && verdict !== 'failure') {
        const r = Number(verdict)
        if (verdict.trim() === '' || !(r >= 0 && r <= 1)) {
          throw new Error(`verdict ${JSON.stringify(verdict)} is not success, failure or a reward in [0, 1]`)
        }
        verdict = r
      }
      const item = await (await open()).feedback(args.id, verdict)
      if (json) out(item)
      else console.log(`${item.id} confidence ${item.confidence.toFixed(3)} (${item.successes} successes, ${item.failures} failures)`)
      break
    }
    case 'consolidate': {
      const r = await (await open()).consolidate({ dryRun: Boolean(o['dry-run']) })
      if (json) out(r)
      else {
        console.log(
          `${r.dryRun ? 'dry run: ' : ''}examined ${r.examined}, merged ${r.merges.length}, contradictions ${r.contradictions.length}, decayed ${r.decayed}, pruned ${r.pruned.length}, rows written ${r.written}`,
        )
      }
      break
    }
    case 'patterns': {
      const items = await (await open()).findSimilarPatterns(args.task, {
        k: number('k', o.k, { integer: true }) ?? 5,
        threshold: number('threshold', o.threshold) ?? 0,
      })
      if (json) out(items)
      else if (items.length === 0) console.log('no patterns match')
      else {
        for (const s of items) {
          console.log(
            `${s.score.toFixed(3)}  ${s.item.id}  [${s.item.kind}] ${s.item.title} (similarity ${s.similarity.toFixed(3)}, reliability ${s.reliability.toFixed(2)})`,
          )
        }
      }
      break
    }
    case 'synthesize': {
      const ctx = await (await open()).synthesizeContext(args.task, {
        tokenBudget: number('budget', o.budget, { integer: true }) ?? 512,
        shards: o.shard ?? [],
      })
      if (json) out(ctx)
      else {
        console.log(ctx.text)
        console.error(`(${ctx.tokensUsed} of ${ctx.tokenBudget} tokens, ${ctx.items.length} items)`)
      }
      break
    }
    case 'models': {
      if (args.action !== 'fetch' && args.action !== 'path') {
        throw new Usage(`models takes fetch or path, not ${JSON.stringify(args.action)}`)
      }
      const opts = { cacheDir: o['cache-dir'] }
      const f = args.action === 'fetch' ? await rb.fetchModels(opts) : await rb.modelPaths(opts)
      if (json) out(f)
      else {
        console.log(`ort_library    ${f.ortLibrary}`)
        console.log(`model          ${f.model}`)
        console.log(`tokenizer_dir  ${f.tokenizerDir}`)
      }
      break
    }
  }
}

/**
 * `reasonbank mcp [--root DIR] [--agent ID]`: the MCP server over stdio, the same one the Rust
 * `reasonbank-mcp` binary runs (from the addon, so no Rust toolchain is needed). The model runs
 * on this package's ONNX Runtime (onnxruntime-node) unless ORT_DYLIB_PATH names another.
 */
async function mcp(argv) {
  const at = argv.indexOf('mcp')
  const rest = [...argv.slice(0, at), ...argv.slice(at + 1)].filter((a) => a !== '--json')
  return rb.runMcpServer(['reasonbank mcp', ...rest])
}

async function main() {
  const argv = process.argv.slice(2)
  if (commandOf(argv) === 'mcp') {
    // The server exits when the client closes stdin; its own runtime may still hold a read of
    // stdin, so leave at once rather than wait for it.
    process.exit(await mcp(argv))
  }
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    console.log(USAGE)
    return argv.length === 0 ? EXIT_USAGE : 0
  }
  try {
    await run(argv)
    return 0
  } catch (e) {
    if (e instanceof Usage) {
      console.error(`error: ${e.message}\n\n${USAGE}`)
      return EXIT_USAGE
    }
    console.error(`error: ${e.message}`)
    if (e.code) console.error(`  code: ${e.code}`)
    return e instanceof NotFound ? EXIT_NOT_FOUND : EXIT_ERROR
  }
}

main().then((code) => {
  process.exitCode = code
})
