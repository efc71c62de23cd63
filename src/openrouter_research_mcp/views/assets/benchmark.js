/* The benchmark view: the ranking table (sortable by any figure) and a chart of cost against quality with bubble
   size latency (cost against latency when nothing was judged); a run in progress refreshes itself. */
(() => {
  const { h, usd, num, secs, fill } = App;
  let report = null;
  let polling = null;
  let chart = null;
  let picked = null;
  let drawnStats = "";

  const pct = (x) => (x === null || x === undefined ? "n/a" : Math.round(x * 100) + "%");
  const columns = [
    { key: "rank", title: "Rank", num: true, value: (s) => s.rank },
    { key: "model", title: "Model", value: (s) => s.model },
    { key: "success", title: "Success", num: true, first: -1, value: (s) => s.success_rate },
    { key: "p50", title: "Latency p50", num: true, value: (s) => s.latency_p50_s },
    { key: "p95", title: "p95", num: true, value: (s) => s.latency_p95_s },
    { key: "ttft", title: "First token", num: true, value: (s) => s.ttft_p50_s },
    { key: "tps", title: "Tokens/s", num: true, first: -1, value: (s) => s.tokens_per_s },
    { key: "cpc", title: "Cost/call", num: true, value: (s) => s.cost_per_call_usd },
    { key: "cost", title: "Total", num: true, value: (s) => s.cost_usd },
    { key: "quality", title: "Quality", num: true, first: -1, value: (s) => s.quality },
  ];
  const table = Widgets.sortable(document.getElementById("table"), columns, (s) => h("tr",
    { "data-id": s.model, class: s.model === picked ? "picked" : null },
    h("td", { class: "num" }, s.rank || ""),
    h("td", {}, h("strong", {}, s.model)),
    h("td", { class: "num" }, pct(s.success_rate),
      s.calls ? h("span", { class: "muted small" }, " (" + (s.succeeded || 0) + "/" + s.calls + ")") : null),
    h("td", { class: "num" }, secs(s.latency_p50_s)),
    h("td", { class: "num" }, secs(s.latency_p95_s)),
    h("td", { class: "num" }, secs(s.ttft_p50_s)),
    h("td", { class: "num" }, s.tokens_per_s === null || s.tokens_per_s === undefined ? "n/a" : num(Math.round(s.tokens_per_s))),
    h("td", { class: "num" }, usd(s.cost_per_call_usd)),
    h("td", { class: "num" }, usd(s.cost_usd)),
    h("td", { class: "num" }, s.quality === null || s.quality === undefined ? "n/a" : s.quality.toFixed(1))),
    { key: "rank", dir: 1 });

  function pick(id) {
    picked = id;
    for (const row of document.querySelectorAll("#table tbody tr")) row.classList.toggle("picked", row.dataset.id === id);
    if (chart) Widgets.pick(chart, id);
  }

  function drawChart(stats) {
    const judged = stats.some((s) => s.quality !== null && s.quality !== undefined);
    fill("chart-title", judged ? "Cost against quality" : "Cost against latency");
    fill("chart-note", judged ? "Bubble size: latency p50. Up and to the left is better."
      : "No judge scored the answers. Lower left is better.");
    const points = stats.map((s) => judged
      ? { id: s.model, label: s.model, x: s.cost_per_call_usd, y: s.quality, r: s.latency_p50_s }
      : { id: s.model, label: s.model, x: s.cost_per_call_usd, y: s.latency_p50_s });
    chart = Widgets.scatter(points, {
      x: { title: "cost per call", log: true, unit: "$" },
      y: judged ? { title: "quality (1-10)", domain: [0, 10] } : { title: "latency p50 (s)" },
      r: judged ? { title: "latency (s)" } : null,
    }, pick);
    fill("chart", chart);
    if (picked) Widgets.pick(chart, picked);
  }

  function show(data) {
    if (!data || !data.benchmark_id) return;
    report = data;
    fill("title", "Benchmark ", h("code", {}, data.benchmark_id));
    const totals = data.totals || {};
    fill("meta", App.badge(data.status), " objective ", h("strong", {}, data.objective), " · ", num(data.calls), " calls · ",
      usd(totals.cost_usd), " of ", usd(data.max_cost_usd), " · ", secs(data.wall_time_s),
      (data.warnings || []).map((w) => h("span", { class: "muted" }, " · " + w)));
    fill("tradeoffs", Markdown.inline(data.tradeoffs || "", {}));
    const live = document.getElementById("live");
    live.hidden = data.status !== "running";
    if (data.status === "running") {
      fill("live", h("strong", {}, "In progress: "), data.progress);
      if (!polling && App.canCallTools()) {
        polling = App.poll(async () => {
          show((await App.callTool("get_benchmark", { benchmark_id: report.benchmark_id })).structuredContent);
          const more = report.status === "running";
          if (!more) polling = null;
          return more;
        }, 2000, (error) => {
          polling = null;
          fill("live", h("span", { class: "error" }, "Stopped refreshing: " + error.message));
        });
      }
    }
    const stats = JSON.stringify(data.stats || []);
    if (stats !== drawnStats) {  // redraw only what changed, and keep the keyboard where it was
      drawnStats = stats;
      App.keepFocus(() => {
        table.render(data.stats || []);
        drawChart(data.stats || []);
      });
    }
  }

  App.start("benchmark", show, "tradeoffs");
})();
