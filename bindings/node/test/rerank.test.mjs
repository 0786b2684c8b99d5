// Issue #16 through the addon: `open(..., { rerankUrl, rerankModel })` gives recall a reranker
// (an in-test server speaking the `/v1/rerank` protocol of llama.cpp, vLLM, Jina and Cohere on
// node:http), `recall(..., { rerank: n })` returns the reranker's best k of the first
// ranking's best n, and every way it cannot rerank rejects with a code, never a silent fallback.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

const NOTES = [
  'Cats sleep for most of the day in a warm spot.',
  'Cats purr when they are content, and sometimes when they are hurt.',
  'The cat door sticks in winter; oil the hinge.',
  'Dogs bark at the mail carrier every morning.',
]

/** The door first, then anything about purring, the rest last: not the first ranking's order. */
const score = (doc) => (doc.includes('door') ? 4 : doc.includes('purr') ? 2.5 : -1)

/**
 * Serves POST /v1/rerank on 127.0.0.1: `status` 200 answers `score` of every document (in
 * reverse order, as servers sorting by relevance do), any other status an error body.
 * Resolves to `{ url, seen, close }`.
 */
async function serve(status = 200) {
  const seen = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/rerank') {
        res.writeHead(404).end()
        return
      }
      const request = JSON.parse(body)
      seen.push(request)
      const out =
        status === 200
          ? JSON.stringify({
              model: request.model,
              results: request.documents
                .map((d, index) => ({ index, relevance_score: score(d) }))
                .reverse(),
            })
          : JSON.stringify({ error: 'loading model' })
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) })
      res.end(out)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/v1`
  return { url, seen, close: () => new Promise((resolve) => server.close(resolve)) }
}

async function pets(options) {
  const mem = await rb.AgentMemory.open(tempDir(), 'pets', options)
  await mem.rememberBatch(NOTES.map((text) => ({ text })))
  return mem
}

test('rerank: the reranker scores the first ranking\'s best n, recall returns its best k', async () => {
  const reranker = await serve()
  try {
    const mem = await pets({ rerankUrl: reranker.url, rerankModel: 'test-reranker' })
    const hits = await mem.recall('what do cats do', { k: 2, rerank: 3 })
    assert.deepEqual(hits.map((h) => h.text), [NOTES[2], NOTES[1]])
    assert.equal(hits[0].score, 4)
    assert.equal(hits[0].why.rerank, 4)
    assert.equal(hits[1].score, 2.5)
    assert.equal(hits[1].why.rerank, 2.5)
    assert.equal(typeof hits[0].why.similarity, 'number', 'the first ranking\'s signals stay')

    assert.equal(reranker.seen.length, 1)
    const [request] = reranker.seen
    assert.equal(request.query, 'what do cats do')
    assert.equal(request.model, 'test-reranker')
    assert.equal(request.documents.length, 3)
    assert.ok(!request.documents.some((d) => d.includes('Dogs')), 'the dog is not in the best 3')

    // Without `rerank`, recall does not call the reranker and has no `why.rerank`.
    const plain = await mem.recall('what do cats do')
    assert.ok(plain.every((h) => h.why.rerank === undefined))
    assert.equal(reranker.seen.length, 1)
  } finally {
    await reranker.close()
  }
})

test('with a reranker, findSimilarPatterns reports its score as rerank', async () => {
  const reranker = await serve()
  try {
    const mem = await rb.AgentMemory.open(tempDir(), 'pets', { rerankUrl: reranker.url, rerankModel: 'test-reranker' })
    await mem.learn({
      task: 'fix the cat door',
      steps: [{ action: 'oil the door hinge', observation: 'the door swings freely' }],
      outcome: 'success',
    })
    const before = reranker.seen.length
    const [scored] = await mem.findSimilarPatterns('the cat door sticks', { k: 1 })
    assert.equal(typeof scored.rerank, 'number')
    assert.equal(reranker.seen.length, before + 1)
    assert.equal(reranker.seen.at(-1).query, 'the cat door sticks')

    const plain = await rb.AgentMemory.open(tempDir(), 'pets')
    await plain.learn({ task: 'fix the cat door', steps: [{ action: 'oil the hinge' }], outcome: 'success' })
    const [unranked] = await plain.findSimilarPatterns('the cat door sticks', { k: 1 })
    assert.equal(unranked.rerank, undefined)
  } finally {
    await reranker.close()
  }
})

test('rerank without a reranker, or with fewer candidates than k, rejects with RB_INVALID_INPUT', async () => {
  const mem = await pets()
  let e = await rejection(mem.recall('cats', { k: 2, rerank: 10 }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /no reranker/)

  const reranker = await serve()
  try {
    const ranked = await pets({ rerankUrl: reranker.url, rerankModel: 'test-reranker' })
    e = await rejection(ranked.recall('cats', { k: 5, rerank: 3 }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
    assert.equal(reranker.seen.length, 0, 'rejected before any call')
  } finally {
    await reranker.close()
  }
})

test('a failing reranker rejects with RB_RERANK', async () => {
  const down = await serve(503)
  try {
    const mem = await pets({ rerankUrl: down.url, rerankModel: 'test-reranker' })
    const e = await rejection(mem.recall('cats', { k: 2, rerank: 4 }))
    assert.equal(e.code, 'RB_RERANK')
    assert.match(e.message, /503/)
    assert.match(e.message, /loading model/)
    assert.equal(down.seen.length, 1)
  } finally {
    await down.close()
  }
})

test('rerankUrl and rerankModel go together', async () => {
  const root = tempDir()
  let e = await rejection(rb.AgentMemory.open(root, 'pets', { rerankUrl: 'http://127.0.0.1:9/v1' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /rerankUrl and rerankModel/)
  e = await rejection(rb.AgentMemory.open(root, 'pets', { rerankModel: 'test-reranker' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /rerankUrl and rerankModel/)
  e = await rejection(rb.AgentMemory.open(root, 'pets', { rerankUrl: 'ftp://example/v1', rerankModel: 'm' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
})
