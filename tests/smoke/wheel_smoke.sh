#!/usr/bin/env bash
# Install toolrt as a user does (the built wheel, into fresh virtualenvs, bare and with [all]) and
# use it from an empty folder: CLI, demo, a tool file, a library call, the errors for missing extras.
set -euo pipefail
PY="${1:-python3}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
# Like a user's virtualenv in a project folder: reachable by the sandbox's unprivileged user.
chmod 755 "$WORK"

say() { printf '\n== wheel smoke: %s\n' "$*"; }
fail() { printf 'wheel smoke FAILED: %s\n' "$*" >&2; exit 1; }

say "build the wheel"
"$PY" -m pip wheel --quiet --no-deps -w "$WORK/dist" "$ROOT" >/dev/null
WHEEL="$(ls "$WORK"/dist/toolrt-*.whl)"

cat > "$WORK/double.yaml" <<'YAML'
name: double
description: Double a number.
language: python
code: |
  def handler(x: float) -> float:
      return 2 * x
input_schema:
  type: object
  properties:
    x: {type: number}
  required: [x]
YAML

cat > "$WORK/library.py" <<'PYCODE'
import toolrt
code = "def handler(a: int) -> int:\n    return a + 1\n"
schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
with toolrt.connect("memory") as rt:
    reg = rt.register_tool("agent-1", {"name": "inc", "description": "Add one.", "language": "python",
                                       "code": code, "input_schema": schema})
    print(rt.execute_tool("agent-1", reg.tool_id, {"a": 41}).output)
PYCODE

check_common() {
  local venv="$1" folder="$2"
  mkdir -p "$folder" && cd "$folder"
  "$venv/bin/toolrt" --help >/dev/null || fail "toolrt --help"
  "$venv/bin/toolrt" demo >"$folder/demo.out" 2>&1 || { cat "$folder/demo.out"; fail "toolrt demo in an empty folder"; }
  "$venv/bin/toolrt" --json register "$WORK/double.yaml" | grep -q '"tool_id"' || fail "register a YAML tool"
  "$venv/bin/toolrt" --json invoke double x=21 | grep -q '42' || fail "invoke the YAML tool"
  out="$("$venv/bin/python" "$WORK/library.py" 2>"$folder/library.err")"
  [ "$out" = "42" ] || fail "a library call printed more than its result on stdout: $out"
  [ ! -s "$folder/library.err" ] || { cat "$folder/library.err"; fail "a library call wrote to stderr"; }
}

say "bare install"
"$PY" -m venv "$WORK/bare"
"$WORK/bare/bin/pip" install --quiet "$WHEEL"
check_common "$WORK/bare" "$WORK/empty-bare"
grep -q "toolrt\[js\]" "$WORK/empty-bare/demo.out" || fail "the bare demo does not say how to get the JS/TS samples"
if "$WORK/bare/bin/toolrt" serve >"$WORK/serve.out" 2>&1; then fail "serve ran without the mcp extra"; fi
grep -q "pip install 'toolrt\[mcp\]'" "$WORK/serve.out" || { cat "$WORK/serve.out"; fail "serve without mcp does not name the extra"; }
! grep -q Traceback "$WORK/serve.out" || fail "serve without mcp printed a traceback"
"$WORK/bare/bin/python" -c "
import toolrt
try:
    toolrt.connect('aws')
except toolrt.MissingDependencyError as e:
    assert e.extra == 'aws', e
else:
    raise SystemExit('connect(aws) without boto3 did not raise MissingDependencyError')
" || fail "connect('aws') without boto3"
"$WORK/bare/bin/python" -c "
import toolrt
try:
    toolrt.connect('memory', telemetry='opentelemetry')
except toolrt.MissingDependencyError as e:
    assert e.extra == 'otel', e
else:
    raise SystemExit('telemetry=opentelemetry without the API did not raise MissingDependencyError')
" || fail "telemetry without opentelemetry-api"

say "install with [all]"
"$PY" -m venv "$WORK/all"
"$WORK/all/bin/pip" install --quiet "$WHEEL[all]"
check_common "$WORK/all" "$WORK/empty-all"
"$WORK/all/bin/python" -c "
import toolrt
with toolrt.connect('memory', telemetry='opentelemetry') as rt:  # the API alone: spans go nowhere, calls work
    reg = rt.register_tool('a', {'name': 'one', 'description': 'One.', 'language': 'python', 'code': 'def handler():\n    return 1\n'})
    assert rt.execute_tool('a', reg.tool_id, {}).output == 1
" || fail "telemetry with [all]"
! grep -q "^skipped:" "$WORK/empty-all/demo.out" || { cat "$WORK/empty-all/demo.out"; fail "the [all] demo skipped samples"; }
cd "$WORK/empty-all"
SLUGIFY="$("$WORK/all/bin/python" -c 'from importlib import resources; print(resources.files("toolrt.examples") / "javascript" / "slugify.yaml")')"
"$WORK/all/bin/toolrt" --json register "$SLUGIFY" --name slug2 | grep -q '"tool_id"' || fail "register a JavaScript tool file"
if "$WORK/all/bin/toolrt" serve --transport http --host 0.0.0.0 >"$WORK/bind.out" 2>&1; then fail "serve on 0.0.0.0 without tokens started"; fi
grep -q -- "--insecure-no-auth" "$WORK/bind.out" || fail "serve on 0.0.0.0 without tokens did not say what to do"

"$WORK/all/bin/python" -c "
from importlib import resources
for name in ('dashboard.html', 'dashboard.js', 'dashboard.css'):
    assert (resources.files('toolrt.adapters.mcp') / name).read_bytes(), name
from toolrt.adapters.mcp.operator_routes import prometheus_text
import toolrt
with toolrt.connect('memory') as rt:
    assert b'toolrt_tools' in prometheus_text(rt.fleet_metrics())
" || fail "the dashboard's files or /metrics are missing from the wheel"
if "$WORK/all/bin/toolrt" dashboard --host 0.0.0.0 >"$WORK/dash.out" 2>&1; then fail "dashboard on 0.0.0.0 without a token started"; fi
grep -q -- "--operator-token" "$WORK/dash.out" || fail "dashboard on 0.0.0.0 without a token did not say what to do"

say "passed"
