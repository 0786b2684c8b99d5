// Time through the binding (issue #16 point 5): memories remembered with the time they are
// about (`createdAt`), recall windows (`since`/`until`) as Unix milliseconds, dates, RFC 3339
// date-times and ages, and the errors for what is not a time.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

const { AgentMemory } = rb

test('memories keep their own time and recall takes a window', async () => {
  const mem = await AgentMemory.open(tempDir(), 'timeline')
  const nov2 = Date.UTC(2026, 10, 2)
  const nov20 = Date.UTC(2026, 10, 20)
  const [chose] = await mem.rememberBatch([
    { text: 'We chose Postgres for the billing service.', createdAt: nov2 },
    { text: 'We moved the billing service to the new cluster.', createdAt: '2026-11-20T00:00:00Z' },
  ])
  const fresh = await mem.remember('The billing service now pages the on-call engineer.')
  const texts = async (opts) =>
    (await mem.recall('what happened to the billing service', { k: 5, ...opts })).map((h) => [h.text, h.createdAt])

  assert.equal((await texts({})).length, 3)
  assert.deepEqual(await texts({ since: '2026-11-15', until: new Date(Date.UTC(2026, 10, 25)).toISOString() }), [
    ['We moved the billing service to the new cluster.', nov20],
  ])
  assert.deepEqual(await texts({ until: nov20 }), [['We chose Postgres for the billing service.', nov2]])
  const recent = await mem.recall('billing service', { since: '7d' })
  assert.deepEqual(recent.map((h) => h.id), [fresh])
  assert.equal((await mem.get(chose)).createdAt, nov2)

  const err = await rejection(mem.recall('x', { since: 'last week' }))
  assert.equal(err.code, 'RB_INVALID_INPUT')
  assert.match(err.message, /since.*RFC 3339/)
  const empty = await rejection(mem.recall('x', { since: nov20, until: nov2 }))
  assert.equal(empty.code, 'RB_INVALID_INPUT')
  assert.match(empty.message, /window is empty/)
  const early = await rejection(mem.remember('too early', {}, { createdAt: -1 }))
  assert.equal(early.code, 'RB_INVALID_INPUT')
  assert.match(early.message, /createdAt/)
  assert.equal((await texts({})).length, 3)
})
