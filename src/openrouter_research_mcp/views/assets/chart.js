/* Two widgets shared by the model explorer and the benchmark: a scatter chart (SVG built node by node; each point
   focusable, Enter picks it) and a table sorted by clicking or pressing Enter on a column header. */
const Widgets = (() => {
  const h = App.h;

  function scale(values, axis, from, to) {
    const log = axis.log;
    const usable = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v) && (!log || v > 0));
    let lo = usable.length ? Math.min(...usable) : log ? 1 : 0;  // nothing to plot: a plain default range
    let hi = usable.length ? Math.max(...usable) : log ? 10 : 1;
    const ticks = [];
    if (axis.domain) {
      [lo, hi] = axis.domain;
    } else if (log) {
      lo = Math.pow(10, Math.floor(Math.log10(lo)));
      hi = Math.pow(10, Math.ceil(Math.log10(hi)));
      if (hi === lo) hi = lo * 10;
    }
    if (log) {
      for (let t = lo; t > 0 && t <= hi * 1.0001 && ticks.length < 40; t *= 10) ticks.push(t);
    } else {
      // A round step (1, 2 or 5 times a power of ten) and bounds on it, so the ticks read as plain numbers.
      const span = hi - lo || Math.abs(hi) || 1;
      const raw = span / 4;
      const power = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
      if (!axis.domain) {
        lo = Math.max(0, Math.floor((lo - span * 0.05) / step) * step);
        hi = Math.ceil((hi + span * 0.05) / step) * step;
      }
      for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && ticks.length < 40; t += step) {
        ticks.push(Number(t.toPrecision(12)));
      }
    }
    const f = log ? Math.log10 : (v) => v;
    const map = (v) => from + ((f(v) - f(lo)) / (f(hi) - f(lo) || 1)) * (to - from);
    return { map, ticks };
  }
  function label(v, unit) {
    const text = Math.abs(v) >= 1e6 ? v / 1e6 + "M" : Math.abs(v) >= 1e3 ? v / 1e3 + "k" : v < 0.01 && v > 0 ? v.toPrecision(1)
      : Number(v.toPrecision(3)).toString();
    return unit === "$" ? "$" + text : text;
  }

  /* points: [{id, label, x, y, r}] ; axes: {x: {title, log, unit}, y: {...}, r: {title}} */
  function scatter(points, axes, onPick) {
    const W = 640, H = 320, L = 64, R = 16, T = 12, B = 44;
    const usable = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)
      && (!axes.x.log || p.x > 0) && (!axes.y.log || p.y > 0));
    const sx = scale(usable.map((p) => p.x), axes.x, L, W - R);
    const sy = scale(usable.map((p) => p.y), axes.y, H - B, T);
    const rMax = Math.max(0, ...usable.map((p) => p.r || 0));
    const svg = h("svg:svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "group",
      "aria-label": axes.y.title + " against " + axes.x.title });
    svg.append(h("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
      h("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    for (const t of sx.ticks) {
      svg.append(h("svg:text", { x: sx.map(t), y: H - B + 16, "text-anchor": "middle" }, label(t, axes.x.unit)));
    }
    for (const t of sy.ticks) {
      svg.append(h("svg:text", { x: L - 6, y: sy.map(t) + 4, "text-anchor": "end" }, label(t, axes.y.unit)));
    }
    svg.append(h("svg:text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, axes.x.title),
      h("svg:text", { x: 14, y: (T + H - B) / 2, transform: "rotate(-90 14 " + (T + H - B) / 2 + ")",
        "text-anchor": "middle" }, axes.y.title));
    const ordered = usable.slice().sort((a, b) => (b.r || 0) - (a.r || 0));  // big bubbles under small ones
    for (const p of ordered) {
      const radius = rMax > 0 && p.r ? 5 + 17 * Math.sqrt(p.r / rMax) : 5;
      const text = p.label + ": " + axes.x.title + " " + label(p.x, axes.x.unit) + ", " + axes.y.title + " "
        + label(p.y, axes.y.unit) + (axes.r && p.r ? ", " + axes.r.title + " " + label(p.r, axes.r.unit) : "");
      const dot = h("svg:circle", { cx: sx.map(p.x).toFixed(1), cy: sy.map(p.y).toFixed(1), r: radius.toFixed(1),
        tabindex: 0, role: "button", "aria-label": text, "data-id": p.id,
        onclick: () => onPick && onPick(p.id),
        onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onPick && onPick(p.id); } },
      }, h("svg:title", {}, text));
      svg.append(dot);
      if (usable.length <= 12) {  // few enough to name each point on the chart itself
        const name = p.label.includes("/") ? p.label.slice(p.label.indexOf("/") + 1) : p.label;
        svg.append(h("svg:text", { x: (sx.map(p.x) + radius + 3).toFixed(1), y: (sy.map(p.y) + 4).toFixed(1),
          "aria-hidden": "true" }, name));
      }
    }
    if (!usable.length) {
      svg.append(h("svg:text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle" }, "nothing to plot yet"));
    } else if (usable.length < points.length) {
      svg.append(h("svg:text", { x: W - R, y: T + 10, "text-anchor": "end" },
        points.length - usable.length + " without figures not shown"));
    }
    return svg;
  }
  function pick(svg, id) {
    for (const dot of svg.querySelectorAll("circle")) dot.classList.toggle("picked", dot.dataset.id === id);
  }

  /* columns: [{key, title, num, value(row), cell(row)}]; returns {render(rows), sortBy(key, dir)} */
  function sortable(table, columns, rowOf, initial) {
    let key = initial ? initial.key : null;  // null: the order the rows came in
    let dir = initial ? initial.dir : 1;
    let rows = [];
    const head = h("tr");
    const body = h("tbody");
    table.replaceChildren(h("thead", {}, head), body);
    for (const c of columns) {
      const th = h("th", { scope: "col", class: c.num ? "num" : null, "data-key": c.key });
      if (c.sort === false) th.textContent = c.title;
      else th.append(h("button", { type: "button", onclick: () => sortBy(c.key, c.key === key ? -dir : c.first || 1) }, c.title));
      head.append(th);
    }
    function compare(a, b) {
      const col = columns.find((c) => c.key === key);
      if (!col) return 0;
      const va = col.value(a), vb = col.value(b);
      const missA = va === null || va === undefined, missB = vb === null || vb === undefined;
      if (missA || missB) return missA === missB ? 0 : missA ? 1 : -1;  // blanks last either way
      return (typeof va === "string" ? va.localeCompare(vb) : va - vb) * dir;
    }
    function draw() {
      for (const th of head.children) {
        th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
      }
      body.replaceChildren(...rows.slice().sort(compare).map(rowOf));
    }
    function sortBy(k, d) {
      key = k;
      dir = d;
      draw();
    }
    return { render: (r) => { rows = r; draw(); }, sortBy };
  }
  return { scatter, pick, sortable };
})();
