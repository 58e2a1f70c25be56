"""The size budget of functions only goes down: the functions over it are named here, and no other may join them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"
BUDGET_RULES = ("C901", "PLR0912", "PLR0915")

#: Functions over ruff's complexity, branch or statement limit (pyproject.toml), as "path::qualified name".
#: Bring one within the limits and remove it here (and its file's entry in pyproject.toml's
#: per-file-ignores when it was the file's last); never add one.
OVER_RUFF_BUDGET = frozenset(
    {
        "adapters/aws/gateway.py::AgentCoreGateway._commit",
        "adapters/aws/gateway.py::AgentCoreGateway._place",
        "adapters/aws/gateway.py::_openapi_schema",
        "adapters/aws/gateway.py::to_schema_definition",
        "adapters/aws/provision.py::Provisioner.down",
        "adapters/aws/sandbox.py::AgentCoreCodeInterpreterSandbox.run",
        "adapters/cli/commands/executions.py::invoke",
        "adapters/cli/commands/mcp.py::serve",
        "adapters/cli/context.py::Cli.fail",
        "adapters/local/cgroups.py::detect",
        "adapters/local/egress_http.py::send_body",
        "adapters/local/egress_proxy.py::EgressProxy._decide",
        "adapters/local/egress_proxy.py::EgressProxy._serve",
        "adapters/local/harness/python_zygote.py::child",
        "adapters/local/harness/python_zygote.py::fork_forwarder",
        "adapters/local/harness/python_zygote.py::handle",
        "adapters/local/harness/python_zygote.py::run_js_tool",
        "adapters/local/harness/python_zygote.py::zygote_main",
        "adapters/local/resolver_jail.py::pip_index_access",
        "adapters/local/sandbox.py::SubprocessSandbox.__init__",
        "adapters/local/sandbox.py::SubprocessSandbox._start_node",
        "adapters/local/sqlite/search_index.py::SqliteSearchIndex.search",
        "adapters/local/sqlite/search_index.py::SqliteSearchIndex.search.run",
        "adapters/local/workers.py::NodeWorker.call",
        "adapters/local/workers.py::PythonZygote.call",
        "adapters/mcp/operator_routes.py::operator_routes",
        "adapters/validation/inference.py::annotation_schema",
        "adapters/validation/inference.py::docstring_params",
        "adapters/validation/js_engine.py::_needs",
        "adapters/validation/policy.py::_check",
        "adapters/validation/python_entrypoint.py::_check_params",
        "adapters/validation/python_security.py::_bound_names",
        "application/functions.py::function_definition",
        "application/register_tools.py::RegisterTools._execute",
        "adapters/wire_formats.py::render_schemas",
        "adapters/wire_formats.py::strict_schema",
        "application/update_tool.py::UpdateTool._update",
        "benchmarks/dashboard.py::main",
        "benchmarks/egress.py::main",
        "benchmarks/front_door.py::main",
        "benchmarks/local_store.py::main",
        "benchmarks/sandbox.py::main",
        "benchmarks/search_quality.py::main",
        "benchmarks/tenancy.py::main",
        "benchmarks/tenancy.py::sandbox_memory_mb",
        "tests/integration/aws/agentcore_quotas.py::AgentCoreQuotas._check",
        "tests/integration/test_local_store_concurrency.py::_worker",
        "tests/unit/aws/cfn.py::Resolver._function",
        "tests/unit/aws/fake_agentcore.py::FakeCodeInterpreter._send",
    }
)

#: Library functions of LONG_LINES lines or more (the sandbox harness, laid out by hand for its
#: start-up time, aside). The same rule: shorten one and remove it here; never add one.
LONG_LINES = 60
LONG_FUNCTIONS = frozenset(
    {
        "adapters/aws/lambda_router.py::LambdaRouter.__call__",
        "adapters/aws/provision.py::Provisioner._function",
        "adapters/aws/provision.py::Provisioner.down",
        "adapters/aws/provision.py::provision",
        "adapters/aws/sandbox.py::AgentCoreCodeInterpreterSandbox.run",
        "adapters/cli/commands/executions.py::invoke",
        "adapters/cli/commands/machine.py::gc",
        "adapters/cli/commands/mcp.py::serve",
        "adapters/cli/commands/tools.py::register",
        "adapters/cli/main.py::build_app",
        "adapters/local/egress_proxy.py::EgressProxy._serve",
        "adapters/local/resolver_jail.py::ResolverJail.run",
        "adapters/local/sandbox.py::SubprocessSandbox.__init__",
        "adapters/local/sandbox.py::SubprocessSandbox._run_python",
        "adapters/local/sandbox.py::SubprocessSandbox._spawn",
        "adapters/local/sandbox.py::SubprocessSandbox._start_node",
        "adapters/local/sandbox.py::SubprocessSandbox._start_template",
        "adapters/local/sandbox_env.py::namespace_args",
        "adapters/local/sqlite/execution_log.py::SqliteExecutionLog.execution_summary",
        "adapters/local/sqlite/search_index.py::SqliteSearchIndex.search",
        "adapters/local/sqlite/search_index.py::SqliteSearchIndex.search.run",
        "adapters/local/workers.py::NodeWorker.call",
        "adapters/local/workers.py::PythonZygote.call",
        "adapters/mcp/operator_routes.py::prometheus_text",
        "adapters/mcp/operator_routes.py::prometheus_text.FleetCollector.collect",
        "adapters/mcp/server.py::ToolrtMcpServer.__init__",
        "adapters/validation/python_entrypoint.py::_check_params",
        "application/fleet_metrics.py::ReadFleetMetrics.execute",
        "application/register_tools.py::RegisterTools._execute",
    }
)
LIBRARY = ("domain", "ports", "application", "adapters", "contracts")


def _functions(path: Path) -> dict[int, tuple[str, int]]:
    """Each function of ``path`` by the line of its ``def``: its qualified name and its length in lines."""
    found: dict[int, tuple[str, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    assert child.end_lineno is not None
                    found[child.lineno] = (name, child.end_lineno - child.lineno + 1)
                visit(child, name + ".")

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def _over_ruff_budget() -> dict[str, set[str]]:
    """Every function ruff finds over the budget, with no file excused: "path::name" -> the rules it breaks."""
    report = subprocess.run(
        [str(RUFF), "check", "--select", ",".join(BUDGET_RULES), "--config", "lint.per-file-ignores = {}"]
        + ["--output-format", "json", "--exit-zero", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    over: dict[str, set[str]] = defaultdict(set)
    for violation in json.loads(report.stdout):
        path = Path(violation["filename"]).resolve().relative_to(ROOT)
        name, _ = _functions(ROOT / path)[violation["location"]["row"]]
        over[f"{path}::{name}"].add(violation["code"])
    return over


def test_no_function_joins_those_over_the_complexity_budget() -> None:
    """ruff's complexity, branch and statement limits: the functions over them are the listed ones, fewer over time."""
    over = _over_ruff_budget()
    new = sorted(set(over) - OVER_RUFF_BUDGET)
    assert not new, f"over ruff's complexity budget (split them up; see pyproject.toml): {new}"
    fixed = sorted(OVER_RUFF_BUDGET - set(over))
    assert not fixed, f"within the budget now: remove them from OVER_RUFF_BUDGET (and pyproject.toml): {fixed}"


def test_each_file_excused_in_pyproject_still_needs_each_rule() -> None:
    """The per-file ignores in pyproject.toml are exactly the files and rules of the listed functions."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ignores = settings["tool"]["ruff"]["lint"]["per-file-ignores"]
    excused = {path: set(rules) & set(BUDGET_RULES) for path, rules in ignores.items()}
    needed: dict[str, set[str]] = defaultdict(set)
    for function, rules in _over_ruff_budget().items():
        needed[function.partition("::")[0]] |= rules
    assert {path: rules for path, rules in excused.items() if rules} == dict(needed)


def test_no_library_function_joins_the_long_ones() -> None:
    """Library functions of 60 lines or more are the listed ones, fewer over time."""
    files = [path for folder in LIBRARY for path in (ROOT / folder).rglob("*.py") if "harness" not in path.parts]
    files += [path for path in (ROOT / "toolrt").glob("*.py")]
    long = {
        f"{path.relative_to(ROOT)}::{name}"
        for path in files
        for name, lines in _functions(path).values()
        if lines >= LONG_LINES
    }
    new = sorted(long - LONG_FUNCTIONS)
    assert not new, f"functions of {LONG_LINES} lines or more (split them up): {new}"
    shortened = sorted(LONG_FUNCTIONS - long)
    assert not shortened, f"shorter than {LONG_LINES} lines now: remove them from LONG_FUNCTIONS: {shortened}"
