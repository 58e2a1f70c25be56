"""The dashboard in a real headless browser (the system's Chromium and chromedriver, nothing downloaded):
no console errors, the figures of rt.fleet_metrics(), live updates without a reload, screenshots."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.e2e.operator_server import AGENT_TOKENS, OPERATOR, OperatorServer, scripted_runtime

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 20

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OperatorServer, dict[str, str]]]:
    rt, ids = scripted_runtime()
    with structlog.testing.capture_logs(), OperatorServer(rt, tokens=AGENT_TOKENS) as server:
        yield server, ids
    rt.close()


@pytest.fixture(scope="module")
def browser(served: tuple[OperatorServer, dict[str, str]]) -> Iterator[Any]:
    # Depends on the server so that it closes first: its event stream ends before the server does.
    # Selenium Manager would look for (and download) a driver: the system's is named explicitly,
    # and SE_OFFLINE keeps Selenium from reaching the network at all.
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="toolrt-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="toolrt-dashboard-shots-"))
    return folder


def _wait(driver: Any, condition: Any) -> Any:
    """Until ``condition(driver)`` holds; an element the page redrew while it was read (live
    updates replace rows) only means: look again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(lambda d: condition(d))


def _value(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).get_attribute("data-value"))


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _open(driver: Any, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-loaded"))


def test_the_overview_loads_cleanly_and_shows_the_fleet_figures(
    browser: Any, served: tuple[OperatorServer, dict[str, str]], shots: Path
) -> None:
    """After a scripted workload the overview's numbers are rt.fleet_metrics()'s, with no console error."""
    server, _ = served
    _open(browser, f"{server.base}/dashboard#token={OPERATOR}")
    assert "token" not in browser.current_url  # the fragment is read and dropped from the address
    fleet = server.rt.fleet_metrics("1h")
    assert _value(browser, "kpi-tools") == str(fleet.tools)
    assert _value(browser, "kpi-agents") == str(fleet.agents)
    assert _value(browser, "kpi-executions") == str(fleet.executions)
    assert float(_value(browser, "kpi-failure")) == pytest.approx(fleet.failure_rate)
    assert float(_value(browser, "kpi-p50")) == pytest.approx(fleet.p50_ms)
    assert float(_value(browser, "kpi-p95")) == pytest.approx(fleet.p95_ms)
    assert _value(browser, "kpi-registrations") == str(fleet.registrations)
    assert float(_value(browser, "kpi-cache")) == pytest.approx(fleet.cache_hit_ratio)
    text = browser.find_element("id", "kpi-failure").text
    assert fleet.failure_rate is not None
    assert f"{fleet.failure_rate * 100:.1f}%" in text
    bars = browser.find_elements("css selector", "#chart-rate g[data-executions]")
    assert sum(int(b.get_attribute("data-executions")) for b in bars) == fleet.executions
    names = [a.text for a in browser.find_elements("css selector", "#tools-table a[data-tool-id]")]
    assert names[0] == "echo" and {"echo", "boom", "ledger"} <= set(names)
    path = shots / "overview.png"
    browser.save_screenshot(str(path))
    print(f"overview screenshot: {path}")
    assert _errors(browser) == []


def test_a_new_execution_appears_without_a_reload(browser: Any, served: tuple[OperatorServer, dict[str, str]]) -> None:
    """A call made after the page loaded shows in its figures through the event stream; the page is not reloaded."""
    server, ids = served
    _open(browser, f"{server.base}/dashboard#token={OPERATOR}")
    _wait(browser, lambda d: d.find_element("id", "live").text == "live")
    before = int(_value(browser, "kpi-executions"))
    browser.execute_script("window.__sameDocument = 'yes';")
    server.rt.execute_tool("alice", ids["echo"], {"secret": "live"})
    _wait(browser, lambda d: _value(d, "kpi-executions") == str(before + 1))
    assert browser.execute_script("return window.__sameDocument;") == "yes"
    assert _errors(browser) == []


def test_the_tool_page_shows_versions_and_recent_calls_live(
    browser: Any, served: tuple[OperatorServer, dict[str, str]], shots: Path
) -> None:
    """A tool page lists its versions and recent calls (status, duration, stdout), and a new call appears on it."""
    server, ids = served
    _open(browser, f"{server.base}/dashboard#token={OPERATOR}")
    _wait(
        browser,
        lambda d: d.find_element("css selector", f"#tools-table a[data-tool-id='{ids['boom']}']").click() or True,
    )
    _wait(browser, lambda d: d.find_elements("id", "recent-table") and d.find_element("id", "tool-name").text == "boom")
    rows = browser.find_elements("css selector", "#recent-table tr[data-execution-id]")
    assert len(rows) == 2 and "failed" in rows[0].text and "KeyError" in rows[0].text
    assert "about to fail" in rows[0].text
    browser.get(f"{server.base}/dashboard#/tools/{ids['echo']}")
    _wait(browser, lambda d: d.find_elements("id", "tool-name") and d.find_element("id", "tool-name").text == "echo")
    versions = browser.find_elements("css selector", "#versions-table tr[data-version]")
    assert [v.get_attribute("data-version") for v in versions] == ["2", "1"]
    assert {
        p.get_attribute("data-version") for p in browser.find_elements("css selector", "#chart-versions polyline")
    } == {
        "1",
        "2",
    }
    execution = server.rt.execute_tool("mallory", ids["echo"], {"secret": "appears-live"})
    _wait(browser, lambda d: d.find_elements("css selector", f"tr[data-execution-id='{execution.execution_id}']"))
    newest = browser.find_elements("css selector", "#recent-table tr[data-execution-id]")[0]
    assert newest.get_attribute("data-execution-id") == execution.execution_id
    assert "echo appears-live" in newest.text and "succeeded" in newest.text
    path = shots / "tool.png"
    browser.set_window_size(1400, 1300)
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1000)
    print(f"tool page screenshot: {path}")
    assert _errors(browser) == []


def test_the_page_without_a_token_shows_why_and_reads_nothing(
    browser: Any, served: tuple[OperatorServer, dict[str, str]]
) -> None:
    """Opened without a token, the page says how to pass one and shows no tool or call."""
    server, _ = served
    browser.execute_script("sessionStorage.clear();")
    browser.get("about:blank")
    browser.get(f"{server.base}/dashboard#/")
    box = _wait(browser, lambda d: d.find_elements("id", "error"))[0]
    assert "#token=" in box.text
    assert "ledger" not in browser.page_source and "echo" not in browser.find_element("id", "app").text
    browser.get_log("browser")  # the refused requests are logged by the browser itself: expected here
    # Pasting the token into the address afterwards (no reload: only the fragment changes) is enough.
    browser.get(f"{server.base}/dashboard#token={OPERATOR}")
    _wait(browser, lambda d: d.find_elements("id", "kpi-tools"))
    _wait(browser, lambda d: d.find_element("id", "live").text == "live")
    assert "token" not in browser.current_url


def test_the_tool_search_narrows_the_table(browser: Any, served: tuple[OperatorServer, dict[str, str]]) -> None:
    """Typing a name and Enter in the search box lists the matching tools only (every agent's: an operator view)."""
    from selenium.webdriver.common.keys import Keys

    server, ids = served
    _open(browser, f"{server.base}/dashboard#token={OPERATOR}")
    browser.find_element("id", "tool-search").send_keys("ledger", Keys.ENTER)
    _wait(
        browser,
        lambda d: (
            [a.get_attribute("data-tool-id") for a in d.find_elements("css selector", "#tools-table a[data-tool-id]")]
            == [ids["ledger"]]
        ),
    )
    assert browser.find_element("id", "tool-search").get_attribute("value") == "ledger"
    assert _errors(browser) == []


# Markup in everything an agent controls that the dashboard shows: the description, the output, the
# error's type (a class may be named anything) and its message.
HOSTILE_MARKUP = '<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script>'
HOSTILE_CODE = (
    f"Evil = type({HOSTILE_MARKUP!r}, (Exception,), {{}})\n\n\n"
    "def handler(secret: str) -> str:\n"
    f"    print({HOSTILE_MARKUP!r})\n"
    f"    raise Evil({HOSTILE_MARKUP!r})\n"
)


def test_an_agents_markup_is_shown_as_text_never_as_markup(
    browser: Any, served: tuple[OperatorServer, dict[str, str]]
) -> None:
    """Mallory's tool puts markup in its description, output, error type and message: the overview and
    the tool page show it as text, and no element, attribute or script of it reaches the page."""
    from selenium.common.exceptions import NoAlertPresentException

    server, _ = served
    hostile = server.rt.register_tool(
        "mallory",
        {
            "name": "hostile_markup",
            "description": HOSTILE_MARKUP + '<a href="javascript:document.body.dataset.pwned=3">x</a>',
            "language": "python",
            "code": HOSTILE_CODE,
            "input_schema": {"type": "object", "properties": {"secret": {"type": "string"}}, "required": ["secret"]},
        },
    )
    failed = server.rt.execute_tool("mallory", hostile.tool_id, {"secret": "x"})
    assert failed.error is not None and failed.error.type.startswith("<img")  # the markup reached the record
    injected = "#app [onerror], #app script, #app img, #app a[href^='javascript']"
    browser.get("about:blank")  # a fresh page: no search typed by an earlier test
    _open(browser, f"{server.base}/dashboard#token={OPERATOR}")
    browser.get(f"{server.base}/dashboard#/tools/{hostile.tool_id}")
    # Read in one script: the page re-renders as calls come in.
    recent = "var t = document.getElementById('recent-table'); return t ? t.textContent : '';"
    _wait(browser, lambda d: "<img src=x" in d.execute_script(recent))  # the output and error type, as text
    assert browser.find_elements("css selector", injected) == []
    assert browser.execute_script("return document.body.dataset.pwned === undefined;")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    browser.get(f"{server.base}/dashboard#/")
    _wait(browser, lambda d: d.find_elements("css selector", f"a[data-tool-id='{hostile.tool_id}']"))
    assert browser.find_elements("css selector", injected) == []
    assert browser.execute_script("return document.body.dataset.pwned === undefined;")
