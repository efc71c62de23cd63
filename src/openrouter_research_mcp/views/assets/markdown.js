/* Markdown to DOM nodes, never through innerHTML: headings, paragraphs, lists, quotes, code, tables, emphasis,
   http(s) links (opened through the host), and research citations [n] / [n?] / [n†] handed to `cite(n, mark)` (mark: "", "?" or "†"). */
const Markdown = (() => {
  const h = App.h;
  const URL_PART = "https?:\\/\\/(?:[^()\\s<>]|\\([^()\\s]*\\))+";  // one level of balanced parentheses
  const INLINE = new RegExp(
    [
      "`([^`]+)`",
      "\\*\\*(.+?)\\*\\*",
      "\\[citation removed[^\\]]*\\]",
      "\\[([^\\]]+)\\]\\(<?(" + URL_PART + ")>?\\)",
      "\\[(\\d+)([?\u2020])?\\]",
      "<(https?:\\/\\/[^>\\s]+)>",
      "\\*([^*\\s][^*]*?)\\*",
      "\\b_([^_\\s][^_]*?)_\\b",
    ].join("|"),
    "g",
  );
  const BULLET = /^\s*([-*+]|\d+[.)])\s+/;
  const HR = /^\s*([-*_])(\s*\1){2,}\s*$/;
  const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

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
      else if (m[3] !== undefined) out.push(link(m[4], inline(m[3], opts)));
      else if (m[5] !== undefined) out.push(opts.cite ? opts.cite(Number(m[5]), m[6] || "") : m[0]);
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
  function startsTable(lines, i) {
    return lines[i].includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-");
  }
  function startsBlock(lines, i) {
    return /^(#{1,6}\s|```|\s*>)/.test(lines[i]) || BULLET.test(lines[i]) || HR.test(lines[i]) || startsTable(lines, i);
  }

  function list(lines, i, opts) {
    const ordered = /^\s*\d/.test(lines[i]);
    const first = ordered ? parseInt(lines[i], 10) : 1;
    const items = [];
    while (i < lines.length) {
      if (BULLET.test(lines[i]) && /^\s*\d/.test(lines[i]) === ordered) {
        items.push(lines[i].replace(BULLET, ""));
        i++;
      } else if (items.length && /^\s{2,}\S/.test(lines[i])) {
        items[items.length - 1] += " " + lines[i].trim();
        i++;
      } else if (!lines[i].trim()) {
        // A blank line between items keeps the list going (models often write lists that way).
        let next = i;
        while (next < lines.length && !lines[next].trim()) next++;
        if (next < lines.length && BULLET.test(lines[next]) && /^\s*\d/.test(lines[next]) === ordered) i = next;
        else break;
      } else {
        break;
      }
    }
    const props = ordered && first !== 1 ? { start: first } : {};
    return [h(ordered ? "ol" : "ul", props, items.map((item) => h("li", {}, inline(item, opts)))), i];
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
      const heading = /^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
      if (heading) {
        out.append(h("h" + Math.min(6, heading[1].length + 1), {}, inline(heading[2], opts)));
        i++;
        continue;
      }
      if (HR.test(line)) { out.append(h("hr")); i++; continue; }
      if (/^\s*>/.test(line)) {
        const body = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
        out.append(h("blockquote", {}, render(body.join("\n"), opts)));
        continue;
      }
      if (startsTable(lines, i)) {
        const head = cells(line);
        i += 2;
        const rows = [];
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(cells(lines[i++]));
        out.append(h("div", { class: "scroll" }, h("table", {},
          h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c, opts))))),
          h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c, opts)))))))));
        continue;
      }
      if (BULLET.test(line)) {
        const [node, next] = list(lines, i, opts);
        out.append(node);
        i = next;
        continue;
      }
      const para = [lines[i++].trim()];
      while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) para.push(lines[i++].trim());
      out.append(h("p", {}, inline(para.join(" "), opts)));
    }
    return out;
  }
  return { render, inline };
})();
