// The ReasoningBank through the binding: learn from trajectories, find patterns, feedback,
// consolidation, context synthesis — with the real model, extractive distiller, no LLM.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

const deploy = {
  task: 'deploy the web app to staging',
  steps: [
    { action: 'run deploy.sh', observation: 'error: missing env var DATABASE_URL' },
    { action: 'export DATABASE_URL and rerun deploy.sh', observation: 'deployed' },
  ],
  answer: 'deployed',
  outcome: 'success',
}

test('learn distills strategies; patterns, feedback, consolidate and synthesize use them', async () => {
  const mem = await rb.AgentMemory.open(tempDir(), 'learner')
  const report = await mem.learn(deploy)
  assert.equal(report.experiences.length, 1)
  assert.equal(report.verdicts[0].outcome, 'success')
  assert.equal(report.verdicts[0].judge, 'explicit')
  assert.ok(report.items.length >= 1)
  assert.ok(report.items.every((i) => i.kind === 'strategy' && i.status === 'active' && i.outcome === 'success'))

  const failed = await mem.learn({
    task: 'rotate the TLS certificate on the load balancer',
    steps: [{ action: 'upload cert.pem', observation: 'error: key does not match certificate' }],
    outcome: 'failure',
  })
  assert.ok(failed.items.some((i) => i.kind === 'pitfall'))

  // Plain recall leaves the raw trajectories out unless asked for them.
  const plain = await mem.recall('deploy the web app to staging', { k: 20 })
  assert.ok(plain.length >= 1 && plain.every((h) => h.kind !== 'experience'))
  const raw = await mem.recall('deploy the web app to staging', { k: 20, kinds: ['experience'] })
  assert.equal(raw.length, 2)
  assert.ok(raw.every((h) => h.kind === 'experience'))
  assert.ok((await mem.recall('deploy', { k: 20, includeInactive: true })).length >= plain.length)

  const patterns = await mem.findSimilarPatterns('ship the site to the test environment', { k: 3 })
  assert.ok(patterns.length >= 1)
  assert.match(patterns[0].item.task, /deploy the web app/)
  assert.equal(patterns[0].shard, 'learner')
  assert.ok(patterns[0].similarity > 0.3)

  const id = patterns[0].item.id
  const before = patterns[0].item.confidence
  const up = await mem.feedback(id, 'success')
  assert.ok(up.confidence > before)
  const down = await mem.feedback(id, 0.0)
  assert.ok(down.confidence < up.confidence)
  const e = await rejection(mem.feedback('0190b1c2-3d4e-7f60-8a9b-0c1d2e3f4a5b', 'success'))
  assert.equal(e.code, 'RB_NOT_FOUND')

  const ctx = await mem.synthesizeContext('deploy to staging', { tokenBudget: 120 })
  assert.ok(ctx.tokensUsed <= 120)
  assert.equal(ctx.tokenBudget, 120)
  assert.ok(ctx.items.length >= 1)
  assert.match(ctx.text, /DATABASE_URL/)

  const dry = await mem.consolidate({ dryRun: true })
  assert.equal(dry.dryRun, true)
  assert.equal(dry.written, 0)
  assert.ok(dry.examined >= report.items.length)
  const real = await mem.consolidate()
  assert.equal(real.dryRun, false)
  const flagged = await mem.contradictions()
  assert.equal(flagged.length, real.contradictions.length)
  for (const c of flagged) assert.ok(c.a.id && c.b.id && c.similarity > 0)

  const bad = await rejection(mem.consolidate({ evidenceHalfLifeMs: -5 }))
  assert.equal(bad.code, 'RB_INVALID_INPUT')
})

test('learnContrastive contrasts a failure with a success', async () => {
  const mem = await rb.AgentMemory.open(tempDir(), 'matts')
  const task = 'free disk space on the build agent'
  const report = await mem.learnContrastive(task, [
    { task, steps: [{ action: 'rm -rf /tmp/*', observation: 'permission denied' }], outcome: 'failure' },
    { task, steps: [{ action: 'docker system prune -af', observation: 'reclaimed 40GB' }], outcome: 'success' },
  ])
  assert.equal(report.verdicts.length, 2)
  assert.ok(report.items.length >= 1)
})

test('a trajectory with an empty task or a bad reward is rejected with a code', async () => {
  const mem = await rb.AgentMemory.open(tempDir(), 'strict')
  let e = await rejection(mem.learn({ ...deploy, task: '' }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /`task` is empty/)
  e = await rejection(mem.learn({ ...deploy, outcome: undefined, reward: 7 }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
  assert.match(e.message, /`reward` must be in \[0, 1\], got 7/)
  assert.equal((await mem.stats()).records, 0)
})
