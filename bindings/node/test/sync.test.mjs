// Sync to a peer through the binding: one memory serves its store on loopback (QUIC, mutual
// TLS), another pushes and pulls; a peer not in the allowlist and a wrong fingerprint fail with
// codes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { rb, tempDir, rejection } from './helpers.mjs'

test('sync pushes and pulls a shard between two roots over QUIC', async () => {
  const hubId = rb.generateIdentity('hub')
  const meId = rb.generateIdentity('laptop')
  assert.match(hubId.fingerprint, /^[0-9a-f]{64}$/)
  assert.match(hubId.certPem, /BEGIN CERTIFICATE/)

  const hub = await rb.AgentMemory.open(tempDir(), 'coder')
  const server = await hub.serve({
    listen: '127.0.0.1:0',
    certPem: hubId.certPem,
    keyPem: hubId.keyPem,
    peers: [{ fingerprint: meId.fingerprint, shards: ['coder'], access: 'read_write' }],
  })
  assert.equal(server.fingerprint, hubId.fingerprint)
  assert.match(server.address, /^127\.0\.0\.1:\d+$/)
  try {
    const hubNote = await hub.remember('The staging database is reset every Sunday night.', { from: 'hub' })

    // The identity is read from <root>/.sync like `reasonbank sync keygen` writes it.
    const root = tempDir()
    fs.mkdirSync(path.join(root, '.sync'))
    fs.writeFileSync(path.join(root, '.sync', 'cert.pem'), meId.certPem)
    fs.writeFileSync(path.join(root, '.sync', 'key.pem'), meId.keyPem, { mode: 0o600 })
    const me = await rb.AgentMemory.open(root, 'coder')
    const mine = await me.remember('Feature flags are read from flags.yaml at startup.', { from: 'laptop' })

    const [report] = await me.sync({ peer: server.address, trust: server.fingerprint })
    assert.equal(report.shard, 'coder')
    assert.equal(report.sent, 1)
    assert.equal(report.received, 1)
    assert.equal(report.applied, 1)
    assert.ok(report.bytesOnWire > 0)

    assert.equal((await hub.get(mine)).text, 'Feature flags are read from flags.yaml at startup.')
    assert.equal((await me.get(hubNote)).metadata.from, 'hub')
    const hits = await hub.recall('where do feature toggles come from?', { k: 1 })
    assert.equal(hits[0].id, mine)

    // A forget travels as a tombstone.
    await me.forget(hubNote)
    const [again] = await me.sync({ peer: server.address, trust: server.fingerprint, direction: 'push', certPem: meId.certPem, keyPem: meId.keyPem })
    assert.equal(again.sent, 1)
    assert.equal(await hub.get(hubNote), null)

    // A shard the peer has no grant for is refused, with a code.
    const e = await rejection(me.sync({ peer: server.address, trust: server.fingerprint, shards: ['secrets'], certPem: meId.certPem, keyPem: meId.keyPem }))
    assert.equal(e.code, 'RB_SYNC_DENIED', e.message)
    assert.match(e.message, /secrets/)
  } finally {
    server.close()
  }
})

test('sync errors: unknown peer, wrong fingerprint, bad options', async () => {
  const hubId = rb.generateIdentity('hub')
  const stranger = rb.generateIdentity('stranger')
  const hub = await rb.AgentMemory.open(tempDir(), 'coder')
  const server = await hub.serve({ listen: '127.0.0.1:0', certPem: hubId.certPem, keyPem: hubId.keyPem, peers: [] })
  try {
    const me = await rb.AgentMemory.open(tempDir(), 'coder')
    await me.remember('a note that must not leave')
    const id = { certPem: stranger.certPem, keyPem: stranger.keyPem }

    // The TLS handshake fails (both sides pin certificates): denied, and the message says
    // which side refused and why.
    let e = await rejection(me.sync({ peer: server.address, trust: server.fingerprint, ...id }))
    assert.equal(e.code, 'RB_SYNC_DENIED')
    assert.match(e.message, /the peer refused .* not in the peer's list of peers/)
    assert.equal((await hub.stats()).records, 0)

    e = await rejection(me.sync({ peer: server.address, trust: stranger.fingerprint, ...id }))
    assert.equal(e.code, 'RB_SYNC_DENIED')
    assert.match(e.message, new RegExp(`fingerprint is ${server.fingerprint}, you pinned ${stranger.fingerprint}`))

    e = await rejection(me.sync({ peer: server.address, trust: 'abc', ...id }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
    e = await rejection(me.sync({ peer: server.address, trust: server.fingerprint, direction: 'sideways', ...id }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
    e = await rejection(me.sync({ peer: server.address, trust: server.fingerprint, certPem: stranger.certPem }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
    e = await rejection(me.sync({ peer: server.address, trust: server.fingerprint }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
    assert.match(e.message, /cert\.pem.*reasonbank sync keygen/)
    e = await rejection(me.sync({ peer: 'not an address', trust: server.fingerprint, ...id }))
    assert.equal(e.code, 'RB_INVALID_INPUT')
  } finally {
    server.close()
  }
  const e = await rejection(hub.serve({ listen: 'nowhere', certPem: hubId.certPem, keyPem: hubId.keyPem, peers: [] }))
  assert.equal(e.code, 'RB_INVALID_INPUT')
})
