// Issue #15 through the addon: `open(..., { create: false })` opens existing agents only and
// creates nothing, and `llmUrl`/`llmModel` make `learn` judge and distill with an LLM (an
// in-test server speaking the OpenAI chat-completions protocol on node:http), whose malformed
// output rejects with RB_LLM and stores nothing.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

const JUDGE_SUCCESS = 'Thoughts: the file was produced as asked.\nStatus: "success"'
const DISTILLED =
  '```json\n[{"title": "Verify outputs", "description": "Check the produced file.", ' +
  '"content": "After generating an artifact, open it and confirm its contents."}]\n```'
// No outcome: the LLM judges it.
const UNJUDGED = {
  task: 'write the report',
  steps: [{ action: 'generate report.pdf', observation: 'report.pdf written, 12 pages' }],
}

const isJudge = (req) => String(req.messages[0].content).includes('evaluating the performance')

/** Serves `reply(request)` as chat completions on 127.0.0.1; resolves to `{ url, seen, close }`. */
async function serve(reply) {
  const seen = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404).end()
        return
      }
      const request = JSON.parse(body)
      seen.push(request)
      const out = JSON.stringify({
        id: 'chatcmpl-test',
        object: 'chat.completion',
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: reply(request) } }],
      })
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) })
      res.end(out)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/v1`
  return { url, seen, close: () => new Promise((resolve) => server.close(resolve)) }
}

test('create: false opens an existing agent and creates nothing', async () => {
  const root = path.join(tempDir(), 'memories')
  let e = await rejection(rb.AgentMemory.open(root, 'ghost', { create: false }))
  assert.equal(e.code, 'RB_NO_SUCH_SHARD')
  assert.match(e.message, /ghost\.sqlite/)
  assert.equal(fs.existsSync(root), false, 'neither the root nor the shard is created')

  const known = await rb.AgentMemory.open(root, 'known')
  await known.remember('Retry flaky HTTP calls with backoff')
  e = await rejection(rb.AgentMemory.open(root, 'ghost', { create: false }))
  assert.equal(e.code, 'RB_NO_SUCH_SHARD')
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.endsWith('.sqlite')), ['known.sqlite'])

  const again = await rb.AgentMemory.open(root, 'known', { create: false })
  const hits = await again.recall('the API timed out', { k: 1 })
  assert.equal(hits[0].text, 'Retry flaky HTTP calls with backoff')
})

test('llmUrl and llmModel: the LLM judges and distills what learn stores', async () => {
  const llm = await serve((req) => (isJudge(req) ? JUDGE_SUCCESS : DISTILLED))
  try {
    const mem = await rb.AgentMemory.open(tempDir(), 'llm', { llmUrl: llm.url, llmModel: 'tiny' })
    const report = await mem.learn(UNJUDGED)
    assert.equal(report.verdicts[0].outcome, 'success')
    assert.equal(report.verdicts[0].judge, 'llm')
    assert.deepEqual(report.items.map((i) => i.title), ['Verify outputs'])
    assert.equal(report.items[0].distiller, 'llm')
    assert.equal(llm.seen.length, 2, 'one judge call, one distiller call')
    assert.deepEqual([...new Set(llm.seen.map((r) => r.model))], ['tiny'])
    const stored = await mem.recall('check the generated file', { k: 5, kinds: ['pattern'] })
    assert.deepEqual(stored.map((h) => h.id), [report.items[0].id])
  } finally {
    await llm.close()
  }
})

test('malformed LLM output rejects with RB_LLM and stores nothing', async () => {
  const llm = await serve((req) => (isJudge(req) ? JUDGE_SUCCESS : 'I would rather not say.'))
  try {
    const mem = await rb.AgentMemory.open(tempDir(), 'llm', { llmUrl: llm.url, llmModel: 'tiny' })
    const e = await rejection(mem.learn(UNJUDGED))
    assert.equal(e.code, 'RB_LLM')
    assert.match(e.message, /malformed LLM output \(distill\)/)
    assert.equal((await mem.stats()).records, 0, 'neither the experience nor an item is stored')
  } finally {
    await llm.close()
  }
})

test('llmUrl and llmModel go together', async () => {
  const root = tempDir()
  let e = await rejection(rb.AgentMemory.open(root, 'llm', { llmUrl: 'http://127.0.0.1:9/v1' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /llmUrl and llmModel/)
  e = await rejection(rb.AgentMemory.open(root, 'llm', { llmUrl: 'ftp://example/v1', llmModel: 'tiny' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
})
