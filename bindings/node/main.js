'use strict'
// The package's entry point: the addon as napi-rs' generated loader (index.js) finds it, with
// one packaging default set. When the npm `onnxruntime-node` package is installed, its ONNX
// Runtime library is the one the model runs on, unless `OpenOptions.ortLibrary` or
// `ORT_DYLIB_PATH` names another; without it, the runtime comes from the reasonbank cache
// (fetched from PyPI like the Rust crate's, sha256-checked). `modelPaths()` shows which.
const fs = require('node:fs')
const path = require('node:path')
const native = require('./index.js')

const ORT_LIBRARY = {
  linux: 'libonnxruntime.so.1',
  darwin: 'libonnxruntime.1.dylib',
  win32: 'onnxruntime.dll',
}

function onnxruntimeNodeLibrary() {
  let dir
  try {
    dir = path.dirname(require.resolve('onnxruntime-node/package.json'))
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') return null // not installed: use the cache
    throw e
  }
  const name = ORT_LIBRARY[process.platform]
  if (!name) return null
  const lib = path.join(dir, 'bin', 'napi-v6', process.platform, process.arch, name)
  return fs.existsSync(lib) ? lib : null
}

if (native.defaultOrtLibrary() == null) {
  native.setDefaultOrtLibrary(onnxruntimeNodeLibrary())
}

module.exports = native
