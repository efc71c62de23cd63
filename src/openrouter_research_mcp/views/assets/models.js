/* The model explorer: the list_models page as a table sorted by any column and filtered as you type, a chart of
   price against context, and, where the host lets views call tools, a prompt box that asks the chosen model. */
(() => {
  const { h, usd, num, fill } = App;
  let page = null;
  let models = [];
  let chosen = null;
  let chart = null;

  const price = (m) => m.prompt_usd_per_mtok;
  const perM = (x) => (x === null || x === undefined ? "n/a" : x === 0 ? "free" : "$" + Number(x.toPrecision(3)));
  const columns = [
    { key: "id", title: "Model", value: (m) => m.id },
    { key: "context", title: "Context", num: true, first: -1, value: (m) => m.context },
    { key: "prompt", title: "Prompt $/M", num: true, value: price },
    { key: "completion", title: "Completion $/M", num: true, value: (m) => m.completion_usd_per_mtok },
    { key: "modalities", title: "Modalities", value: (m) => m.modalities },
    { key: "capabilities", title: "Can", value: (m) => m.capabilities.join(", ") },
    { key: "ask", title: "", sort: false, value: () => null },
  ];
  const table = Widgets.sortable(document.getElementById("table"), columns, (m) => h("tr",
    { "data-id": m.id, class: chosen === m.id ? "picked" : null },
    h("td", {}, h("strong", {}, m.id), h("div", { class: "muted small" }, m.name)),
    h("td", { class: "num" }, num(m.context)),
    h("td", { class: "num" }, perM(price(m))),
    h("td", { class: "num" }, perM(m.completion_usd_per_mtok)),
    h("td", { class: "small" }, m.modalities),
    h("td", { class: "small" }, m.capabilities.join(", ")),
    h("td", {}, h("button", { type: "button", "aria-label": "Choose " + m.id, onclick: () => choose(m.id) }, "Choose"))));

  function visible() {
    const text = document.getElementById("filter").value.trim().toLowerCase();
    const modality = document.getElementById("modality").value;
    const capability = document.getElementById("capability").value;
    return models.filter((m) =>
      (!text || [m.id, m.name, m.modalities, m.capabilities.join(" ")].join(" ").toLowerCase().includes(text))
      && (!modality || m.modalities.split("->")[0].split("+").includes(modality))
      && (!capability || m.capabilities.includes(capability)));
  }

  function draw() {
    App.keepFocus(redraw);
  }
  function redraw() {
    const rows = visible();
    table.render(rows);
    fill("count", rows.length === models.length ? num(models.length) + " shown" : num(rows.length) + " of "
      + num(models.length) + " shown");
    chart = Widgets.scatter(rows.map((m) => ({ id: m.id, label: m.id, x: price(m), y: m.context })),
      { x: { title: "prompt $ per million tokens", log: true, unit: "$" }, y: { title: "context (tokens)", log: true } },
      choose);
    fill("chart", chart);
    if (chosen) Widgets.pick(chart, chosen);
  }

  function choose(id) {
    chosen = id;
    for (const row of document.querySelectorAll("#table tbody tr")) row.classList.toggle("picked", row.dataset.id === id);
    if (chart) Widgets.pick(chart, id);
    const panel = document.getElementById("ask");
    panel.hidden = false;
    fill("ask-title", "Ask ", h("code", {}, id));
    const can = App.canCallTools();
    document.getElementById("ask-send").disabled = !can;
    fill("ask-note", can ? "" : "This client does not let views call tools; ask the assistant to use " + id + ".");
    document.getElementById("ask-prompt").focus();
  }

  async function ask() {
    const prompt = document.getElementById("ask-prompt").value.trim();
    if (!prompt || !chosen) return;
    const send = document.getElementById("ask-send");
    send.disabled = true;
    fill("ask-answer", h("p", { class: "muted" }, "Asking ", chosen, "…"));
    try {
      const result = await App.callTool("ask", { prompt: prompt, model: chosen });
      const answer = result.structuredContent || {};
      fill("ask-answer", h("p", { class: "answer" }, answer.answer || ""),
        h("p", { class: "muted small" }, answer.model, " · ", num(answer.usage && answer.usage.completion_tokens),
          " tokens · ", usd(answer.usage && answer.usage.cost_usd)));
    } catch (error) {
      fill("ask-answer", h("p", { class: "error" }, error.message));
    } finally {
      send.disabled = false;
    }
  }

  async function more() {
    if (!page || page.next_offset === null || page.next_offset === undefined) return;
    const button = document.getElementById("more");
    const offset = page.next_offset;
    button.disabled = true;  // one page at a time: a second click must not append the same page twice
    try {
      const result = await App.callTool("list_models", Object.assign({}, App.input, { offset: offset }));
      const next = result.structuredContent;
      if (next && next.offset === offset && page.next_offset === offset) show(next, true);
    } catch (error) {
      fill("count", h("span", { class: "error" }, error.message));
    } finally {
      button.disabled = false;
    }
  }

  function show(data, append) {
    if (!data || !data.models) return;
    page = data;
    models = append ? models.concat(data.models) : data.models.slice();
    fill("summary", num(data.total), " models match",
      data.catalog_age_s !== undefined ? " · catalog " + Math.round(data.catalog_age_s / 60) + " min old" : "",
      data.catalog_note ? " · " + data.catalog_note : "");
    const button = document.getElementById("more");
    button.hidden = !(App.canCallTools() && data.next_offset !== null && data.next_offset !== undefined);
    draw();
  }

  for (const id of ["filter", "modality", "capability"]) document.getElementById(id).addEventListener("input", draw);
  document.getElementById("ask-send").addEventListener("click", ask);
  document.getElementById("more").addEventListener("click", more);
  App.start("models", (data) => show(data, false), "summary");
})();
