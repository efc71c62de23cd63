/* Markdown to DOM nodes, never through innerHTML: headings, paragraphs, lists, quotes, code, tables, emphasis,
   http(s) links (opened through the host), and research citations [n] / [n?] handed to `cite(n, doubtful)`. */
const Markdown = (() => {
  const h = App.h;
  const INLINE =
    /`([^`]+)`|\*\*(.+?)\*\*|\[citation removed[^\]]*\]|\[(\d+)(\?)?\]|\[([^\]]+)\]\(<?(https?:\/\/[^)\s>]+)>?\)|<(https?:\/\/[^>\s]+)>|\*([^*\s][^*]*?)\*|\b_([^_\s][^_]*?)_\b/g;

  function inline(text, opts) {
    const out = [];
    const re = new RegExp(INLINE.source, "g");  // one per call: emphasis recurses, and a shared lastIndex would loop
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) out.push(text.slice(last, m.index));
      last = re.lastIndex;
      if (m[1] !== undefined) out.push(h("code", {}, m[1]));
      else if (m[2] !== undefined) out.push(h("strong", {}, inline(m[2], opts)));
      else if (m[0].startsWith("[citation removed")) out.push(h("span", { class: "removed", text: m[0] }));
      else if (m[3] !== undefined) out.push(opts.cite ? opts.cite(Number(m[3]), m[4] === "?") : m[0]);
      else if (m[5] !== undefined) out.push(link(m[6], inline(m[5], opts)));
      else if (m[7] !== undefined) out.push(link(m[7], m[7]));
      else if (m[8] !== undefined) out.push(h("em", {}, inline(m[8], opts)));
      else if (m[9] !== undefined) out.push(h("em", {}, inline(m[9], opts)));
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }
  function link(url, label) {
    return h("a", {
      href: url,
      rel: "noopener noreferrer",
      onclick: (event) => {
        event.preventDefault();
        App.openLink(url);
      },
    }, label);
  }
  function cells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
  }

  function render(text, opts) {
    opts = opts || {};
    const lines = String(text || "").replace(/\r\n?/g, "\n").split("\n");
    const out = document.createDocumentFragment();
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i++; continue; }
      if (/^```/.test(line)) {
        const body = [];
        i++;
        while (i < lines.length && !/^```/.test(lines[i])) body.push(lines[i++]);
        i++;
        out.append(h("pre", {}, h("code", {}, body.join("\n"))));
        continue;
      }
      const heading = /^(#{1,6})\s+(.*?)\s*#*$/.exec(line);
      if (heading) {
        out.append(h("h" + Math.min(6, heading[1].length + 1), {}, inline(heading[2], opts)));
        i++;
        continue;
      }
      if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { out.append(h("hr")); i++; continue; }
      if (/^\s*>/.test(line)) {
        const body = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
        out.append(h("blockquote", {}, render(body.join("\n"), opts)));
        continue;
      }
      if (line.includes("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
        const head = cells(line);
        i += 2;
        const rows = [];
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[i++]));
        out.append(h("div", { class: "scroll" }, h("table", {},
          h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c, opts))))),
          h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c, opts)))))))));
        continue;
      }
      const bullet = /^\s*([-*+]|\d+[.)])\s+/;
      if (bullet.test(line)) {
        const ordered = /^\s*\d/.test(line);
        const items = [];
        while (i < lines.length && (bullet.test(lines[i]) || (/^\s{2,}\S/.test(lines[i]) && items.length))) {
          if (bullet.test(lines[i])) items.push(lines[i].replace(bullet, ""));
          else items[items.length - 1] += " " + lines[i].trim();
          i++;
        }
        out.append(h(ordered ? "ol" : "ul", {}, items.map((item) => h("li", {}, inline(item, opts)))));
        continue;
      }
      const para = [];
      while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|```|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(lines[i])) {
        para.push(lines[i++].trim());
      }
      if (!para.length) para.push(lines[i++].trim());
      out.append(h("p", {}, inline(para.join(" "), opts)));
    }
    return out;
  }
  return { render, inline };
})();
