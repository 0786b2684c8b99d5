// Issue #16 item 4 through the addon: `open(..., { localModel })` picks the local embedding
// model (bge-small-en-v1.5 next to the default all-MiniLM-L6-v2), the shard remembers it, and
// another model or an unknown name is refused with a stable code.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

const { AgentMemory } = rb
const BGE = 'bge-small-en-v1.5'

test('localModel bge-small-en-v1.5 embeds, stores under its model id and recalls by meaning', async () => {
  const root = tempDir()
  const mem = await AgentMemory.open(root, 'bge', { localModel: BGE })
  assert.equal(mem.modelId, 'bge-small-en-v1.5-int8')
  assert.equal(mem.dimensions, 384)
  await mem.rememberBatch([
    { text: 'Back off exponentially when the API answers 429 Too Many Requests.' },
    { text: 'Paris is the capital of France.' },
  ])
  const hits = await mem.recall('the server is rate-limiting us', { k: 1 })
  assert.match(hits[0].text, /429/)
  assert.equal((await mem.stats()).records, 2)

  // The shard keeps its model: the default model is refused, naming both.
  const e = await rejection(AgentMemory.open(root, 'bge'))
  assert.equal(e.code, 'RB_MODEL_MISMATCH')
  assert.ok(e.message.includes('bge-small-en-v1.5-int8') && e.message.includes('all-MiniLM-L6-v2-int8'), e.message)
})

test('an unknown localModel is RB_INVALID_INPUT naming the models there are, and creates nothing', async () => {
  const root = tempDir()
  const e = await rejection(AgentMemory.open(root, 'a', { localModel: 'e5-large' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.ok(e.message.includes('e5-large') && e.message.includes(BGE), e.message)
  assert.deepEqual(fs.readdirSync(root), [])
  const p = await rejection(rb.modelPaths({ localModel: 'e5-large' }))
  assert.equal(p.code, 'RB_INVALID_INPUT')
})

test('fetchModels and modelPaths take localModel and say which model the files are', async () => {
  const bge = await rb.fetchModels({ localModel: BGE })
  assert.equal(bge.localModel, BGE)
  assert.ok(fs.existsSync(bge.model))
  assert.deepEqual(await rb.modelPaths({ localModel: BGE }), bge)
  const minilm = await rb.modelPaths()
  assert.equal(minilm.localModel, 'all-MiniLM-L6-v2')
  assert.notEqual(minilm.model, bge.model)
})
