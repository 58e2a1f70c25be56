// toolrt QuickJS prelude: evaluated in a fresh QuickJS context, in a freshly forked sandbox child,
// before the tool's code. It gives the tool what the Node harness gives it (console, timers,
// `module`/`exports`) and returns one driver function to the harness. The driver is returned, never
// stored on globalThis: the tool cannot reach it. The one host function (write a line to stdout or
// stderr) is taken off globalThis here and kept in this closure only, called with strings only.
// Every function of this file is named __toolrt_*: error stacks drop those frames.
(function __toolrt_prelude() {
  'use strict';
  const write = globalThis.__toolrt_write;
  delete globalThis.__toolrt_write;
  // The builtins the harness needs, taken before the tool can replace them.
  const apply = Reflect.apply;
  const stringify = JSON.stringify;
  const join = Array.prototype.join;
  const perf = performance;
  const perfNow = performance.now;
  const promiseResolve = Promise.resolve;
  const promiseThen = Promise.prototype.then;
  const toJSON = function __toolrt_json(value, replacer) { return apply(stringify, JSON, [value, replacer]); };
  const now = function __toolrt_now() { return apply(perfNow, perf, []); };

  function __toolrt_format(value) {
    try {
      return __toolrt_show(value);
    } catch (e) {
      return '[unprintable]';
    }
  }

  function __toolrt_show(value) {
    if (typeof value === 'string') return value;
    if (value === undefined) return 'undefined';
    if (typeof value === 'function') return `[Function: ${value.name || '(anonymous)'}]`;
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'symbol') return String(value);
    if (value instanceof Error) return value.stack ? `${value.name}: ${value.message}\n${value.stack}` : String(value);
    if (value === null || typeof value !== 'object') return String(value);
    try {
      const seen = new Set();
      return toJSON(value, function __toolrt_replacer(k, v) {
        if (typeof v === 'bigint') return `${v}n`;
        if (typeof v === 'function') return `[Function: ${v.name || '(anonymous)'}]`;
        if (v === undefined) return 'undefined';
        if (v !== null && typeof v === 'object') {
          if (seen.has(v)) return '[Circular]';
          seen.add(v);
          if (v instanceof Map) return { Map: Array.from(v.entries()) };
          if (v instanceof Set) return { Set: Array.from(v.values()) };
        }
        return v;
      });
    } catch (err) {
      return String(value);
    }
  }

  function __toolrt_printer(stream) {
    return function __toolrt_print(...args) {
      const parts = [];
      for (let i = 0; i < args.length; i++) parts[parts.length] = __toolrt_format(args[i]);
      // join builds one flat string: the binding cannot pass the engine's rope strings (long
      // concatenations) to the host.
      write(stream, apply(join, [apply(join, parts, [' ']), '\n'], ['']));
    };
  }
  const out = __toolrt_printer(1);
  const err = __toolrt_printer(2);
  const console = { log: out, info: out, debug: out, warn: err, error: err, trace: err };
  console.dir = function __toolrt_dir(value) { out(value); };
  console.table = function __toolrt_table(value) { out(value); };
  Object.defineProperty(globalThis, 'console', { value: console, writable: true, configurable: true });

  // Timers: one queue in this closure, run by the harness between promise jobs (like Node's loop).
  const timers = new Map();
  let nextId = 1;
  let order = 0;
  function __toolrt_add(fn, ms, args, every) {
    if (typeof fn !== 'function') throw new TypeError('the callback must be a function');
    const delay = Math.max(0, Number(ms) || 0);
    const id = nextId++;
    timers.set(id, { fn, args, at: now() + delay, order: order++, every: every ? Math.max(1, delay) : 0 });
    return id;
  }
  const clear = function __toolrt_clear(id) { timers.delete(id); };
  const define = function __toolrt_define(name, value) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  };
  define('setTimeout', function __toolrt_setTimeout(fn, ms, ...args) { return __toolrt_add(fn, ms, args, false); });
  define('setInterval', function __toolrt_setInterval(fn, ms, ...args) { return __toolrt_add(fn, ms, args, true); });
  define('clearTimeout', clear);
  define('clearInterval', clear);
  // CommonJS: `module.exports = { handler }` and `exports.handler = ...`.
  const module = { exports: {} };
  define('module', module);
  define('exports', module.exports);

  const state = { settled: false, ok: false, value: undefined, error: undefined };
  function __toolrt_settle(ok, value) {
    if (state.settled) return;
    state.settled = true;
    state.ok = ok;
    if (ok) state.value = value; else state.error = value;
  }

  function __toolrt_trim(stack) {
    // The tool's own frames only (its code is the only other one evaluated: both are "<input>").
    const kept = [];
    for (const line of String(stack).split('\n')) {
      if (line.includes('<input>') && !/^\s*at __toolrt/.test(line)) kept.push(line.replace(/<input>/g, 'tool.js'));
    }
    return kept.join('\n');
  }
  function __toolrt_describe(e) {
    if (e !== null && typeof e === 'object') {
      let type = 'Error';
      let message = '';
      try { type = String(e.name || 'Error'); message = String(e.message ?? ''); } catch (x) { /* a hostile getter */ }
      let stack = '';
      try { stack = typeof e.stack === 'string' ? __toolrt_trim(e.stack) : ''; } catch (x) { /* a hostile getter */ }
      return { type, message, traceback: `${type}: ${message}${stack ? `\n${stack}` : ''}` };
    }
    return { type: 'Error', message: `a non-Error value was thrown: ${String(e)}`, traceback: '' };
  }

  function __toolrt_find(local, entry) {
    const exported = module.exports;
    if (exported !== null && (typeof exported === 'object' || typeof exported === 'function')
        && typeof exported[entry] === 'function') return exported[entry];
    if (entry === 'handler' && typeof exported === 'function') return exported;
    return typeof local === 'function' ? local : undefined;
  }

  // The driver: the harness's only handle on this context. Every value it returns to the harness
  // is a number or a string (JSON), so no object of the context is handed to Python either.
  return function __toolrt_drive(op, a, b, c) {
    if (op === 'start') {
      // a: the entrypoint found by name (or undefined), b: its name, c: the params
      const fn = __toolrt_find(a, b);
      if (fn === undefined) {
        __toolrt_settle(false, new ReferenceError(`the code defines no function named ${b}`));
        return 0;
      }
      try {
        const value = fn(c);
        if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') {
          apply(promiseThen, apply(promiseResolve, Promise, [value]), [
            function __toolrt_resolved(v) { __toolrt_settle(true, v); },
            function __toolrt_rejected(e) { __toolrt_settle(false, e); }]);
        } else {
          __toolrt_settle(true, value);
        }
      } catch (e) {
        __toolrt_settle(false, e);
      }
      return 0;
    }
    if (op === 'module') {
      // a: what evaluating the module returned (a promise when it has top-level await)
      if (a !== null && typeof a === 'object' && typeof a.then === 'function') {
        apply(promiseThen, a, [function __toolrt_loaded() { return undefined; },
          function __toolrt_failed(e) { __toolrt_settle(false, e); }]);
      }
      return 0;
    }
    if (op === 'next') {
      // -1: settled; -2: nothing left to run; else milliseconds until the next timer
      if (state.settled) return -1;
      if (!timers.size) return -2;
      let first = null;
      for (const t of timers.values()) if (first === null || t.at < first.at || (t.at === first.at && t.order < first.order)) first = t;
      return Math.max(0, first.at - now());
    }
    if (op === 'fire') {
      let due = null;
      let dueId = 0;
      for (const [id, t] of timers) if (due === null || t.at < due.at || (t.at === due.at && t.order < due.order)) { due = t; dueId = id; }
      if (due === null) return 0;
      if (due.every) { due.at = now() + due.every; due.order = order++; } else timers.delete(dueId);
      try {
        due.fn(...due.args);
      } catch (e) {
        __toolrt_settle(false, e); // an uncaught exception in a timer ends the call, as in Node
      }
      return 0;
    }
    if (op === 'outcome') {
      // a: the entrypoint's name, b: the memory limit in MB
      if (!state.settled) {
        return toJSON({ status: 'failed', error: { type: 'NoResult', traceback: '',
          message: 'the handler returned a promise that never settled, and nothing was left to run' } });
      }
      if (!state.ok) {
        const error = __toolrt_describe(state.error);
        if (error.type === 'InternalError' && error.message === 'out of memory') {
          error.message = `memory limit of ${b} MB exceeded`;
          return toJSON({ status: 'killed', limit: 'memory', error });
        }
        return toJSON({ status: 'failed', error });
      }
      let output;
      try {
        output = state.value === undefined ? 'null' : toJSON(state.value);
      } catch (e) {
        return toJSON({ status: 'failed', error: { type: 'TypeError', traceback: '',
          message: `the return value of ${a} is not JSON-serializable: ${e && e.message}` } });
      }
      if (output === undefined) {
        return toJSON({ status: 'failed', error: { type: 'TypeError', traceback: '',
          message: `the return value of ${a} is not JSON-serializable: a ${typeof state.value}` } });
      }
      return toJSON({ status: 'succeeded', output });
    }
    return 0;
  };
})()
