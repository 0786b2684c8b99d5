// A TypeScript user of the package, type-checked with `tsc --strict --noEmit` (tsconfig.json)
// against the declarations napi-rs generates (index.d.ts). Not run: the node tests run the
// same calls.
import {
  AgentMemory,
  fetchModels,
  generateIdentity,
  modelPaths,
  type ConsolidationReport,
  type LearnReport,
  type MemoryItem,
  type MemoryRecord,
  type ModelFiles,
  type Recalled,
  type ScoredItem,
  type ShardStats,
  type SyncReport,
  type SynthesizedContext,
  type TrajectoryInput,
} from '../index.js'

interface RbError extends Error {
  code: string
}

function sink(..._values: unknown[]): void {}

function isRbError(e: unknown): e is RbError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string'
}

export async function usage(): Promise<void> {
  const files: ModelFiles = await modelPaths({ cacheDir: '/tmp/models' })
  const fetched: ModelFiles = await fetchModels()
  const memory: AgentMemory = await AgentMemory.open('memories', 'coder', { allowFetch: false, maxOpenShards: 16 })
  const agent: string = memory.agent
  const dims: number = memory.dimensions

  const id: string = await memory.remember('Retry flaky HTTP calls with backoff', { topic: 'http' }, { kind: 'lesson' })
  const ids: string[] = await memory.rememberBatch([{ text: 'a' }, { text: 'b', metadata: { n: 1 }, namespace: 'ns' }])
  const hits: Recalled[] = await memory.recall('the API timed out', {
    k: 3,
    threshold: 0.2,
    mode: 'hybrid',
    search: 'quantized',
    filter: { eq: { field: 'topic', value: 'http' } },
    shards: ['reviewer'],
  })
  for (const h of hits) {
    const similarity: number | undefined = h.why.similarity
    const topic: unknown = h.metadata.topic
    sink(h.score.toFixed(3), h.text, similarity, topic, h.createdAt + 1)
  }
  const reranking: AgentMemory = await AgentMemory.open('memories', 'coder', {
    rerankUrl: 'http://localhost:8080/v1',
    rerankModel: 'bge-reranker-v2-m3',
  })
  const reranked: Recalled[] = await reranking.recall('the API timed out', { k: 3, rerank: 20 })
  const rerankScore: number | undefined = reranked[0].why.rerank
  const rec: MemoryRecord | null = await memory.get(id)
  if (rec !== null && rec.embedding) {
    const v: Float32Array = rec.embedding
    sink(v.length, rec.version)
  }
  await memory.update(id, { text: 'new text', metadata: { topic: 'http' } })
  const existed: boolean = await memory.forget(id)
  const vectors: Float32Array[] = await memory.embed(['one', 'two'], 'query')

  const t: TrajectoryInput = {
    task: 'deploy to staging',
    steps: [{ action: 'run deploy.sh', observation: 'deployed' }],
    outcome: 'success',
  }
  const learned: LearnReport = await memory.learn(t)
  const contrast: LearnReport = await memory.learnContrastive(t.task, [t, { ...t, outcome: 'failure' }])
  const patterns: ScoredItem[] = await memory.findSimilarPatterns('ship it', { k: 3, threshold: 0.3 })
  const patternRerank: number | undefined = patterns[0].rerank
  const item: MemoryItem = await memory.feedback(patterns[0].item.id, 'success')
  const item2: MemoryItem = await memory.feedback(patterns[0].item.id, 0.7)
  const report: ConsolidationReport = await memory.consolidate({ dryRun: true, duplicateThreshold: 0.9 })
  const ctx: SynthesizedContext = await memory.synthesizeContext('deploy', { tokenBudget: 256, shards: ['reviewer'] })
  const stats: ShardStats = await memory.stats()

  const me = generateIdentity('laptop')
  const server = await memory.serve({
    listen: '127.0.0.1:0',
    certPem: me.certPem,
    keyPem: me.keyPem,
    peers: [{ fingerprint: me.fingerprint, access: 'read_write' }],
  })
  const reports: SyncReport[] = await memory.sync({ peer: server.address, trust: server.fingerprint, direction: 'pull' })
  server.close()

  try {
    await memory.get('not-a-uuid')
  } catch (e) {
    if (isRbError(e) && e.code === 'RB_INVALID_ID') sink(e.message, e.cause)
  }

  // @ts-expect-error recall modes are a closed set
  await memory.recall('q', { mode: 'fuzzy' })
  // @ts-expect-error so are vector search modes
  await memory.recall('q', { search: 'psychic' })
  // @ts-expect-error text must be a string
  await memory.remember(42)
  // @ts-expect-error feedback is success, failure or a number
  await memory.feedback(id, 'maybe')

  sink(files, fetched, agent, dims, ids, existed, vectors, learned, contrast, item, item2, report, ctx, stats, reports)
  sink(rerankScore, patternRerank)
}
