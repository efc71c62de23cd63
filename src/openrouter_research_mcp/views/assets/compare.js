/* The comparison view: one column per model (answer or error, tokens, cost, latency, with bars against the
   others), and the judge's verdict with its agreement level and each disagreement highlighted. */
(() => {
  const { h, usd, num, secs, fill } = App;

  function bar(value, max, label) {
    const fillBar = h("span");
    fillBar.style.width = (max > 0 && value ? Math.max(2, (100 * value) / max) : 0) + "%";
    return h("div", { class: "bar", role: "img", "aria-label": label }, fillBar);
  }

  function column(entry, data, maxCost, maxLatency) {
    const best = data.judge && data.judge.ok && data.judge.best_model === entry.model;
    const cost = entry.usage ? entry.usage.cost_usd : null;
    const tokens = entry.usage ? (entry.usage.prompt_tokens || 0) + (entry.usage.completion_tokens || 0) : 0;
    return h("article", { class: "column" + (best ? " best" : "") + (entry.ok ? "" : " failed"), "data-model": entry.model },
      h("h2", {}, entry.model),
      h("div", { class: "row small" },
        best ? h("span", { class: "badge ok" }, "judge's pick") : null,
        entry.ok ? null : h("span", { class: "badge bad" }, "failed"),
        entry.answered_by && entry.answered_by !== entry.model
          ? h("span", { class: "badge warn" }, "answered by " + entry.answered_by) : null),
      h("div", { class: "figures" },
        h("span", {}, "cost"), bar(cost, maxCost, "cost " + usd(cost)), h("span", { class: "num" }, usd(cost)),
        h("span", {}, "latency"), bar(entry.latency_s, maxLatency, "latency " + secs(entry.latency_s)),
        h("span", { class: "num" }, secs(entry.latency_s)),
        h("span", {}, "tokens"), h("span"), h("span", { class: "num" }, num(tokens))),
      entry.ok
        ? h("div", { class: "answer" }, Markdown.render(entry.answer || ""))
        : h("p", { class: "error" }, entry.error || "No answer."));
  }

  function verdict(judge) {
    const section = document.getElementById("verdict");
    section.hidden = !judge;
    if (!judge) return;
    if (!judge.ok) {
      fill("verdict", h("div", { class: "panel" }, h("strong", {}, "Judge ", judge.model, ": "),
        h("span", { class: "error" }, judge.error || "no verdict")));
      return;
    }
    const level = judge.agreement || "unknown";
    fill("verdict", h("div", { class: "panel" },
      h("div", { class: "row" }, h("strong", {}, "Verdict by ", judge.model),
        h("span", { class: "badge " + ({ high: "ok", medium: "warn", low: "bad" }[level] || ""), "data-agreement": level },
          level + " agreement"),
        judge.best_model ? h("span", {}, "best: ", h("strong", {}, judge.best_model)) : null),
      judge.summary ? h("p", {}, judge.summary) : null,
      (judge.disagreements || []).length
        ? [h("h3", {}, "Where they disagree"), h("ul", { class: "disagree" },
            judge.disagreements.map((d) => h("li", {}, d)))]
        : null,
      judge.recommended_answer
        ? h("details", {}, h("summary", {}, "Recommended answer"), Markdown.render(judge.recommended_answer))
        : null));
  }

  function show(data) {
    if (!data || !data.entries) return;
    const entries = data.entries;
    const maxCost = Math.max(0, ...entries.map((e) => (e.usage && e.usage.cost_usd) || 0));
    const maxLatency = Math.max(0, ...entries.map((e) => e.latency_s || 0));
    fill("prompt", data.prompt);
    const t = data.totals || {};
    fill("totals", num(entries.length), " models · ", num(t.succeeded), " answered, ", num(t.failed), " failed · ",
      usd(t.cost_usd), " in all (cap ", usd(data.max_cost_usd), ") · ", secs(t.wall_time_s), " wall time",
      (data.warnings || []).map((w) => h("span", { class: "muted" }, " · " + w)));
    verdict(data.judge);
    fill("columns", entries.map((e) => column(e, data, maxCost, maxLatency)));
  }

  App.start("compare", show, "columns");
})();
