"""The dashboard reads well, in a real browser (Playwright and Debian's chromium) against a real
`tpc serve`: environments whose names differ only at the end stay apart in the charts, the run
table of a running iteration follows it without a reload, the history fits 1400 px, and
durations, costs and counts by category are written for people. Screenshots go to the test's
temp folder, or to `$TPC_SCREENSHOTS`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Server
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_ARGS, EXAMPLE_CONFIG

NAMES = ("Claude Sonnet 4.5 + docs v1", "Claude Sonnet 4.5 + docs v2")
DURATION = re.compile(r"^(\d+ ms|< 1 ms|\d+(\.\d)? s|\d+ min( \d+ s)?|\d+ h( \d+ min)?)$")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    # One run at a time, each a few seconds long: the run table has time to change under the
    # browser's eyes.
    running = Server(tmp_path, args=("--concurrency", "1")).start()
    yield running
    running.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TPC_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_experiment(server: Server) -> str:
    """Two tasks × two versions of one environment, through the REST API."""
    with server.client() as api:
        task_ids = []
        for name in ("Create a customer", "Refund a payment"):
            task = {"name": name, "prompt": f"{name}.", "success": {"final_answer_regex": "^Done"}}
            task_ids.append(api.post("/v1/tasks", json=task).raise_for_status().json()["id"])
        env_ids = []
        for name, skill in zip(NAMES, (0.8, 0.5), strict=True):
            agent = {"kind": "scripted", "skill": skill, "step_latency_s": 0.3}
            created = api.post("/v1/environments", json={"name": name, "agent": agent})
            env_ids.append(created.raise_for_status().json()["id"])
        experiment = {
            "name": "Docs v1 against v2",
            "task_ids": task_ids,
            "env_ids": env_ids,
            "repeats": 1,
            "signal_config": EXAMPLE_CONFIG.read_text(),
        }
        exp_id: str = api.post("/v1/experiments", json=experiment).raise_for_status().json()["id"]
        return exp_id


def column(page: Any, table: str, header: str) -> list[str]:
    """The texts of one column of a table, found by its header."""
    headers = [h.strip() for h in page.locator(f"{table} thead th").all_inner_texts()]
    index = headers.index(header) + 1
    cells: list[str] = page.locator(f"{table} tbody td:nth-child({index})").all_inner_texts()
    return [cell.strip() for cell in cells]


def test_the_dashboard_reads_well(server: Server, shots: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    exp_id = create_experiment(server)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(server.url + "/login")
        page.fill("#token", server.token)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Experiments")

        # A running iteration: its run table changes status without a reload (a reload would
        # drop the mark set on the window).
        with server.client() as api:
            api.post(f"/v1/experiments/{exp_id}/iterations").raise_for_status()
        page.goto(f"{server.url}/experiments/{exp_id}/iterations/1")
        page.evaluate("window.notReloaded = true")
        pills = "#runs-table tbody .pill"
        first = page.locator(pills).all_inner_texts()
        assert len(first) == 4 and {"queued", "running"} & set(first), first
        page.wait_for_function(
            """([selector, first]) => window.notReloaded && JSON.stringify(
                [...document.querySelectorAll(selector)].map(p => p.textContent)
            ) !== JSON.stringify(first)""",
            arg=[pills, first],
            timeout=60_000,
        )
        page.screenshot(path=str(shots / "dashboard-live-runs.png"))
        # Once it completes the page reloads with the results.
        expect(page.locator("#score")).to_be_visible(timeout=60_000)

        # Both versions written whole in the environment chart, and in its rows' tooltips.
        chart = page.locator(".score-grid svg.chart").first
        rows = chart.locator("g.row")
        expect(rows).to_have_count(2)
        written = [" ".join(row.locator("text.label").all_text_contents()) for row in rows.all()]
        assert sorted(written) == sorted(NAMES), written
        tooltips = [row.locator("title").first.text_content() or "" for row in rows.all()]
        assert sorted(t.split(":")[0] for t in tooltips) == sorted(NAMES), tooltips
        for name in NAMES:  # whole in the heatmap's header too
            expect(page.locator("#heatmap thead th", has_text=name)).to_have_count(1)

        # Durations and costs in their unit; "$0" (free) rather than a bare 0.
        table = ".score-grid table"
        assert all(DURATION.match(c) for c in column(page, table, "Median duration"))
        assert column(page, table, "Mean cost") == ["$0", "$0"]
        assert all(DURATION.match(c) for c in column(page, "#runs-table", "Duration"))
        caption = page.locator("#aggregates .chart-caption").first
        expect(caption).to_contain_text(re.compile(r"\d runs?, median \d+(\.\d)? (ms|s), p90 "))
        page.locator(".score-grid").screenshot(path=str(shots / "dashboard-long-names.png"))
        page.screenshot(path=str(shots / "dashboard-reads-well.png"), full_page=True)

        # A run: counts by category as rows with bars, durations in their unit, no raw JSON.
        page.locator("#runs-table tbody a").first.click()
        expect(page).to_have_url(re.compile(r"/runs/run_\w+$"))
        counts = page.locator("#signals tr", has=page.locator("code", has_text="failed-tool-calls"))
        expect(counts.locator(".pairs .pair").first).to_be_visible()
        keys = counts.locator(".pairs .pair .key").all_inner_texts()
        assert keys and set(keys) <= {"true", "false"}, keys
        assert counts.locator(".pairs .fill").count() == len(keys)
        assert "{" not in counts.inner_text()
        duration = page.locator(
            "#signals tr", has=page.locator("code", has_text=re.compile("^duration$"))
        )
        assert DURATION.match(duration.locator("td").nth(1).inner_text().strip())
        stat = page.locator("dl.stats dt", has_text=re.compile("^Duration$"))
        assert DURATION.match(stat.locator("xpath=following-sibling::dd[1]").inner_text())
        page.locator("aside").screenshot(path=str(shots / "dashboard-run-signals.png"))

        # The history at 1400 px: nothing past the page's or its card's right edge.
        page.goto(f"{server.url}/experiments/{exp_id}/history")
        expect(page.locator("#history tbody tr").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400
        wrap = page.locator("#history").locator("xpath=..")
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the history table scrolls"
        expect(page.locator("#history")).to_contain_text("sha256:")
        page.screenshot(path=str(shots / "dashboard-history-1400.png"))
        browser.close()
    assert not problems, f"browser console errors: {problems}"
