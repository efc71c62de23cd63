"use strict";
/* The view side of MCP Apps (ext-apps 2026-01-26), the part these views use: the ui/initialize handshake, the
   tool input and result, theme and style changes, tool calls and links through the host, size changes, teardown.
   Plus small DOM and number helpers shared by every view. No network: everything goes through the host. */
const App = (() => {
  let nextId = 1;
  const pending = new Map();
  const handlers = {};
  let host = {};
  let input = null;
  const pollers = new Set();
  const root = document.documentElement;

  function post(message) {
    window.parent.postMessage(Object.assign({ jsonrpc: "2.0" }, message), "*");
  }
  function request(method, params) {
    const id = nextId++;
    post({ id: id, method: method, params: params || {} });
    return new Promise((resolve, reject) => pending.set(id, { resolve: resolve, reject: reject }));
  }
  function notify(method, params) {
    post({ method: method, params: params || {} });
  }
  function applyContext(context) {
    if (!context) return;
    if (context.theme === "light" || context.theme === "dark") root.dataset.theme = context.theme;
    const variables = context.styles && context.styles.variables;
    if (variables) {
      for (const [name, value] of Object.entries(variables)) {
        if (name.startsWith("--") && typeof value === "string") root.style.setProperty(name, value);
      }
    }
  }
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const m = event.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined) {
      const waiting = pending.get(m.id);
      if (!waiting) return;
      pending.delete(m.id);
      if (m.error) waiting.reject(new Error(m.error.message || "the host refused"));
      else waiting.resolve(m.result);
      return;
    }
    if (m.id !== undefined) {
      // Requests from the host: answer the two this view knows, refuse the rest.
      if (m.method === "ui/resource-teardown") for (const p of pollers) p.stop();  // no calls after teardown
      if (m.method === "ping" || m.method === "ui/resource-teardown") post({ id: m.id, result: {} });
      else post({ id: m.id, error: { code: -32601, message: "Method not found: " + m.method } });
      return;
    }
    if (m.method === "ui/notifications/host-context-changed") applyContext(m.params);
    // The arguments of the call that opened the view; hosts may echo the view's own later calls, which are not it.
    if (m.method === "ui/notifications/tool-input" && input === null) input = (m.params && m.params.arguments) || {};
    const handler = handlers[m.method];
    if (handler) handler(m.params || {});
  });

  let lastSize = "";
  function reportSize() {
    // The content's own height (the document's scrollHeight never drops below the frame the host already set).
    const size = { width: Math.ceil(root.scrollWidth), height: Math.ceil(document.body.getBoundingClientRect().height) };
    const key = size.width + "x" + size.height;
    if (key !== lastSize) {
      lastSize = key;
      notify("ui/notifications/size-changed", size);
    }
  }

  /* Start the handshake; `onData(structuredContent)` runs for every tool result the host sends, and a failed call's
     text is shown in the element `errorIn`. */
  async function start(name, onData, errorIn, onCancelled) {
    handlers["ui/notifications/tool-result"] = (result) => {
      if (result.structuredContent) onData(result.structuredContent);
      else if (result.isError) fill(errorIn, h("span", { class: "error" }, resultText(result)));
    };
    handlers["ui/notifications/tool-cancelled"] = (params) => onCancelled && onCancelled(params.reason || "");
    try {
      const answer = await request("ui/initialize", {
        protocolVersion: "2026-01-26",
        appInfo: { name: "openrouter-research-" + name, version: "1" },
        appCapabilities: { availableDisplayModes: ["inline"] },
      });
      host = (answer && answer.hostCapabilities) || {};
      applyContext(answer && answer.hostContext);
    } catch (error) {
      host = {};
    }
    notify("ui/notifications/initialized", {});
    if (window.ResizeObserver) new ResizeObserver(() => requestAnimationFrame(reportSize)).observe(document.body);
    reportSize();
  }

  /* Call `step` every `every` ms while it resolves true: one call at a time, backing off after a failure and
     giving up after five in a row; every poller stops when the host tears the view down. */
  function poll(step, every, onGiveUp) {
    let stopped = false;
    let failures = 0;
    let timer = null;
    const handle = { stop() { stopped = true; clearTimeout(timer); pollers.delete(handle); } };
    async function tick() {
      if (stopped) return;
      try {
        const more = await step();
        failures = 0;
        if (!more) return handle.stop();
      } catch (error) {
        failures++;
        if (failures >= 5) {
          handle.stop();
          if (onGiveUp) onGiveUp(error);
          return;
        }
      }
      if (!stopped) timer = setTimeout(tick, every * Math.pow(2, failures));
    }
    pollers.add(handle);
    timer = setTimeout(tick, every);
    return handle;
  }

  /* Run `render` (which may rebuild the focused element) and give focus back to its equivalent. */
  function keepFocus(render) {
    const el = document.activeElement;
    const keys = ["id", "data-n", "data-id", "data-key"];
    const key = el && el !== document.body ? keys.find((k) => el.hasAttribute(k)) : null;
    const selector = key ? el.tagName.toLowerCase() + "[" + key + '="' + CSS.escape(el.getAttribute(key)) + '"]' : null;
    const inHead = el && el.closest ? el.closest("th") : null;
    const headKey = inHead ? inHead.dataset.key : null;
    render();
    if (document.activeElement !== document.body || (!selector && !headKey)) return;
    const again = headKey ? document.querySelector('th[data-key="' + CSS.escape(headKey) + '"] button')
      : document.querySelector(selector);
    if (again) again.focus();
  }

  function canCallTools() {
    return Boolean(host.serverTools);
  }
  /* A tool call through the host; resolves to the CallToolResult, rejects with the error's text. */
  async function callTool(name, args) {
    if (!canCallTools()) throw new Error("This client does not let views call tools.");
    const result = await request("tools/call", { name: name, arguments: args });
    if (result && result.isError) throw new Error(resultText(result) || name + " failed");
    return result;
  }
  function resultText(result) {
    return (result.content || []).map((c) => c.text || "").join("\n");
  }
  /* A run's status as a badge: green when done, plain while running, amber for any early stop. */
  function badge(status) {
    return h("span", { class: "badge " + (status === "done" ? "ok" : status === "running" ? "" : "warn") }, status);
  }
  function openLink(url) {
    if (!/^https?:\/\//i.test(url)) return;
    if (host.openLinks) request("ui/open-link", { url: url }).catch(() => {});
  }

  /* h("p", {class: "x", onclick: f}, "text", node...): elements built without parsing any HTML. */
  function h(tag, props, ...children) {
    const svg = tag.startsWith("svg:");
    const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "text") el.textContent = String(value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  function usd(x) {
    if (x === null || x === undefined) return "n/a";
    if (x === 0) return "$0";
    return x < 0.01 ? "$" + x.toFixed(5) : "$" + x.toFixed(x < 1 ? 4 : 2);
  }
  function num(x) {
    return x === null || x === undefined ? "n/a" : Number(x).toLocaleString("en-US");
  }
  function secs(x) {
    return x === null || x === undefined ? "n/a" : x < 10 ? x.toFixed(2) + " s" : Math.round(x) + " s";
  }
  function domain(url) {
    try {
      return new URL(url).hostname.replace(/^www\./, "");
    } catch (error) {
      return url;
    }
  }
  function fill(id, ...children) {
    const el = document.getElementById(id);
    el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return el;
  }
  return {
    start, callTool, canCallTools, openLink, poll, keepFocus, h, badge, usd, num, secs, domain, fill,
    get input() { return input || {}; },
  };
})();
