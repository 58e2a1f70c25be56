// toolrt's JavaScript/TypeScript checker: parses tool code without running it and reports facts.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout.
//   request:  {"id", "language": "javascript"|"typescript", "code", "entrypoint",
//              "globals": [names to report], "roots": [object names whose members to report],
//              "properties": [property names whose accesses to report, on any object]}
//   response: {"id", "parser", "syntax": null|{"message","line","column","rule"}, "modules": [...],
//              "globals": [...], "members": [...], "constructors": [...], "entrypoint": "..."}
// The Python side owns the policy; this side only extracts facts with exact positions.
'use strict';

const readline = require('node:readline');
const nodeModule = require('node:module');
const vm = require('node:vm');

// Node ships acorn (the parser behind its REPL) as an internal module, reachable with
// --expose-internals. It gives a real ESTree AST without installing anything from npm.
let acorn = null;
try {
  acorn = require('internal/deps/acorn/acorn/dist/acorn');
} catch {
  acorn = null;
}

// The type stripper loads its WebAssembly on first use (~70 ms): pay that at start-up, not on the
// first TypeScript registration.
try {
  nodeModule.stripTypeScriptTypes('let warm: number = 1;');
} catch {
  // An older Node without type stripping: TypeScript checks will report the error.
}

const MODULE_ONLY = /sourceType: module|'import' and 'export'|import\.meta/;

function parse(code) {
  const common = { ecmaVersion: 'latest', locations: true, allowHashBang: true };
  try {
    return { ast: acorn.parse(code, { ...common, sourceType: 'script', allowReturnOutsideFunction: true }) };
  } catch (scriptError) {
    try {
      return { ast: acorn.parse(code, { ...common, sourceType: 'module', allowAwaitOutsideFunction: true }) };
    } catch (moduleError) {
      const chosen = MODULE_ONLY.test(scriptError.message) ? moduleError : scriptError;
      return { error: chosen };
    }
  }
}

function syntaxFinding(error, rule) {
  const loc = error.loc || {};
  return {
    message: String(error.message).replace(/ \(\d+:\d+\)$/, ''),
    line: loc.line || 0,
    column: loc.column === undefined ? 0 : loc.column + 1,
    rule,
  };
}

// stripTypeScriptTypes reports no position; find the line by stripping ever longer prefixes until
// the same error appears, and the column of the offending keyword when the error names one.
function locateTypeScriptError(code, message) {
  const lines = code.split('\n');
  let lo = 1;
  let hi = lines.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    let same = false;
    try {
      nodeModule.stripTypeScriptTypes(lines.slice(0, mid).join('\n'));
    } catch (e) {
      same = e.message === message;
    }
    if (same) hi = mid;
    else lo = mid + 1;
  }
  const keyword = /\b(enum|namespace|module|declare|private|public|protected|readonly)\b/;
  const hinted = /(enum|namespace|module|parameter property|declare)/.exec(message);
  let line = lo;
  let column = 0;
  if (hinted) {
    // For a multi-line construct the prefix search finds its last line; look back for its keyword.
    for (let i = lo - 1; i >= 0; i--) {
      const m = keyword.exec(lines[i]);
      if (m) {
        line = i + 1;
        column = m.index + 1;
        break;
      }
    }
  }
  if (!column && lines[line - 1] !== undefined) {
    // "Unexpected token `=`": point at that token on the line, else at its first non-blank character.
    const text = lines[line - 1];
    const token = /`([^`]+)`/.exec(message);
    const at = token ? text.indexOf(token[1]) : -1;
    column = at >= 0 ? at + 1 : text.search(/\S/) + 1;
  }
  return { line, column };
}

function stripTypes(code) {
  try {
    return { code: nodeModule.stripTypeScriptTypes(code, { mode: 'strip' }) };
  } catch (error) {
    const { line, column } = locateTypeScriptError(code, error.message);
    const rule = error.code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' ? 'syntax.typescript.not_erasable' : 'syntax.typescript';
    return { error: { message: error.message, line, column, rule } };
  }
}

function stringValue(node) {
  if (!node) return null;
  if (node.type === 'Literal' && typeof node.value === 'string') return node.value;
  if (node.type === 'TemplateLiteral' && node.expressions.length === 0) return node.quasis[0].value.cooked;
  if (node.type === 'BinaryExpression' && node.operator === '+') {
    const left = stringValue(node.left);
    const right = stringValue(node.right);
    return left !== null && right !== null ? left + right : null;
  }
  return null;
}

function memberPath(node) {
  // "process.binding" for process.binding / process['binding']; null when not a plain name chain.
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'MemberExpression') {
    const base = memberPath(node.object);
    if (base === null) return null;
    const key = node.computed ? stringValue(node.property) : node.property.name;
    return key === null ? `${base}[*]` : `${base}.${key}`;
  }
  return null;
}

function pos(node) {
  return { line: node.loc.start.line, column: node.loc.start.column + 1 };
}

// Identifier positions that are names, not references: obj.name, { name: v }, labels, declarations.
function isReference(node, parent, key) {
  if (!parent) return true;
  switch (parent.type) {
    case 'MemberExpression':
      return key !== 'property' || parent.computed;
    case 'Property':
    case 'MethodDefinition':
    case 'PropertyDefinition':
      return key !== 'key' || parent.computed;
    case 'LabeledStatement':
    case 'BreakStatement':
    case 'ContinueStatement':
    case 'MetaProperty':
    case 'ImportSpecifier':
    case 'ImportDefaultSpecifier':
    case 'ImportNamespaceSpecifier':
    case 'ExportSpecifier':
      return false;
    default:
      return true;
  }
}

function analyse(ast, request) {
  const watchGlobals = new Set(request.globals || []);
  const roots = new Set(request.roots || []);
  const watchProperties = new Set(request.properties || []);
  const facts = { modules: [], globals: [], members: [], constructors: [], aliases: [], stringTimers: [],
    properties: [], renamedExports: [] };
  // Objects whose members the policy denies: using one as a plain value (`const p = process`,
  // `const { binding } = process`) would reach those members under another name.
  const guarded = new Set(['process', 'globalThis', 'global']);
  let tryDepth = 0; // how many try blocks enclose the node being visited

  function addModule(source, kind, node) {
    const name = stringValue(source);
    // builtin: Node's own module (fs, node:path), which needs no package.
    const builtin = typeof name === 'string' && nodeModule.isBuiltin(name);
    // guarded: inside a try block, where a failed load is the tool's own fallback.
    facts.modules.push({ name, kind, builtin, guarded: tryDepth > 0, ...pos(node) });
  }

  function visit(node, parent, key) {
    switch (node.type) {
      case 'ImportDeclaration':
      case 'ExportAllDeclaration':
        addModule(node.source, 'import', node);
        break;
      case 'ExportNamedDeclaration':
        if (node.source) addModule(node.source, 'import', node);
        for (const spec of node.specifiers || []) {
          const exportedName = spec.exported && (spec.exported.name || spec.exported.value);
          if (spec.local && spec.local.name !== exportedName) facts.renamedExports.push({ name: exportedName, ...pos(spec) });
        }
        break;
      case 'ImportExpression':
        addModule(node.source, 'dynamic-import', node);
        break;
      case 'CallExpression':
        if (node.callee.type === 'Identifier' && node.callee.name === 'require') {
          addModule(node.arguments[0], 'require', node);
        }
        {
          const callee = node.callee.type === 'Identifier' ? node.callee.name : memberPath(node.callee);
          const first = node.arguments[0];
          if (/^(?:(?:globalThis|global)\.)?set(?:Timeout|Interval)$/.test(callee || '') && first &&
              (first.type === 'TemplateLiteral' || (first.type === 'Literal' && typeof first.value === 'string'))) {
            facts.stringTimers.push({ name: callee, ...pos(node) });
          }
        }
        break;
      case 'Identifier':
        if (guarded.has(node.name) && isReference(node, parent, key) &&
            !(parent && parent.type === 'MemberExpression' && key === 'object')) {
          facts.aliases.push({ name: node.name, ...pos(node) });
        }
        if (watchGlobals.has(node.name) && isReference(node, parent, key)) {
          const called = parent && (parent.type === 'CallExpression' || parent.type === 'NewExpression') && key === 'callee';
          facts.globals.push({ name: node.name, called: Boolean(called), ...pos(node) });
        }
        break;
      case 'MemberExpression': {
        const path = memberPath(node);
        if (path !== null && roots.has(path.split(/[.[]/)[0])) facts.members.push({ path, ...pos(node) });
        const property = node.computed ? stringValue(node.property) : node.property.name;
        // Any value's .constructor chain ends at Function (handler.constructor, [].map.constructor,
        // ''.constructor.constructor): reading it is refused whatever the object is.
        if (property === 'constructor') facts.constructors.push(pos(node.property));
        if (watchProperties.has(property)) facts.properties.push({ name: property, ...pos(node.property) });
        break;
      }
      case 'Property':
        // const { constructor: F } = handler
        if (parent && parent.type === 'ObjectPattern' &&
            (node.computed ? stringValue(node.key) : (node.key.name || node.key.value)) === 'constructor') {
          facts.constructors.push(pos(node.key));
        }
        break;
      case 'Literal':
      case 'TemplateLiteral':
      case 'BinaryExpression':
        // 'constructor' as data: Reflect.get(f, 'constructor'), Object.getOwnPropertyDescriptor(f, 'constr' + 'uctor').
        if (stringValue(node) === 'constructor' && !(parent && parent.type === 'BinaryExpression') &&
            !(parent && parent.type === 'MemberExpression' && key === 'property') &&
            !(parent && (parent.type === 'Property' || parent.type === 'MethodDefinition') && key === 'key')) {
          facts.constructors.push(pos(node));
        }
        break;
      default:
        break;
    }
    for (const childKey of Object.keys(node)) {
      if (childKey === 'loc') continue;
      const child = node[childKey];
      const inTry = node.type === 'TryStatement' && childKey === 'block';
      if (inTry) tryDepth += 1;
      if (Array.isArray(child)) {
        for (const item of child) if (item && typeof item.type === 'string') visit(item, node, childKey);
      } else if (child && typeof child.type === 'string') {
        visit(child, node, childKey);
      }
      if (inTry) tryDepth -= 1;
    }
  }
  visit(ast, null, null);
  facts.entrypoint = entrypointKind(ast, request.entrypoint || 'handler');
  facts.functions = topLevelFunctions(ast);
  return facts;
}

function valueKind(node, declared) {
  if (!node) return 'other';
  if (node.type === 'FunctionExpression' || node.type === 'ArrowFunctionExpression') return 'function';
  if (node.type === 'Identifier') return declared.get(node.name) || 'missing';
  if (node.type === 'CallExpression' || node.type === 'AwaitExpression') return 'unknown';
  return 'other';
}

function declarations(body) {
  const declared = new Map();
  for (const raw of body) {
    const stmt = (raw.type === 'ExportNamedDeclaration' || raw.type === 'ExportDefaultDeclaration') && raw.declaration ? raw.declaration : raw;
    if (stmt.type === 'FunctionDeclaration' && stmt.id) declared.set(stmt.id.name, 'function');
    else if (stmt.type === 'ClassDeclaration' && stmt.id) declared.set(stmt.id.name, 'other');
    else if (stmt.type === 'VariableDeclaration') {
      for (const d of stmt.declarations) if (d.id.type === 'Identifier') declared.set(d.id.name, valueKind(d.init, new Map()));
    }
  }
  // `const handler = impl` where impl is a declared function.
  for (const [name, kind] of declared) {
    if (kind === 'missing') declared.set(name, 'other');
  }
  return declared;
}

function isExportsTarget(node) {
  const path = memberPath(node);
  return path === 'module.exports' || path === 'exports';
}

function entrypointKind(ast, name) {
  const declared = declarations(ast.body);
  let exported = null;
  for (const stmt of ast.body) {
    if (stmt.type === 'ExportNamedDeclaration' && !stmt.declaration) {
      for (const spec of stmt.specifiers) {
        const exportedName = spec.exported.name || spec.exported.value;
        if (exportedName === name) exported = declared.get(spec.local.name) || 'missing';
      }
    }
    if (stmt.type !== 'ExpressionStatement' || stmt.expression.type !== 'AssignmentExpression') continue;
    const { left, right } = stmt.expression;
    if (isExportsTarget(left) && right.type === 'ObjectExpression') {
      for (const prop of right.properties) {
        if (prop.type !== 'Property') continue;
        const key = prop.computed ? stringValue(prop.key) : (prop.key.name || prop.key.value);
        if (key === name) exported = valueKind(prop.value, declared);
      }
    } else if (isExportsTarget(left) && right.type === 'Identifier' && right.name === name) {
      exported = declared.get(name) || 'missing';
    } else if (left.type === 'MemberExpression' && isExportsTarget(left.object)) {
      const key = left.computed ? stringValue(left.property) : left.property.name;
      if (key === name) exported = valueKind(right, declared);
    }
  }
  if (exported !== null) return exported;
  return declared.get(name) || 'missing';
}

function topLevelFunctions(ast) {
  return [...declarations(ast.body)].filter(([, kind]) => kind === 'function').map(([name]) => name);
}

function check(request) {
  const response = { id: request.id, parser: acorn ? 'acorn' : 'v8', syntax: null };
  let code = String(request.code);
  if (request.language === 'typescript') {
    const stripped = stripTypes(code);
    if (stripped.error) return { ...response, syntax: stripped.error };
    code = stripped.code;
    response.stripped = code; // kept with the artifact: the sandbox runs this, positions unchanged
  }
  const rule = request.language === 'typescript' ? 'syntax.typescript' : 'syntax.javascript';
  if (!acorn) {
    try {
      vm.compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname']);
    } catch (error) {
      return { ...response, syntax: { message: String(error.message), line: 0, column: 0, rule } };
    }
    return response;
  }
  const parsed = parse(code);
  if (parsed.error) return { ...response, syntax: syntaxFinding(parsed.error, rule) };
  return { ...response, ...analyse(parsed.ast, request) };
}

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  let response;
  let id = null;
  try {
    const request = JSON.parse(line);
    id = request.id;
    response = check(request);
  } catch (error) {
    // Deep nesting can overflow the parser's stack: report it instead of dying.
    response = { id, parser: acorn ? 'acorn' : 'v8', failure: `${error && error.name}: ${error && error.message}` };
  }
  process.stdout.write(JSON.stringify(response) + '\n');
});
input.on('close', () => process.exit(0));
