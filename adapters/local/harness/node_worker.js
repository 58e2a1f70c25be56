// toolrt Node worker: runs inside the sandbox, serves exactly one tool call, then exits.
// It reads one JSON request from stdin until EOF (the code and params arrive as data, never spliced
// into source), runs the handler, and writes one JSON result document to the fd named by its last argument.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire, stripTypeScriptTypes } = require('node:module');
const { pathToFileURL } = require('node:url');

const RESULT_FD = Number(process.argv[process.argv.length - 1]);
const PREPARE_FOR = process.argv[process.argv.length - 2];
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function readStdin() {
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); continue; }
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function trimStack(err, files) {
  const stack = typeof err?.stack === 'string' ? err.stack : '';
  const lines = stack.split('\n');
  const head = lines.filter((l) => !/^\s+at /.test(l));
  const own = lines.filter((l) => /^\s+at /.test(l) && files.some((f) => l.includes(f)));
  return head.concat(own).join('\n');
}

function writeResult(doc) {
  let body;
  try {
    body = JSON.stringify(doc);
  } catch (e) {
    body = JSON.stringify({ status: 'failed', error: { type: 'TypeError', message: String(e), traceback: '' } });
  }
  fs.writeSync(RESULT_FD, body);
}

function describe(err, files) {
  if (err !== null && typeof err === 'object') {
    return {
      type: String(err.name || err.constructor?.name || 'Error'),
      message: String(err.message ?? ''),
      traceback: trimStack(err, files),
    };
  }
  return { type: 'Error', message: `a non-Error value was thrown: ${String(err)}`, traceback: '' };
}

async function loadHandler(req, workdir, files) {
  const entry = req.entrypoint;
  if (!IDENT.test(entry)) throw new TypeError(`entrypoint ${JSON.stringify(entry)} is not a valid identifier`);
  let code = req.code;
  if (req.language === 'typescript') code = stripTypeScriptTypes(code, { mode: 'strip' });
  const cjsFile = path.join(workdir, 'tool.js');
  let fn;
  try {
    // A CommonJS body covers a plain top-level function and `module.exports = { handler }`.
    // Only the (validated) entrypoint identifier is appended; it is looked up after the code ran.
    fn = vm.compileFunction(`${code}\n;return typeof ${entry} === 'function' ? ${entry} : undefined;`,
      ['exports', 'require', 'module', '__filename', '__dirname'], { filename: cjsFile });
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    // `export function handler` and `import` need an ES module.
    const esmFile = path.join(workdir, 'tool.mjs');
    fs.writeFileSync(esmFile, code);
    let ns;
    try {
      ns = await import(pathToFileURL(esmFile).href);
    } catch (esmErr) {
      throw esmErr instanceof SyntaxError ? err : esmErr;
    }
    const found = ns[entry] ?? ns.default?.[entry] ?? (entry === 'handler' && typeof ns.default === 'function' ? ns.default : undefined);
    if (typeof found !== 'function') throw new ReferenceError(`the module exports no function named ${entry}`);
    return found;
  }
  const module = { exports: {} };
  const local = fn(module.exports, createRequire(cjsFile), module, cjsFile, workdir);
  const exported = module.exports;
  const found = (typeof exported?.[entry] === 'function' ? exported[entry] : undefined)
    ?? (entry === 'handler' && typeof exported === 'function' ? exported : undefined)
    ?? local;
  if (typeof found !== 'function') throw new ReferenceError(`the code defines no function named ${entry}`);
  return found;
}

async function prepare() {
  // Egress (a worker started for calls that may reach hosts): HTTP(S)_PROXY name a loopback port
  // where a forwarder, started before Node by the worker's launcher, relays to the worker's egress
  // socket. Node itself cannot open a unix socket (the sandbox's filter refuses the family).
  // Pay one-time costs before the request arrives: the TypeScript stripper (loaded lazily by Node)
  // and the ES module loader.
  // A sample touching interfaces, generics and async: stripping new code is then sub-millisecond.
  if (PREPARE_FOR === 'typescript') {
    stripTypeScriptTypes('interface P { a: string; b?: number[] }\n'
      + 'export async function f(p: P, q: Record<string, unknown>): Promise<number> { return 1 as number; }\n',
    { mode: 'strip' });
  }
  vm.compileFunction('return 1;', [], { filename: 'warmup.js' });
  const warm = path.join(process.cwd(), 'warmup.mjs');
  fs.writeFileSync(warm, 'export const ready = 1;\n');
  try {
    await import(pathToFileURL(warm).href);
  } finally {
    fs.unlinkSync(warm);
  }
}

async function main() {
  const workdir = process.cwd();
  await prepare();
  fs.writeSync(RESULT_FD, '\n'); // ready: the host counts this worker as warm from now on
  const req = JSON.parse(readStdin());
  const files = ['tool.js', 'tool.mjs'];
  let doc;
  try {
    const handler = await loadHandler(req, workdir, files);
    const value = await handler(req.params);
    let output;
    try {
      output = value === undefined ? 'null' : JSON.stringify(value);
    } catch (err) {
      output = undefined;
      doc = { status: 'failed', error: { type: 'TypeError', traceback: '',
        message: `the return value of ${req.entrypoint} is not JSON-serializable: ${err.message}` } };
    }
    if (!doc && output === undefined) {
      doc = { status: 'failed', error: { type: 'TypeError', traceback: '',
        message: `the return value of ${req.entrypoint} is not JSON-serializable: a ${typeof value}` } };
    }
    if (!doc) doc = { status: 'succeeded', output };
  } catch (err) {
    doc = { status: 'failed', error: describe(err, files) };
    if (err instanceof RangeError && /allocation failed|Array buffer allocation/i.test(err.message)) {
      doc.status = 'killed';
      doc.limit = 'memory';
    }
  }
  writeResult(doc);
  process.exit(0);
}

main().catch((err) => {
  writeResult({ status: 'failed', error: describe(err, ['tool.js', 'tool.mjs']) });
  process.exit(0);
});
