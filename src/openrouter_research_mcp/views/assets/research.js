/* The research view: the report as a document whose every [n] opens its source card (title, link, the quoted
   passage and how it was checked); the sources; the plan, spend and time; live progress for a run in progress. */
(() => {
  const { h, usd, num, secs, fill, domain } = App;
  let run = null;
  let opener = null;
  let polling = null;
  const drawn = {};  // what each section was last drawn from: a refresh redraws only what changed

  // What was proven about a citation: the support verdict (and who judged it), then whether the quote is on the page.
  const VERDICT = {
    supported: ["ok", "supported"],
    partly: ["warn", "partly supported"],
    cannot_tell: ["warn", "unclear"],
    unsupported: ["bad", "unsupported: removed"],
    not_checked: ["warn", "claim not checked"],
  };
  const BY = { model: "judged by the verifier model", code: "decided in code", none: "" };
  const PROVENANCE = {
    found: "quote found on the page",
    variant: "quote found on the page (spelling differs)",
    not_found: "quote not found on the page",
    too_short: "quote too short to locate",
    no_quote: "no quote given",
    elsewhere: "quote is from another source",
    unknown_source: "not a source of this report: removed",
    unreadable: "the citation could not be read",
  };

  function source(n) {
    return (run.sources || []).find((s) => s.n === n) || null;
  }

  function openCard(n, from) {
    const s = source(n);
    const checks = (run.citations || []).filter((c) => c.n === n);
    opener = from || null;
    const card = fill("card",
      h("div", { class: "row" },
        h("strong", { id: "card-title" }, "[" + n + "] ", s ? s.title || domain(s.url) : "Unknown source"),
        h("button", { class: "close", "aria-label": "Close source card", onclick: closeCard }, "Close")),
      s && /^https?:\/\//i.test(s.url) ? h("p", { class: "url" }, h("a", {
        href: s.url,
        rel: "noopener noreferrer",
        onclick: (event) => { event.preventDefault(); App.openLink(s.url); },
      }, s.url)) : null,
      checks.length
        ? checks.map((c) => {
            const [tone, verdict] = c.provenance === "unknown_source" ? ["bad", "removed"] : VERDICT[c.support] || ["warn", c.support];
            return h("div", { class: "check" },
              h("blockquote", {}, c.quote ? "\u201c" + c.quote + "\u201d" : "(no quote given)"),
              h("p", { class: "small" },
                h("span", { class: "badge " + tone }, verdict),
                BY[c.checked_by] ? " " + BY[c.checked_by] : "",
                " \u00b7 ",
                h("span", { class: "badge " + (c.quote_found ? "ok" : "warn") }, PROVENANCE[c.provenance] || c.provenance),
                c.elsewhere ? " (source " + c.elsewhere + ")" : ""),
              c.reason ? h("p", { class: "small reason" }, "Why: ", c.reason) : null,
              c.claim ? h("p", { class: "muted small" }, "Backs: ", c.claim) : null);
          })
        : h("p", { class: "muted small" }, "No quoted citation of this source in the report."),
      s && s.snippet ? h("p", { class: "muted small" }, "From the page: ", s.snippet) : null,
      s && s.found_by ? h("p", { class: "muted small" }, "Found while researching: ", s.found_by) : null);
    card.hidden = false;
    place(card, from);
    card.focus({ preventScroll: true });
  }
  function place(card, from) {
    // Beside what opened it: hosts size the frame to the content, so "fixed to the viewport" is the page's end.
    const anchor = from ? from.getBoundingClientRect() : { left: 16, bottom: 16 };
    const width = card.offsetWidth;
    const left = Math.max(8, Math.min(anchor.left + window.scrollX, document.documentElement.clientWidth - width - 8));
    card.style.left = left + "px";
    card.style.top = anchor.bottom + window.scrollY + 6 + "px";
  }
  function closeCard() {
    const card = document.getElementById("card");
    if (card.hidden) return;
    card.hidden = true;
    if (opener) opener.focus();
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeCard();
  });

  function cite(n, mark) {
    const s = source(n);
    const what = mark === "?" ? " (partly supported, unclear or not checked)" : mark === "\u2020" ? " (quote found; claim not checked)" : "";
    const label = "Source " + n + what + (s ? ": " + (s.title || domain(s.url)) : "");
    const button = h("button", {
      class: "cite" + (mark === "?" ? " doubtful" : mark ? " unchecked" : ""),
      "data-n": n,
      "aria-label": label,
      title: label,
      onclick: () => openCard(n, button),
    }, n + (mark || ""));
    return button;
  }

  function withoutSourceList(report) {
    // The sources are in the side panel, each with its card; the report's own list would repeat them.
    return report.replace(/\n#{1,3}\s+Sources\s*\n[\s\S]*?(?=\n#{1,3}\s|$)/, "\n");
  }

  function renderMeta() {
    const elapsed = run.timings && (run.timings.elapsed_s || run.timings.total_s);
    fill("title", run.question || "Research report");
    fill("meta",
      App.badge(run.status),
      " ", usd(run.cost_usd), " of ", usd(run.max_cost_usd),
      elapsed ? " · " + secs(elapsed) : "",
      " · ", num(run.searches || 0), " searches · ", num(run.pages_read || 0), " pages read · ",
      num((run.sources || []).length), " sources",
      run.stopped_because && run.stopped_because !== "done" ? " · stopped: " + run.stopped_because : "");
    const v = run.verification || {};
    const parts = [];
    if (v.citations) {
      parts.push(h("strong", {}, num(v.citations) + " citations checked: "),
        h("span", { class: "badge ok" }, num(v.supported) + " supported"), " ",
        v.partly + v.cannot_tell ? h("span", { class: "badge warn" }, num(v.partly + v.cannot_tell) + " partly or unclear") : null, " ",
        v.not_checked ? h("span", { class: "badge warn" }, num(v.not_checked) + " not checked") : null, " ",
        v.removed ? h("span", { class: "badge bad" }, num(v.removed) + " removed") : null, " ",
        h("span", { class: "muted" }, num(v.quotes_found) + " quotes found on their pages"),
        v.citation_accuracy != null ? h("span", { class: "muted" }, " \u00b7 citation accuracy " + Math.round(v.citation_accuracy * 100) + " %") : null,
        v.checked_by_model ? null : h("span", { class: "muted" }, " \u00b7 no claim was checked by a model"));
    } else if (v.sources) {
      parts.push(h("span", { class: "badge warn" }, "the writer cited none of the " + num(v.sources) + " sources"));
    }
    fill("verification", parts);
  }

  function renderSources() {
    fill("sources", (run.sources || []).map((s) => {
      const item = h("li", { value: s.n });
      const button = h("button", { class: "link", onclick: () => openCard(s.n, button) }, s.title || domain(s.url));
      item.append(button, " ", h("span", { class: "muted" }, domain(s.url)));
      return item;
    }));
    fill("sources-title", "Sources (" + (run.sources || []).length + ")");
  }

  function renderPlan() {
    const p = run.plan;
    const rows = (run.usage || []).map((u) => h("tr", {},
      h("td", {}, u.stage), h("td", {}, u.model), h("td", { class: "num" }, num(u.calls)),
      h("td", { class: "num" }, num((u.prompt_tokens || 0) + (u.completion_tokens || 0))),
      h("td", { class: "num" }, usd(u.cost_usd))));
    fill("plan",
      p ? h("p", {}, "Breadth ", p.breadth, ", depth ", p.depth, ", ", p.searches, " searches and ", p.fetches,
        " pages per researcher; ", p.report_length, " report", p.verify_citations ? ", up to " + num(p.verify_citations) + " cited claims judged by a verifier model" : ", claims not judged by a model",
        ". Worst case ", usd(p.worst_case_usd), ".",
        (p.scaled_because || []).length ? " Scaled down for " + p.scaled_because.join(" and ") + "." : "") : null,
      rows.length ? h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "stage"), h("th", {}, "model"), h("th", { class: "num" }, "calls"),
          h("th", { class: "num" }, "tokens"), h("th", { class: "num" }, "cost"))),
        h("tbody", {}, rows))) : null,
      (run.warnings || []).map((w) => h("p", { class: "muted" }, w)),
      (run.open_questions || []).length
        ? [h("h3", {}, "Open questions"), h("ul", {}, run.open_questions.map((q) => h("li", {}, q)))] : null);
  }

  // The live line keeps its nodes: a refresh changes its text, and the Stop button keeps the keyboard focus.
  const progressText = h("span");
  const liveNote = h("span", { class: "error" });
  const stopButton = h("button", { type: "button", id: "stop", onclick: stop }, "Stop");
  function stop() {
    stopButton.disabled = true;
    App.callTool("cancel_research", { research_id: run.research_id })
      .then((r) => show(r.structuredContent))
      .catch((e) => { liveNote.textContent = e.message; stopButton.disabled = false; });
  }
  function renderLive() {
    const live = document.getElementById("live");
    const running = run.status === "running";
    live.hidden = !running && !run.error;
    if (run.error) {
      fill("live", h("span", { class: "error" }, run.error));
      return;
    }
    if (!running) return;
    progressText.textContent = run.progress + " · spent " + usd(run.cost_usd) + " of " + usd(run.max_cost_usd);
    if (!live.contains(progressText)) {
      fill("live", h("div", { class: "row" }, h("strong", {}, "In progress: "), progressText,
        App.canCallTools() ? stopButton : null, liveNote));
    }
  }

  function poll() {
    if (polling || !App.canCallTools()) return;
    polling = App.poll(async () => {
      const result = await App.callTool("get_research", { research_id: run.research_id });
      liveNote.textContent = "";
      show(result.structuredContent);
      const more = run.status === "running";
      if (!more) polling = null;
      return more;
    }, 3000, (error) => {
      polling = null;
      liveNote.textContent = " Stopped refreshing: " + error.message;
    });
  }

  function changed(section, value) {
    const key = JSON.stringify(value);
    if (drawn[section] === key) return false;
    drawn[section] = key;
    return true;
  }

  function show(data) {
    if (!data || !data.research_id) return;
    run = data;
    App.keepFocus(() => {
      if (changed("meta", [run.status, run.cost_usd, run.searches, run.pages_read, (run.sources || []).length,
        run.timings, run.verification, run.question])) renderMeta();
      renderLive();
      if (changed("sources", run.sources)) renderSources();
      if (changed("plan", [run.plan, run.usage, run.warnings, run.open_questions])) renderPlan();
      if (changed("report", [run.report, run.citations, run.status === "running"])) {
        const report = document.getElementById("report");
        if (run.report) report.replaceChildren(Markdown.render(withoutSourceList(run.report), { cite }));
        else report.replaceChildren(h("p", { class: "empty" }, run.status === "running"
          ? "The report appears here when the run is written." : "This run has no report."));
      }
    });
    if (run.status === "running") poll();
  }

  App.start("research", show, "report",
    (reason) => fill("report", h("p", { class: "muted" }, "The research call was cancelled. ", reason)));
})();
