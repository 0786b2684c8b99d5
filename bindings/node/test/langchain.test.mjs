// The LangChain.js example: a real @langchain/core retriever and embeddings over the binding.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Document } from '@langchain/core/documents'
import { RunnableLambda } from '@langchain/core/runnables'
import { ReasonbankRetriever, ReasonbankEmbeddings } from '../examples/langchain.mjs'
import { rb, tempDir, rejection } from './helpers.mjs'

const DOCS = [
  new Document({ pageContent: 'Retry flaky HTTP calls with exponential backoff and jitter.', metadata: { topic: 'http' } }),
  new Document({ pageContent: 'Never retry a POST request that is not idempotent.', metadata: { topic: 'http' } }),
  new Document({ pageContent: 'Run database migrations before deploying the web server.', metadata: { topic: 'deploy' } }),
  new Document({ pageContent: 'The cat sleeps on the warm windowsill all afternoon.', metadata: { topic: 'pets' } }),
]

test('ReasonbankRetriever: addDocuments, invoke, batch, filters and a chain', async () => {
  const memory = await rb.AgentMemory.open(tempDir(), 'lc')
  const retriever = new ReasonbankRetriever({ memory, k: 2 })
  const ids = await retriever.addDocuments(DOCS)
  assert.equal(ids.length, 4)

  const docs = await retriever.invoke('the payment API timed out, try again?')
  assert.equal(docs.length, 2)
  assert.ok(docs.every((d) => d instanceof Document))
  assert.ok(docs.every((d) => d.metadata.topic === 'http'), JSON.stringify(docs))
  assert.ok(ids.includes(docs[0].id))
  assert.equal(docs[0].metadata.shard, 'lc')
  assert.ok(docs[0].metadata.why.similarity > 0.2)

  const [a, b] = await retriever.batch(['feline napping', 'schema changes before a release'])
  assert.equal(a[0].metadata.topic, 'pets')
  assert.equal(b[0].metadata.topic, 'deploy')

  const onlyDeploy = new ReasonbankRetriever({ memory, k: 4, recall: { filter: { eq: { field: 'topic', value: 'deploy' } } } })
  assert.deepEqual((await onlyDeploy.invoke('anything at all')).map((d) => d.metadata.topic), ['deploy'])

  const chain = retriever.pipe(RunnableLambda.from((ds) => ds.map((d) => d.pageContent).join('\n')))
  assert.match(await chain.invoke('idempotent POST retries'), /POST/)

  const bad = new ReasonbankRetriever({ memory, recall: { mode: 'telepathy' } })
  const e = await rejection(bad.invoke('q'))
  assert.equal(e.code, 'RB_INVALID_INPUT')
})

test('ReasonbankEmbeddings: unit-length 384-d vectors that rank by meaning', async () => {
  const memory = await rb.AgentMemory.open(tempDir(), 'emb')
  const emb = new ReasonbankEmbeddings({ memory })
  const docs = await emb.embedDocuments(DOCS.map((d) => d.pageContent))
  const q = await emb.embedQuery('a kitten resting in the sun')
  assert.equal(docs.length, 4)
  assert.equal(q.length, 384)
  const cos = docs.map((d) => d.reduce((s, x, i) => s + x * q[i], 0))
  assert.equal(cos.indexOf(Math.max(...cos)), 3)
})
