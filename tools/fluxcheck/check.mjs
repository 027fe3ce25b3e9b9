#!/usr/bin/env node
// Check Flux texts with the official Flux language service (flux-lsp, compiled
// to WebAssembly, npm @influxdata/flux-lsp-browser, pinned in package.json).
//
// stdin:  JSON array of {"name": str, "flux": str}
// stdout: JSON array of {"name": str, "diagnostics": [{"line": int, "column": int,
//         "severity": int, "message": str}]}, in input order.
//         line and column are 1-based; the column counts characters (code points,
//         like Python's str indexes; flux-lsp itself puts UTF-8 byte offsets in its LSP
//         positions, converted here); severity is the LSP one: 1 error, 2 warning, 3 information, 4 hint.
//         Diagnostics are sorted by position.
// Exit 0 whenever every text was checked (diagnostics or not); nonzero only when
// the checker itself fails (bad input, the service cannot load, a text times out).
//
// The package is a bundler build ("module" entry, `import * as wasm from
// "./flux-lsp-browser_bg.wasm"` inside the glue). Node cannot import it as is, so
// the wasm-bindgen glue (_bg.js) is loaded from source with its static wasm
// import replaced by a setter, the .wasm is instantiated here with the glue module
// as its import object, and the instance is handed to the glue. The language
// server is then driven with LSP JSON-RPC messages: initialize, initialized, and
// per text textDocument/didOpen -> textDocument/publishDiagnostics -> didClose.

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

const PACKAGE = "@influxdata/flux-lsp-browser";
const GLUE_FILE = "flux-lsp-browser_bg.js";
const WASM_FILE = "flux-lsp-browser_bg.wasm";
const PER_TEXT_TIMEOUT_MS = Number(process.env.FLUXCHECK_TEXT_TIMEOUT_MS || 30000);
const VERBOSE = process.env.FLUXCHECK_VERBOSE === "1";

class CheckerError extends Error {}

// stdout carries only the JSON result: the service logs through console.info /
// console.log / console.debug, so send those to stderr (or drop them).
const toStderr = (...args) => {
  if (VERBOSE) console.error(...args);
};
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

function packageDir() {
  const require = createRequire(import.meta.url);
  let manifest;
  try {
    manifest = require.resolve(`${PACKAGE}/package.json`);
  } catch (err) {
    throw new CheckerError(
      `${PACKAGE} is not installed next to check.mjs (run .ci/install-flux-checker): ${err.message}`,
    );
  }
  return path.dirname(manifest);
}

// The glue's last lines cache views of wasm memory at module evaluation time,
// which cannot work before instantiation; they move into the setter.
const WASM_IMPORT = "import * as wasm from './flux-lsp-browser_bg.wasm';";
const MEMORY_CACHE =
  "cachedInt32Memory0 = new Int32Array(wasm.memory.buffer);\n" +
  "cachedUint8Memory0 = new Uint8Array(wasm.memory.buffer);";
const SETTER =
  "\nexport function __fluxcheck_set_wasm(exports) {\n" +
  "    wasm = exports;\n" +
  "    cachedInt32Memory0 = new Int32Array(wasm.memory.buffer);\n" +
  "    cachedUint8Memory0 = new Uint8Array(wasm.memory.buffer);\n" +
  "}\n";

async function loadService() {
  const dir = packageDir();
  let glueSource = await readFile(path.join(dir, GLUE_FILE), "utf8");
  for (const needle of [WASM_IMPORT, MEMORY_CACHE]) {
    if (!glueSource.includes(needle)) {
      throw new CheckerError(
        `unexpected wasm-bindgen glue in ${PACKAGE}/${GLUE_FILE} (is the pinned version installed?): missing ${JSON.stringify(needle)}`,
      );
    }
  }
  glueSource = glueSource.replace(WASM_IMPORT, "let wasm;").replace(MEMORY_CACHE, "") + SETTER;
  const glue = await import(
    "data:text/javascript;base64," + Buffer.from(glueSource, "utf8").toString("base64")
  );

  const bytes = await readFile(path.join(dir, WASM_FILE));
  const module = await WebAssembly.compile(bytes);
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (!(imp.name in glue)) {
      throw new CheckerError(`wasm import ${imp.module}.${imp.name} has no export in the glue`);
    }
    (imports[imp.module] ??= {})[imp.name] = glue[imp.name];
  }
  const instance = await WebAssembly.instantiate(module, imports);
  glue.__fluxcheck_set_wasm(instance.exports);
  return glue;
}

class Client {
  constructor(glue) {
    this.lsp = new glue.Lsp();
    this.nextId = 1;
    this.waiting = new Map(); // uri -> {resolve}
    this.published = new Map(); // uri -> diagnostics that arrived before anyone waited
    this.lsp.onMessage((raw) => this.onMessage(raw));
    this.stopped = null;
    this.lsp.run().then(
      () => {
        this.stopped = new CheckerError("the Flux language server stopped");
        this.failAll();
      },
      (err) => {
        this.stopped = new CheckerError(`the Flux language server failed: ${err}`);
        this.failAll();
      },
    );
  }

  failAll() {
    for (const { reject } of this.waiting.values()) reject(this.stopped);
    this.waiting.clear();
  }

  onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      toStderr("fluxcheck: unparsable server message", raw);
      return;
    }
    if (msg.method === "textDocument/publishDiagnostics") {
      const { uri, diagnostics } = msg.params;
      const waiter = this.waiting.get(uri);
      if (waiter) {
        this.waiting.delete(uri);
        waiter.resolve(diagnostics);
      } else if (!this.published.has(uri)) {
        this.published.set(uri, diagnostics);
      }
    } else if (msg.method !== undefined && msg.id !== undefined) {
      // A request from the server to the client (showMessageRequest,
      // applyEdit...): answer so that it never waits on us.
      this.lsp.send(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: null })).catch(() => {});
    } else {
      toStderr("fluxcheck: server message", raw);
    }
  }

  async request(method, params) {
    const id = this.nextId++;
    const raw = await this.lsp.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    const reply = JSON.parse(raw);
    if (reply.error) {
      throw new CheckerError(`${method} failed: ${JSON.stringify(reply.error)}`);
    }
    return reply.result;
  }

  async notify(method, params) {
    await this.lsp.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }

  diagnosticsFor(uri, name) {
    if (this.published.has(uri)) {
      const diagnostics = this.published.get(uri);
      this.published.delete(uri);
      return Promise.resolve(diagnostics);
    }
    if (this.stopped) return Promise.reject(this.stopped);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(uri);
        reject(new CheckerError(`no diagnostics for ${JSON.stringify(name)} within ${PER_TEXT_TIMEOUT_MS} ms`));
      }, PER_TEXT_TIMEOUT_MS);
      this.waiting.set(uri, {
        resolve: (d) => {
          clearTimeout(timer);
          resolve(d);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async check(index, name, text) {
    const uri = `file:///fluxcheck/${index}/query.flux`;
    const pending = this.diagnosticsFor(uri, name);
    await this.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "flux", version: 1, text },
    });
    const diagnostics = await pending;
    await this.notify("textDocument/didClose", { textDocument: { uri } });
    this.published.delete(uri);
    const lines = text.split("\n");
    return diagnostics
      .map((d) => ({
        line: d.range.start.line + 1,
        column: characterColumn(lines[d.range.start.line], d.range.start.character),
        severity: d.severity ?? 1,
        message: d.message,
      }))
      .sort((a, b) => a.line - b.line || a.column - b.column || a.severity - b.severity);
  }
}

// flux-lsp reports the UTF-8 byte offset within the line; return the 1-based
// column in characters (code points).
function characterColumn(lineText, byteOffset) {
  if (lineText === undefined) return byteOffset + 1;
  const prefix = Buffer.from(lineText, "utf8").subarray(0, byteOffset).toString("utf8");
  return [...prefix].length + 1;
}

async function readInput() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  let items;
  try {
    items = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (err) {
    throw new CheckerError(`stdin is not JSON: ${err.message}`);
  }
  if (!Array.isArray(items)) throw new CheckerError("stdin must be a JSON array");
  items.forEach((item, i) => {
    if (
      item === null ||
      typeof item !== "object" ||
      typeof item.name !== "string" ||
      typeof item.flux !== "string"
    ) {
      throw new CheckerError(`item ${i} must be {"name": string, "flux": string}`);
    }
  });
  return items;
}

async function main() {
  const items = await readInput();
  const glue = await loadService();
  const client = new Client(glue);
  await client.request("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
  await client.notify("initialized", {});
  const results = [];
  for (const [index, item] of items.entries()) {
    results.push({ name: item.name, diagnostics: await client.check(index, item.name, item.flux) });
  }
  await new Promise((resolve) => process.stdout.write(JSON.stringify(results) + "\n", resolve));
}

main().then(
  () => process.exit(0),
  (err) => {
    const message = err instanceof CheckerError ? err.message : err?.stack || String(err);
    process.stderr.write(`fluxcheck: ${message}\n`);
    process.exit(2);
  },
);
