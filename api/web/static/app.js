// tpc sim dashboard: live config validation, iteration progress, live run pages, evidence
// highlighting.
// Plain DOM, no dependencies; every page works without it except the live parts.
"use strict";

(function () {
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- live validation of a signal config --------------------------------------------------
  function showReport(box, report) {
    box.replaceChildren();
    if (report.error) {
      box.append(el("div", "problem", report.error));
      return;
    }
    if (report.valid) {
      const hash = report.config_hash ? " (" + report.config_hash.slice(0, 19) + "…)" : "";
      box.append(el("div", "valid", "✓ Valid signal config" + hash));
    }
    for (const problem of report.errors || []) {
      const text = problem.loc ? problem.loc + ": " + problem.message : problem.message;
      box.append(el("div", "problem", "✗ " + text));
    }
    for (const problem of report.warnings || []) {
      const text = problem.loc ? problem.loc + ": " + problem.message : problem.message;
      box.append(el("div", "warning", "⚠ " + text));
    }
  }

  function setUpValidation(area) {
    const box = document.getElementById(area.getAttribute("aria-describedby"));
    let timer = null;
    let latest = 0;
    async function check() {
      const ticket = ++latest;
      if (!area.value.trim()) {
        box.replaceChildren(el("span", "muted", "No signal config (optional)."));
        return;
      }
      try {
        const response = await fetch(area.dataset.validate, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ signal_config: area.value }),
        });
        const report = response.ok
          ? await response.json()
          : { error: response.status === 401 ? "Signed out: sign in again." : "Could not validate." };
        if (ticket === latest) showReport(box, report);
      } catch (_) {
        if (ticket === latest) showReport(box, { error: "Could not reach the server." });
      }
    }
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 250);
    });
    check();
  }

  function setUpFileLoad(input) {
    input.addEventListener("change", async function () {
      const file = input.files && input.files[0];
      const area = document.getElementById(input.dataset.loadInto);
      if (!file || !area) return;
      area.value = await file.text();
      area.dispatchEvent(new Event("input"));
    });
  }

  // -- iteration progress -------------------------------------------------------------------
  // The run table under the card: when the counts change, the page is fetched again and its
  // table and filters swapped in, so rows change status without a reload (the same markup the
  // server renders, no second copy of it here).
  async function refreshRuns() {
    const response = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const selector of ["#runs-table tbody", ".filters", "#runs-table + .pager"]) {
      const now = document.querySelector(selector);
      const next = fresh.querySelector(selector);
      if (now && next) now.replaceWith(document.importNode(next, true));
    }
  }

  function setUpProgress(card) {
    const url = card.dataset.progressUrl;
    let seen = "";
    async function poll() {
      try {
        const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) return setTimeout(poll, 3000);
        const status = await response.json();
        const runs = status.runs;
        const done = runs.total - runs.queued - runs.running;
        card.querySelector('[data-field="done"]').textContent = done;
        card.querySelector('[data-field="total"]').textContent = runs.total;
        const pill = card.querySelector('[data-field="status"]');
        pill.textContent = status.status;
        pill.className = "pill " + status.status;
        for (const node of card.querySelectorAll("[data-count]")) {
          node.textContent = runs[node.dataset.count];
        }
        for (const node of card.querySelectorAll("[data-seg]")) {
          const share = runs.total ? (100 * runs[node.dataset.seg]) / runs.total : 0;
          node.style.width = share + "%";
        }
        if (status.status !== "running") {
          window.location.reload();
          return;
        }
        const counts = JSON.stringify(runs);
        if (counts !== seen) {
          seen = counts;
          await refreshRuns();
        }
      } catch (_) {
        // The server may be restarting: keep trying, a little slower.
        return setTimeout(poll, 3000);
      }
      setTimeout(poll, 1000);
    }
    setTimeout(poll, 1000);
  }

  // -- evidence: jump to the transcript event a signal value came from --------------------
  function markSnippet(event, snippet) {
    for (const old of event.querySelectorAll("mark")) old.replaceWith(old.textContent);
    event.normalize();
    const needle = snippet.trim();
    if (!needle) return false;
    const walker = document.createTreeWalker(event, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      if (node.parentElement.closest(".snippet-box")) continue;
      const at = node.data.indexOf(needle);
      if (at >= 0) {
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + needle.length);
        range.surroundContents(document.createElement("mark"));
        return true;
      }
    }
    return false;
  }

  function showEvidence(button) {
    const event = document.getElementById("event-" + button.dataset.event);
    if (!event) return;
    for (const other of document.querySelectorAll(".event.highlight")) {
      other.classList.remove("highlight");
      other.querySelector(".snippet-box").hidden = true;
    }
    for (const other of document.querySelectorAll(".evidence.active")) {
      other.classList.remove("active");
    }
    button.classList.add("active");
    event.classList.add("highlight");
    const snippet = button.dataset.snippet || "";
    const found = markSnippet(event, snippet);
    const box = event.querySelector(".snippet-box");
    if (!found && snippet) {
      box.textContent = "Evidence: " + snippet;
      box.hidden = false;
    }
    for (const details of event.querySelectorAll("details")) {
      if (details.querySelector("mark")) details.open = true;
    }
    event.scrollIntoView({ behavior: "smooth", block: "center" });
    event.focus({ preventScroll: true });
  }

  // Sizes and colours the server computed: set through the DOM, since the
  // Content-Security-Policy refuses inline style attributes.
  function applyComputedStyles() {
    for (const node of document.querySelectorAll("[data-width]")) {
      node.style.width = node.dataset.width + "%";
    }
    for (const node of document.querySelectorAll("[data-heat]")) {
      node.style.background = node.dataset.heat;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyComputedStyles();
    for (const area of document.querySelectorAll("textarea[data-validate]")) setUpValidation(area);
    for (const input of document.querySelectorAll("input[data-load-into]")) setUpFileLoad(input);
    const progress = document.querySelector("[data-progress-url]");
    if (progress) setUpProgress(progress);
    // A running run's page: reload to show the messages recorded since.
    const live = document.querySelector("[data-live-refresh]");
    if (live) setTimeout(() => window.location.reload(), 1000 * Number(live.dataset.liveRefresh));
    for (const select of document.querySelectorAll("select[data-autosubmit]")) {
      select.addEventListener("change", function () {
        select.form.submit();
      });
    }
    document.addEventListener("click", function (click) {
      const button = click.target.closest(".evidence[data-event]");
      if (button) showEvidence(button);
    });
    const hash = window.location.hash.match(/^#event-(\d+)$/);
    if (hash) {
      const target = document.getElementById("event-" + hash[1]);
      if (target) target.classList.add("highlight");
    }
  });
})();
