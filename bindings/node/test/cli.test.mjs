// The package's `reasonbank` bin is the Rust CLI (run from the addon): its commands, flags,
// output and exit status (0 ok, 1 error, 2 bad usage, 3 not found), run as a user would with
// node. tests/it/cli.rs covers every command; this checks that the bin is that CLI.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { tempDir } from './helpers.mjs'

const BIN = fileURLToPath(new URL('../bin/reasonbank.js', import.meta.url))

function cli(root, args, input) {
  const env = { ...process.env }
  delete env.REASONBANK_AGENT
  const r = spawnSync(process.execPath, [BIN, '--root', root, ...args], { encoding: 'utf8', input, env })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

test('remember, recall --json, get, forget, stats with the Rust CLI\'s exit codes', () => {
  const root = tempDir()
  let r = cli(root, ['remember', 'Retry flaky HTTP calls with backoff', '--meta', '{"topic":"http"}', '--agent', 'coder'])
  assert.equal(r.code, 0, r.err)
  const id = r.out.trim()
  assert.match(id, /^[0-9a-f-]{36}$/)
  cli(root, ['--agent', 'coder', 'remember', 'Bake bread at 250 degrees', '--kind', 'recipe'])

  r = cli(root, ['--agent', 'coder', 'recall', 'the API timed out', '--k', '1', '--json'])
  assert.equal(r.code, 0, r.err)
  const hits = JSON.parse(r.out)
  assert.equal(hits.length, 1)
  assert.equal(hits[0].id, id)
  assert.deepEqual(hits[0].metadata, { topic: 'http' })
  assert.ok('created_at' in hits[0], 'snake_case field names, as the Rust CLI prints them')

  r = cli(root, ['--agent', 'coder', 'recall', 'the API timed out', '--k', '1', '--json', '--search', 'exact'])
  assert.equal(r.code, 0, r.err)
  assert.equal(JSON.parse(r.out)[0].id, id)
  r = cli(root, ['--agent', 'coder', 'recall', 'x', '--search', 'psychic'])
  assert.equal(r.code, 2)
  assert.match(r.err, /--search/)
  r = cli(root, ['--agent', 'coder', 'recall', 'the API timed out'])
  assert.match(r.out, /\[coder\/memory\] Retry flaky HTTP calls/)
  assert.match(r.out, /cosine 0\.\d{3}/)

  r = cli(root, ['--agent', 'coder', '--json', 'get', id])
  assert.equal(r.code, 0, r.err)
  assert.equal(JSON.parse(r.out).text, 'Retry flaky HTTP calls with backoff')
  assert.equal(JSON.parse(r.out).embedding, undefined)

  r = cli(root, ['--agent', 'coder', '--json', 'stats'])
  assert.equal(JSON.parse(r.out).records, 2)
  assert.equal(JSON.parse(r.out).agent, 'coder')

  assert.equal(cli(root, ['--agent', 'coder', 'forget', id]).code, 0)
  assert.equal(cli(root, ['--agent', 'coder', 'forget', id]).code, 3)
  assert.equal(cli(root, ['--agent', 'coder', 'get', id]).code, 3)
  assert.equal(cli(root, ['--agent', 'nobody', 'get', id]).code, 3)
  assert.equal(cli(root, ['--agent', 'nobody', 'stats']).code, 3)

  r = cli(root, ['--agent', 'coder', 'get', 'not-a-uuid'])
  assert.equal(r.code, 2)
  assert.match(r.err, /invalid record id/)
  r = cli(root, ['--agent', 'coder', 'recall', 'x', '--filter', '{"bogus":1}'])
  assert.equal(r.code, 2)
  assert.match(r.err, /--filter/)
  r = cli(root, ['--agent', 'nobody', 'recall', 'x'])
  assert.equal(r.code, 3)
  assert.match(r.err, /agent nobody has no memories/)
  assert.equal(cli(root, ['recall', 'x', '--k', 'many']).code, 2)
  assert.equal(cli(root, ['recall']).code, 2)
  assert.equal(cli(root, ['frobnicate']).code, 2)
  assert.equal(cli(root, ['recall', 'x', '--budget', '3']).code, 2)
})

test('learn from stdin, patterns, feedback, consolidate, synthesize, models path', () => {
  const root = tempDir()
  const trajectory = JSON.stringify({
    task: 'deploy the web app to staging',
    steps: [
      { action: 'run deploy.sh', observation: 'error: missing env var DATABASE_URL' },
      { action: 'export DATABASE_URL and rerun deploy.sh', observation: 'deployed' },
    ],
    outcome: 'success',
  })
  let r = cli(root, ['--json', 'learn', '-'], trajectory)
  assert.equal(r.code, 0, r.err)
  const report = JSON.parse(r.out)
  assert.equal(report.verdicts[0].outcome, 'success')

  r = cli(root, ['--json', 'patterns', 'ship the site to staging', '--k', '1'])
  const [top] = JSON.parse(r.out)
  assert.ok(report.items.some((i) => i.id === top.item.id))

  r = cli(root, ['feedback', top.item.id, '0.9'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /confidence 0\.\d{3}/)
  assert.equal(cli(root, ['feedback', top.item.id, '7']).code, 2)

  r = cli(root, ['--json', 'consolidate', '--dry-run'])
  assert.equal(JSON.parse(r.out).dry_run, true)

  r = cli(root, ['synthesize', 'deploy to staging', '--budget', '200'])
  assert.equal(r.code, 0, r.err)
  assert.match(r.out, /DATABASE_URL/)
  assert.match(r.err, /of 200 tokens/)

  r = cli(root, ['--json', 'models', 'path'])
  assert.equal(r.code, 0, r.err)
  assert.ok(JSON.parse(r.out).model.endsWith('model.onnx'))
  const empty = tempDir('rb-empty-cache-')
  r = cli(root, ['models', 'path', '--cache-dir', empty])
  assert.equal(r.code, 1)
  assert.match(r.err, /reasonbank models fetch/)
  assert.match(r.err, /RB_MODEL_MISSING/)
})
