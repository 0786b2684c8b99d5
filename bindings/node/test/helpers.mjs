// Shared by the tests: the package as a user loads it, and fresh directories for shards.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { after } from 'node:test'

const require = createRequire(import.meta.url)
/** The package's entry point (`main`), as `require('reasonbank')` loads it. */
export const rb = require('../main.js')

const dirs = []
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

/** A new empty directory, removed when the test file ends. */
export function tempDir(prefix = 'rb-node-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  dirs.push(d)
  return d
}

/** Awaits `promise` and returns the error it rejects with (fails if it resolves). */
export async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection, but the promise resolved')
}

export function norm(v) {
  let s = 0
  for (const x of v) s += x * x
  return Math.sqrt(s)
}
