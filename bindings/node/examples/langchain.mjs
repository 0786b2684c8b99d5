// LangChain.js integration: reasonbank as a LangChain retriever and embeddings.
//
//   import { ReasonbankRetriever, ReasonbankEmbeddings } from './examples/langchain.mjs'
//   const memory = await AgentMemory.open('memories', 'coder')
//   const retriever = new ReasonbankRetriever({ memory, k: 4 })
//   await retriever.addDocuments([new Document({ pageContent: '...', metadata: { topic: 'http' } })])
//   const docs = await retriever.invoke('the API timed out')       // any chain that takes a retriever
//
// `ReasonbankRetriever` is a `BaseRetriever` (so a Runnable: `invoke`, `batch`, `pipe`, callbacks)
// over `AgentMemory.recall`; `ReasonbankEmbeddings` is an `Embeddings` over the same local model,
// for LangChain vector stores. Run this file to see it work: `node examples/langchain.mjs`.
import { createRequire } from 'node:module'
import { BaseRetriever } from '@langchain/core/retrievers'
import { Embeddings } from '@langchain/core/embeddings'
import { Document } from '@langchain/core/documents'

const require = createRequire(import.meta.url)
const { AgentMemory } = require('../main.js')

/** Recalls an agent's memories as LangChain `Document`s. */
export class ReasonbankRetriever extends BaseRetriever {
  lc_namespace = ['reasonbank', 'retrievers']

  /**
   * @param {object} fields
   * @param {import('../index').AgentMemory} fields.memory  the agent's memory
   * @param {number} [fields.k]  documents per query (default 4)
   * @param {import('../index').RecallOptions} [fields.recall]  other recall options (filter, mode, threshold, shards)
   */
  constructor(fields) {
    super(fields)
    if (!fields || !fields.memory) throw new TypeError('ReasonbankRetriever needs { memory }')
    this.memory = fields.memory
    this.k = fields.k ?? 4
    this.recallOptions = fields.recall ?? {}
  }

  /** Documents for `query`: text as `pageContent`; metadata plus `id`, `shard`, `kind`, `score`, `why`. */
  async _getRelevantDocuments(query) {
    const hits = await this.memory.recall(query, { ...this.recallOptions, k: this.k })
    return hits.map(
      (h) =>
        new Document({
          id: h.id,
          pageContent: h.text,
          metadata: { ...h.metadata, id: h.id, shard: h.shard, kind: h.kind, score: h.score, why: h.why },
        }),
    )
  }

  /** Remembers documents (one transaction); resolves to their ids. */
  async addDocuments(documents) {
    return this.memory.rememberBatch(documents.map((d) => ({ text: d.pageContent, metadata: { ...d.metadata } })))
  }
}

/** LangChain `Embeddings` over the memory's local model (all-MiniLM-L6-v2, 384-d, unit length). */
export class ReasonbankEmbeddings extends Embeddings {
  /** @param {{ memory: import('../index').AgentMemory }} fields */
  constructor(fields) {
    super(fields ?? {})
    if (!fields || !fields.memory) throw new TypeError('ReasonbankEmbeddings needs { memory }')
    this.memory = fields.memory
  }

  async embedDocuments(texts) {
    const vectors = await this.memory.embed(texts, 'document')
    return vectors.map((v) => Array.from(v))
  }

  async embedQuery(text) {
    const [v] = await this.memory.embed([text], 'query')
    return Array.from(v)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fs = await import('node:fs')
  const os = await import('node:os')
  const path = await import('node:path')
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-langchain-'))
  const memory = await AgentMemory.open(root, 'agent')
  const retriever = new ReasonbankRetriever({ memory, k: 2 })
  await retriever.addDocuments([
    new Document({ pageContent: 'Retry flaky HTTP calls with exponential backoff and jitter.', metadata: { topic: 'http' } }),
    new Document({ pageContent: 'Run database migrations before deploying.', metadata: { topic: 'deploy' } }),
    new Document({ pageContent: 'The cat sleeps on the windowsill.', metadata: { topic: 'pets' } }),
  ])
  const chain = retriever.pipe((docs) => docs.map((d, i) => `[${i + 1}] ${d.pageContent}`).join('\n'))
  console.log(await chain.invoke('the payment API timed out'))
  fs.rmSync(root, { recursive: true, force: true })
}
