"""The operator dashboard over a big local store: N tools (default 10,000) and M executions (1,000,000).

Run: ``python -m benchmarks.dashboard [N] [--executions M] [--rounds R] [--no-browser] [--dir PATH]``.

Setup seeds the SQLite file in bulk (``add_many`` for the tools, one ``executemany`` for the
execution records, spread evenly over 30 days: about 1,400 in the last hour and 33,000 in the last
day; 4% failed, 1% timed out, 1,000 distinct callers). Then a real HTTP server (the operator views
of ``toolrt serve --transport http``, on loopback) answers, and each figure is the median of R
rounds next to its baseline measured in the same run: a raw ``SELECT`` of the window's records'
status, wall time and tool through the ``created_at`` index (what any report of the window reads). With Chromium installed, the whole page is also loaded in
a headless browser until its figures are drawn. The query plans show which indexes serve.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import toolrt
from benchmarks._stats import quiet_logs
from benchmarks.local_store import definition
from toolrt.adapters.local import _serde
from toolrt.adapters.local.sqlite_repository import SqliteToolRepository
from toolrt.domain import Execution, ExecutionFailure, ExecutionStatus, Tool
from toolrt.domain.figures import minute_of

CHUNK = 10_000
TOKEN = "benchmark-operator-token"


def seed(path: Path, tools: int, executions: int) -> str:
    """Fill the SQLite file; returns the busiest tool's id."""
    started = time.perf_counter()
    repo = SqliteToolRepository(path)
    now = datetime.now(UTC)
    created = now - timedelta(days=31)

    def batch(start: int, stop: int) -> Iterator[Tool]:
        for i in range(start, stop):
            yield Tool.create(
                tool_id=f"tool-{i:07d}",
                owner=f"agent-{i % max(1, tools // 10):06d}",
                definition=definition(f"tool_{i}", i % 500),
                now=created,
            )

    for start in range(0, tools, CHUNK):
        repo.add_many(batch(start, min(tools, start + CHUNK)))
    tools_s = time.perf_counter() - started
    ok = Execution("EXEC-ID", "TOOL-ID", 1, "CALLER-ID", ExecutionStatus.SUCCEEDED, created, created, output=3)
    failed = Execution(
        "EXEC-ID",
        "TOOL-ID",
        1,
        "CALLER-ID",
        ExecutionStatus.FAILED,
        created,
        created,
        error=ExecutionFailure("ValueError", "bad input"),
    )
    templates = {"succeeded": _serde.dumps(ok), "failed": _serde.dumps(failed)}
    stamp = created.isoformat()
    rng = random.Random(7)
    span_s = 30 * 86400

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(executions):
            moment = now - timedelta(seconds=span_s * i / max(1, executions))
            status = "failed" if i % 25 == 0 else "timed_out" if i % 100 == 1 else "succeeded"
            error = "ValueError" if status == "failed" else "Timeout" if status == "timed_out" else None
            # A skewed load: a few tools take most calls.
            tool, caller = f"tool-{int(tools * rng.random() ** 3):07d}", f"agent-{i % 1000:06d}"
            body = templates["failed" if error else "succeeded"].replace("EXEC-ID", f"exec-{i:08d}")
            body = body.replace(stamp, moment.isoformat()).replace("TOOL-ID", tool).replace("CALLER-ID", caller)
            yield (
                f"exec-{i:08d}",
                tool,
                status,
                moment.isoformat(),
                body,
                caller,
                minute_of(moment),
                1,
                rng.lognormvariate(2.0, 0.6),
                error,
                "namespaces",
            )

    conn = repo.database.connection()  # bulk seeding, not a repository operation
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO executions (execution_id, tool_id, status, created_at, body, caller, created_min, version,"
        " wall_ms, error_type, isolation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    busiest = conn.execute(
        "SELECT tool_id FROM executions WHERE created_at >= ? GROUP BY tool_id ORDER BY count(*) DESC LIMIT 1",
        ((now - timedelta(hours=1)).isoformat(),),
    ).fetchone()[0]
    repo.close()
    print(
        f"setup: {tools} tools in {tools_s:.1f} s, {executions} executions in {time.perf_counter() - started - tools_s:.1f} s"
    )
    return str(busiest)


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm: first reads page the index in
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status, body[:200])
        return body
    finally:
        conn.close()


def _plans(path: Path) -> None:
    conn = sqlite3.connect(path)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for label, sql, args in (
        (
            "fleet window",
            "SELECT created_min, status, count(*) FROM executions WHERE created_at >= ? GROUP BY 1, 2",
            (since,),
        ),
        (
            "one tool's window",
            "SELECT count(*) FROM executions WHERE created_at >= ? AND tool_id = ?",
            (since, "tool-0000001"),
        ),
        ("tool census", "SELECT count(DISTINCT owner) FROM tools WHERE status = 'active'", ()),
        (
            "recent calls of a tool",
            "SELECT body FROM executions WHERE tool_id = ? ORDER BY created_at DESC LIMIT 20",
            ("t",),
        ),
    ):
        plan = "; ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        print(f"  plan, {label:<24} {plan}")
    conn.close()


def _browser_load(url: str, rounds: int) -> float | None:
    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
        return None
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="toolrt-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        times = []
        for _ in range(rounds + 1):
            driver.get("about:blank")
            started = time.perf_counter()
            driver.get(url)
            WebDriverWait(driver, 120).until(lambda d: d.find_element("tag name", "body").get_attribute("data-loaded"))
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times[1:])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__)
    parser.add_argument("tools", nargs="?", type=int, default=10_000, help="tools (10000)")
    parser.add_argument("--executions", type=int, default=1_000_000, help="execution records (1000000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure (5)")
    parser.add_argument("--no-browser", action="store_true", help="skip the headless Chromium page load")
    parser.add_argument(
        "--dir", type=Path, default=None, help="data directory, kept and reused (default: a temp dir, removed)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    quiet_logs()
    data = args.dir or Path(tempfile.mkdtemp(prefix="toolrt-bench-dashboard-"))
    print(f"dashboard: {args.tools} tools, {args.executions} executions, data in {data}")
    try:
        if args.dir is not None and (data / "toolrt.sqlite").exists():
            print("setup: reusing the store in --dir (delete it to seed again)")
            with sqlite3.connect(data / "toolrt.sqlite") as conn:
                since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
                busiest = conn.execute(
                    "SELECT tool_id FROM executions WHERE created_at >= ? GROUP BY tool_id ORDER BY count(*) DESC"
                    " LIMIT 1",
                    (since,),
                ).fetchone()[0]
            toolrt.connect("local", data_dir=data, sandbox="inprocess").close()  # migrates an older store
        else:
            busiest = seed(data / "toolrt.sqlite", args.tools, args.executions)
        _plans(data / "toolrt.sqlite")
        import uvicorn

        from toolrt.adapters.mcp.operator_routes import dashboard_app

        with toolrt.connect("local", data_dir=data, sandbox="inprocess") as rt:
            server = uvicorn.Server(
                uvicorn.Config(
                    dashboard_app(rt, "127.0.0.1", operator_tokens=[TOKEN]),
                    host="127.0.0.1",
                    port=0,
                    log_level="warning",
                    timeout_graceful_shutdown=1,
                )  # fmt: skip
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            port = server.servers[0].sockets[0].getsockname()[1]
            raw = sqlite3.connect(data / "toolrt.sqlite")

            def window_count(hours: int) -> Callable[[], object]:
                # What any report of the window must at least do: read its records' figures.
                since = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
                sql = "SELECT status, wall_ms, tool_id FROM executions WHERE created_at >= ?"
                return lambda: raw.execute(sql, (since,)).fetchall()

            baseline_1h = _median_ms(window_count(1), args.rounds)
            baseline_1d = _median_ms(window_count(24), args.rounds)
            fleet = rt.fleet_metrics("1h")
            print(f"  last hour: {fleet.executions} calls, p50 {fleet.p50_ms:.2f} ms, p95 {fleet.p95_ms:.2f} ms")
            figures = [
                ("baseline: SELECT the last hour's rows", lambda: window_count(1)(), baseline_1h),
                ("baseline: SELECT the last day's rows", lambda: window_count(24)(), baseline_1d),
                ("rt.fleet_metrics('1h')", lambda: rt.fleet_metrics("1h"), baseline_1h),
                ("rt.fleet_metrics('1d')", lambda: rt.fleet_metrics("1d"), baseline_1d),
                ("rt.fleet_metrics('7d')", lambda: rt.fleet_metrics("7d"), baseline_1d),
                ("GET /api/fleet?window=1h", lambda: _get(port, "/api/fleet?window=1h"), baseline_1h),
                ("GET /api/fleet?window=1d", lambda: _get(port, "/api/fleet?window=1d"), baseline_1d),
                ("GET /api/tools?window=1h&limit=20", lambda: _get(port, "/api/tools?window=1h&limit=20"), baseline_1h),
                ("GET /api/tools?q=tool_42 (text search)", lambda: _get(port, "/api/tools?q=tool_42"), baseline_1h),
                (f"GET /api/tools/{busiest}", lambda: _get(port, f"/api/tools/{busiest}?window=1h"), baseline_1h),
                ("GET /metrics (5 min window)", lambda: _get(port, "/metrics"), baseline_1h),
                ("GET /dashboard (the page shell)", lambda: _get(port, "/dashboard"), baseline_1h),
            ]
            for label, fn, baseline in figures:
                ms = _median_ms(fn, args.rounds)
                print(f"  {label:<48} {ms:9.1f} ms   x{ms / baseline:8.1f} of its baseline", flush=True)
            if not args.no_browser:
                page = _browser_load(f"http://127.0.0.1:{port}/dashboard#token={TOKEN}", args.rounds)
                if page is None:
                    print("  page load in Chromium: skipped (no /usr/bin/chromium and /usr/bin/chromedriver)")
                else:
                    print(f"  page load in headless Chromium, to figures drawn {page:9.1f} ms", flush=True)
            raw.close()
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        if args.dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
