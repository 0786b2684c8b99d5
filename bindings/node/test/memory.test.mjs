// AgentMemory through the binding with the real model and runtime and real shard files:
// remember/recall/get/update/forget, options, Float32Array vectors, concurrency from JS, two
// handles on one shard, and errors with stable codes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { rb, tempDir, rejection, norm } from './helpers.mjs'

const { AgentMemory } = rb

const NOTES = [
  { text: 'Retry flaky HTTP calls with exponential backoff and jitter.', metadata: { topic: 'http', priority: 2 } },
  { text: 'Never retry a POST request that is not idempotent.', metadata: { topic: 'http', priority: 1 } },
  { text: 'Run database migrations before deploying the new web server.', metadata: { topic: 'deploy', priority: 3 } },
  { text: 'Keep secrets out of the git repository; load them from the environment.', metadata: { topic: 'security' } },
  { text: 'The cat sleeps on the warm windowsill all afternoon.', metadata: { topic: 'pets' }, kind: 'trivia' },
]

test('remember, recall by meaning, get with its Float32Array embedding, in a real SQLite file', async () => {
  const root = tempDir()
  const mem = await AgentMemory.open(root, 'coder')
  assert.equal(mem.agent, 'coder')
  assert.equal(mem.root, root)
  assert.equal(mem.dimensions, 384)
  assert.equal(mem.modelId, 'all-MiniLM-L6-v2-int8')

  const ids = await mem.rememberBatch(NOTES)
  assert.equal(ids.length, NOTES.length)
  assert.equal(new Set(ids).size, NOTES.length)

  const file = path.join(root, 'coder.sqlite')
  assert.equal(fs.readFileSync(file).subarray(0, 16).toString('latin1'), 'SQLite format 3\0')

  const hits = await mem.recall('the API call timed out, should I call it again?', { k: 2 })
  assert.equal(hits.length, 2)
  assert.ok(hits.every((h) => h.metadata.topic === 'http'), JSON.stringify(hits))
  assert.equal(hits[0].shard, 'coder')
  assert.ok(hits[0].why.similarity > 0.2)
  assert.ok(hits[0].why.recency > 0.99 && hits[0].why.recency <= 1)
  assert.ok(hits[0].createdAt > 1.7e12)

  const rec = await mem.get(ids[4])
  assert.equal(rec.text, NOTES[4].text)
  assert.equal(rec.kind, 'trivia')
  assert.deepEqual(rec.metadata, { topic: 'pets' })
  assert.ok(rec.embedding instanceof Float32Array)
  assert.equal(rec.embedding.length, 384)
  assert.ok(Math.abs(norm(rec.embedding) - 1) < 1e-4)

  // The stored vector is the model's document embedding of the text.
  const [v] = await mem.embed([NOTES[4].text], 'document')
  assert.ok(v instanceof Float32Array)
  let dot = 0
  for (let i = 0; i < v.length; i++) dot += v[i] * rec.embedding[i]
  assert.ok(dot > 0.999, `cosine ${dot}`)

  const stats = await mem.stats()
  assert.equal(stats.records, NOTES.length)
  assert.equal(stats.dimensions, 384)
  assert.equal(stats.modelId, 'all-MiniLM-L6-v2-int8')
  assert.ok(stats.fileBytes > 0)
})

test('recall options: k, filter (object or JSON text), threshold, modes; none matching is []', async () => {
  const mem = await AgentMemory.open(tempDir(), 'opts')
  await mem.rememberBatch(NOTES)

  const filtered = await mem.recall('how do I ship the server', { k: 5, filter: { eq: { field: 'topic', value: 'deploy' } } })
  assert.deepEqual(filtered.map((h) => h.metadata.topic), ['deploy'])
  const asText = await mem.recall('how do I ship the server', { filter: '{"gte": {"field": "priority", "value": 2}}' })
  assert.deepEqual(asText.map((h) => h.metadata.priority).sort(), [2, 3])

  const vector = await mem.recall('feline napping in the sun', { mode: 'vector', k: 1 })
  assert.equal(vector[0].kind, 'trivia')
  assert.equal(vector[0].score, vector[0].why.similarity)
  // Every vector search mode finds the same nearest memory on a small shard.
  for (const search of ['auto', 'exact', 'quantized', 'binary', 'ann']) {
    const hit = await mem.recall('feline napping in the sun', { mode: 'vector', k: 1, search })
    assert.equal(hit[0].id, vector[0].id, search)
    assert.equal(hit[0].score, vector[0].score, search)
  }
  const text = await mem.recall('idempotent', { mode: 'text' })
  assert.equal(text.length, 1)
  assert.ok(text[0].why.bm25 > 0)
  assert.equal(text[0].why.similarity, undefined)

  const strict = await mem.recall('quantum chromodynamics lattice', { threshold: 0.9 })
  assert.deepEqual(strict, [])
  assert.equal((await mem.recall('anything', { k: 1 })).length, 1)
})

test('update re-embeds, forget removes; remember with kind and namespace', async () => {
  const mem = await AgentMemory.open(tempDir(), 'edit')
  const id = await mem.remember('Use tabs for indentation.', { lang: 'go' }, { kind: 'style', namespace: 'team' })
  let rec = await mem.get(id)
  assert.equal(rec.kind, 'style')
  assert.equal(rec.namespace, 'team')
  const before = rec.embedding

  await mem.update(id, { text: 'Bake sourdough bread at 250 degrees.' })
  rec = await mem.get(id)
  assert.equal(rec.text, 'Bake sourdough bread at 250 degrees.')
  assert.deepEqual(rec.metadata, { lang: 'go' })
  assert.ok(rec.version > 1)
  let dot = 0
  for (let i = 0; i < before.length; i++) dot += before[i] * rec.embedding[i]
  assert.ok(dot < 0.9, `the embedding changed with the text (cosine ${dot})`)

  await mem.update(id, { metadata: { lang: 'none' } })
  assert.deepEqual((await mem.get(id)).metadata, { lang: 'none' })

  assert.equal(await mem.forget(id), true)
  assert.equal(await mem.get(id), null)
  assert.equal(await mem.forget(id), false)
  assert.deepEqual(await mem.recall('bread'), [])
})

test('concurrent calls from JS: 60 remembers, recalls and gets in flight at once', async () => {
  const mem = await AgentMemory.open(tempDir(), 'busy')
  const texts = Array.from({ length: 40 }, (_, i) => `Incident ${i}: the ${['cache', 'queue', 'database', 'gateway'][i % 4]} failed at step ${i}.`)
  const writes = texts.map((t, i) => mem.remember(t, { i }))
  const reads = Array.from({ length: 20 }, (_, i) => mem.recall(`what broke in the ${['cache', 'queue'][i % 2]}?`, { k: 3 }))
  const [ids, recalls] = await Promise.all([Promise.all(writes), Promise.all(reads)])
  assert.equal(new Set(ids).size, 40)
  for (const r of recalls) assert.ok(r.length <= 3)
  const got = await Promise.all(ids.map((id) => mem.get(id)))
  assert.deepEqual(got.map((r) => r.metadata.i), texts.map((_, i) => i))
  assert.equal((await mem.stats()).records, 40)
  const hits = await Promise.all(texts.slice(0, 8).map((t) => mem.recall(t, { k: 1, mode: 'vector' })))
  assert.deepEqual(hits.map((h) => h[0].text), texts.slice(0, 8))
})

test('two handles on the same shard see each other\'s writes', async () => {
  const root = tempDir()
  const a = await AgentMemory.open(root, 'shared')
  const b = await AgentMemory.open(root, 'shared')
  const id = await a.remember('Rotate the API keys every ninety days.', { owner: 'a' })
  const fromB = await b.recall('how often should credentials be rotated?', { k: 1 })
  assert.equal(fromB[0].id, id)
  assert.equal((await b.get(id)).text, 'Rotate the API keys every ninety days.')

  const id2 = await b.remember('Pin dependency versions in the lockfile.', { owner: 'b' })
  assert.equal((await a.get(id2)).metadata.owner, 'b')
  assert.equal(await b.forget(id), true)
  assert.equal(await a.get(id), null)
  assert.equal((await a.stats()).records, 1)
  // Another agent's shard in the same root is searchable by name.
  const other = await AgentMemory.open(root, 'other')
  await other.remember('Lockfiles make builds reproducible.')
  const both = await a.recall('reproducible builds with pinned versions', { shards: ['other'], k: 5 })
  assert.deepEqual(new Set(both.map((h) => h.shard)), new Set(['shared', 'other']))
})

test('errors are Errors with a stable code and the cause chain', async () => {
  const root = tempDir()
  const mem = await AgentMemory.open(root, 'errs')
  const id = await mem.remember('something to find', {})

  let e = await rejection(mem.get('not-a-uuid'))
  assert.ok(e instanceof Error)
  assert.equal(e.code, 'RB_INVALID_ID')
  assert.match(e.message, /not-a-uuid/)

  e = await rejection(mem.update('0190b1c2-3d4e-7f60-8a9b-0c1d2e3f4a5b', { text: 'x y z' }))
  assert.equal(e.code, 'RB_NOT_FOUND')

  e = await rejection(mem.recall('q', { filter: { bogus: 1 } }))
  assert.equal(e.code, 'RB_INVALID_FILTER')
  assert.match(e.message, /invalid filter JSON; caused by: unknown variant `bogus`/)
  assert.ok(e.cause instanceof Error)
  assert.match(e.cause.message, /unknown variant `bogus`/)

  e = await rejection(mem.recall('q', { filter: '{not json' }))
  assert.equal(e.code, 'RB_INVALID_FILTER')

  e = await rejection(mem.remember('   '))
  assert.equal(e.code, 'RB_EMPTY_TEXT')

  e = await rejection(mem.remember('text', [1, 2]))
  assert.equal(e.code, 'RB_INVALID_INPUT')

  e = await rejection(mem.remember('a short text', { blob: 'x'.repeat(65 * 1024) }))
  assert.equal(e.code, 'RB_TOO_LARGE')

  e = await rejection(mem.recall('q', { mode: 'fuzzy' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /"fuzzy" is not one of hybrid, vector, text/)

  e = await rejection(mem.recall('q', { search: 'psychic' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /search mode must be/)

  e = await rejection(mem.recall('q', { shards: ['nobody'] }))
  assert.equal(e.code, 'RB_NO_SUCH_SHARD')

  e = await rejection(mem.recall('q', { shards: ['../../etc/passwd'] }))
  assert.equal(e.code, 'RB_INVALID_ID')

  e = await rejection(mem.feedback(id, 'meh'))
  assert.equal(e.code, 'RB_INVALID_INPUT')

  e = await rejection(mem.embed(['x'], 'sideways'))
  assert.equal(e.code, 'RB_INVALID_INPUT')

  e = await rejection(AgentMemory.open(root, '../escape'))
  assert.equal(e.code, 'RB_INVALID_ID')

  fs.writeFileSync(path.join(root, 'garbage.sqlite'), 'this is not a database, just text '.repeat(200))
  e = await rejection(AgentMemory.open(root, 'garbage'))
  assert.equal(e.code, 'RB_NOT_A_SHARD')
  assert.match(e.message, /garbage\.sqlite/)

  // Nothing was written by the failed calls.
  assert.equal((await mem.stats()).records, 1)
})

test('a missing model is RB_MODEL_MISSING naming the file and `reasonbank models fetch`', async () => {
  const cacheDir = tempDir('rb-empty-cache-')
  const e = await rejection(AgentMemory.open(tempDir(), 'a', { cacheDir, allowFetch: false }))
  assert.equal(e.code, 'RB_MODEL_MISSING')
  assert.ok(e.message.includes(cacheDir), e.message)
  assert.match(e.message, /reasonbank models fetch/)
  const p = await rejection(rb.modelPaths({ cacheDir }))
  assert.equal(p.code, 'RB_MODEL_MISSING')
})

test('modelPaths names the runtime from onnxruntime-node and the cached model', async () => {
  const files = await rb.modelPaths()
  assert.match(files.ortLibrary, /onnxruntime-node[\\/]bin[\\/]napi-v6[\\/]/)
  assert.equal(files.ortLibrary, rb.defaultOrtLibrary())
  assert.ok(fs.existsSync(files.model))
  assert.ok(fs.existsSync(path.join(files.tokenizerDir, 'tokenizer.json')))
  const explicit = await rb.modelPaths({ ortLibrary: files.ortLibrary })
  assert.deepEqual(explicit, files)
})

test('wrong argument types are thrown by napi-rs before any work starts', async () => {
  const mem = await AgentMemory.open(tempDir(), 'types')
  assert.throws(() => mem.remember(42), (e) => e instanceof Error && typeof e.code === 'string')
  assert.throws(() => mem.recall('q', { k: 'five' }), (e) => e instanceof Error && typeof e.code === 'string')
  assert.equal((await mem.stats()).records, 0)
})
