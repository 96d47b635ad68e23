"""The dashboard in a real browser: Playwright drives Debian's chromium against a real `tpc serve`.

Sign in, create an experiment whose signal config has an error (the located message shows live
and after submit), fix it, trigger, watch it complete, read the results, compare iterations,
open a run and click a signal's evidence. Screenshots go to the test's temp folder, or to
`$TPC_SCREENSHOTS` (e.g. `docs/img`) to refresh the ones in the docs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE_CONFIG = Path(__file__).parents[2] / "examples" / "signals.yaml"
BROKEN_MESSAGE = "signals[0].fold: required for message-scoped signals"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TPC_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def seed(server: Server) -> None:
    """Two tasks and two scripted environments, through the REST API as the CLI would."""
    with server.client() as api:
        for name in ("Create a customer", "Refund a payment"):
            task = {"name": name, "prompt": f"{name}.", "success": {"final_answer_regex": "^Done"}}
            api.post("/v1/tasks", json=task).raise_for_status()
        for name, skill in (("Scripted careful", 0.75), ("Scripted hasty", 0.45)):
            agent = {"kind": "scripted", "skill": skill, "step_latency_s": 0.05}
            api.post("/v1/environments", json={"name": name, "agent": agent}).raise_for_status()


def test_dashboard_end_to_end(server: Server, shots: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    seed(server)
    config = EXAMPLE_CONFIG.read_text()
    broken = config.replace("fold:\n      fn: count\n", "", 1)
    assert broken != config

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))

        # Every page needs the session: the first visit lands on the sign-in form.
        page.goto(server.url + "/")
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
        page.fill("#token", "not-the-token")
        page.click("button[type=submit]")
        expect(page.locator(".errors")).to_contain_text("does not belong to any product")
        page.screenshot(path=str(shots / "dashboard-login.png"))
        page.fill("#token", server.token)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Experiments")
        # The cookie is a session id, never the API token.
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "tpc_session"]
        assert cookie["httpOnly"] and cookie["value"] and server.token not in cookie["value"]

        # Create with a broken config: the located error shows live, then after submitting.
        page.fill("#name", "Docs v2 launch")
        for box in page.locator("input[type=checkbox]").all():
            box.check()
        page.fill("#repeats", "3")
        page.fill("#signal_config", broken)
        expect(page.locator("#config-validation")).to_contain_text(BROKEN_MESSAGE)
        page.click("#create-form button[type=submit]")
        expect(page.locator("#form-errors")).to_contain_text(BROKEN_MESSAGE)
        expect(page.locator("#name")).to_have_value("Docs v2 launch")
        expect(page.locator("#signal_config")).to_have_value(broken)
        expect(page.locator("input[name=task_ids]:checked")).to_have_count(2)
        page.screenshot(path=str(shots / "dashboard-invalid-config.png"), full_page=True)

        # Fix it: the live check turns valid and the experiment is created.
        page.fill("#signal_config", config)
        expect(page.locator("#config-validation .valid")).to_be_visible()
        page.click("#create-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"/experiments/exp_\w+$"))
        experiment_url = page.url
        expect(page.locator("h1")).to_have_text("Docs v2 launch")
        expect(page.locator("#config-validation .valid")).to_be_visible()
        page.screenshot(path=str(shots / "dashboard-experiment.png"), full_page=True)

        # Trigger: the progress card updates until the page reloads with the results.
        page.click("#trigger")
        expect(page).to_have_url(re.compile(r"/iterations/1$"))
        expect(page.locator("#progress")).to_be_visible()
        page.screenshot(path=str(shots / "dashboard-progress.png"))
        expect(page.locator("#score")).to_be_visible(timeout=60_000)
        expect(page.locator("#progress [data-field=status]")).to_have_text("completed")

        # A second iteration to compare with.
        page.goto(experiment_url)
        page.click("#trigger")
        expect(page).to_have_url(re.compile(r"/iterations/2$"))
        expect(page.locator("#score")).to_be_visible(timeout=60_000)
        page.select_option("#compare", "1")
        expect(page).to_have_url(re.compile(r"compare=1"))
        expect(page.locator("#comparison")).to_contain_text("Compared with iteration 1")
        # Intervals: error bars over the environment scores, and beside the overall score.
        expect(page.locator("#score-ci")).to_contain_text(re.compile(r"\d+–\d+%"))
        assert page.locator("svg.chart g.error-bar").count() >= 2
        expect(page.locator("td .tag", has_text="baseline")).to_have_count(1)
        # Two iterations of the same agents: some change is within the noise, so greyed, with
        # its interval and the adjusted p-value (or why there is none) as the tooltip.
        greyed = page.locator("#comparison ~ .grid .delta.delta-ns").first
        expect(greyed).to_contain_text(re.compile(r"^· [+−±]\d+% \[|too few runs"))
        assert greyed.get_attribute("title")

        # Results: charts, the heatmap, aggregates, clusters, the runs table.
        assert page.locator("svg.chart").count() >= 5
        expect(page.locator("#heatmap td.cell")).to_have_count(4)
        # Colours and bar widths come from data attributes (the CSP refuses inline styles).
        heat = page.locator("#heatmap td.cell").first.evaluate("c => c.style.background")
        assert heat.startswith(("hsl", "rgb")), heat
        expect(page.locator("#aggregates .aggregate")).to_have_count(11)
        expect(page.locator("#aggregates svg.chart").first).to_be_visible()
        # Rate and avg aggregates carry their intervals as error bars too.
        assert page.locator("#aggregates svg.chart g.error-bar").count() >= 2
        expect(page.locator("#runs-table tbody tr")).to_have_count(12)
        if page.locator(".cluster").count():
            expect(page.locator(".cluster").first).to_contain_text("Fix:")
            expect(page.locator(".cluster .places").first).to_contain_text("Where:")
            # The comparison matches clusters by cause: each row says how it changed.
            expect(page.locator("#cluster-changes tbody tr").first).to_contain_text(
                re.compile(r"new|grown|shrunk|unchanged|resolved")
            )
        page.screenshot(path=str(shots / "dashboard-results.png"), full_page=True)
        results_url = page.url

        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        expect(page.locator("#score")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the results page scrolls sideways at 390 px ({width} px wide)"
        page.screenshot(path=str(shots / "dashboard-results-narrow.png"))
        page.set_viewport_size({"width": 1280, "height": 900})

        # A run: the conversation, and a signal's evidence highlights its event.
        page.goto(results_url)
        page.locator("#runs-table tbody a").first.click()
        expect(page).to_have_url(re.compile(r"/runs/run_\w+$"))
        expect(page.locator("#conversation .event").first).to_be_visible()
        chip = page.locator("#signals .evidence[data-event]").first
        event_index = chip.get_attribute("data-event")
        chip.click()
        event = page.locator(f"#event-{event_index}")
        expect(event).to_have_class(re.compile(r"\bhighlight\b"))
        expect(chip).to_have_class(re.compile(r"\bactive\b"))
        page.screenshot(path=str(shots / "dashboard-run.png"))

        # The audit trail, oldest first.
        page.goto(experiment_url + "/history")
        expect(page.locator("#history tbody tr").first).to_contain_text("Experiment.Created")
        page.screenshot(path=str(shots / "dashboard-history.png"))

        # Signing out (a POST from the header) ends the session: pages redirect, fragments
        # answer 401, and the old session id no longer signs anyone in.
        page.click("header.top button:has-text('Sign out')")
        expect(page).to_have_url(re.compile(r"/login$"))
        page.context.add_cookies([{**cookie}])
        page.goto(results_url)
        expect(page).to_have_url(re.compile(r"/login\?next="))
        browser.close()

    fragment = httpx.get(results_url.split("?")[0] + "/progress")
    assert fragment.status_code == 401
    assert not problems, f"browser console errors: {problems}"


def test_a_revoked_token_ends_its_browser_session(server: Server) -> None:
    """Sign in with a token of a second product: the browser holds only a session id, and
    revoking the token (`tpc token revoke`, in another process) signs the browser out."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    created = server.tpc("--format", "json", "product", "create", "--name", "Second", check=True)
    token = json.loads(created.stdout)["token"]
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.goto(server.url + "/login")
        page.fill("#token", f"  {token['token']} ")  # pasted with spaces around it
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Experiments")
        (cookie,) = page.context.cookies()
        assert cookie["name"] == "tpc_session" and token["token"] not in cookie["value"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        revoked = server.tpc("--format", "json", "token", "revoke", token["id"], check=True)
        assert json.loads(revoked.stdout)["sessions_ended"] == 1
        page.reload()
        expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
        page.fill("#token", token["token"])
        page.click("button[type=submit]")
        expect(page.locator(".errors")).to_contain_text("does not belong to any product")
        browser.close()
    assert not problems, f"browser console errors: {problems}"
