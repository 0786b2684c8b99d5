#!/usr/bin/env node
'use strict'
// `reasonbank` from npm: the Rust command line itself (`reasonbank::cli::run`, run from the
// addon by `runCli`), so its commands, flags, output and exit status are the cargo binary's:
// 0 success; 1 an error (the message says what and how to fix it, with its `RB_*` code);
// 2 bad usage, including bad values; 3 the memory, agent or root asked about does not exist.
// `reasonbank --help` lists the commands.
//
// One command is this package's own: `reasonbank mcp [--root DIR] [--agent ID]` serves the
// memory to an MCP client over stdio, the same server the Rust `reasonbank-mcp` binary runs.
// The model runs on this package's ONNX Runtime (onnxruntime-node) unless ORT_DYLIB_PATH
// names another.
const rb = require('../main.js')

/** The first argument that is not a flag or the value of --root/--agent: the command. */
function commandOf(argv) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--root' || a === '--agent') i++
    else if (!a.startsWith('-')) return a
  }
  return undefined
}

async function main() {
  const argv = process.argv.slice(2)
  if (commandOf(argv) === 'mcp') {
    const at = argv.indexOf('mcp')
    const rest = [...argv.slice(0, at), ...argv.slice(at + 1)].filter((a) => a !== '--json')
    return rb.runMcpServer(['reasonbank mcp', ...rest])
  }
  const code = await rb.runCli(['reasonbank', ...argv])
  if (code === 0 && (argv.includes('--help') || argv.includes('-h')) && argv.length === 1) {
    console.log('npm package: reasonbank mcp [--root DIR] [--agent ID]  serve this memory to an MCP client over stdio')
  }
  return code
}

// Leave at once: the MCP server's runtime may still hold a read of stdin after the client
// closed it, and the CLI has printed everything by the time its status is known.
main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${e.message}`)
    if (e.code) console.error(`  code: ${e.code}`)
    process.exit(1)
  },
)
