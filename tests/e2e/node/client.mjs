// The TypeScript SDK's client drives the whole server over Streamable HTTP: every tool, resource and prompt it lists.
//
//   node client.mjs <url> <bearer-token>
//
// It talks to its parent (tests/e2e/test_http_clients_e2e.py) over stdin/stdout: it writes "HOLD" when it is about to
// start the background runs it cancels, and waits for one line back (the parent has then told the fake OpenRouter to
// hold every answer, so the runs are still going when they are cancelled). Its last stdout line is one JSON object:
// what was listed, every call, read and prompt with a summary of its result, and every exception (`failures`).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createInterface } from "node:readline";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  process.stderr.write("usage: node client.mjs <url> <bearer-token>\n");
  process.exit(2);
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function handshake(word) {
  process.stdout.write(`${word}\n`);
  const answer = await lines.next();
  if (answer.done) throw new Error(`stdin closed while waiting after ${word}`);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "openrouter-research-mcp-ts-sdk-e2e", version: "1.0.0" });
const summary = { calls: [], reads: [], prompts_got: [], failures: [], notifications: {} };
client.fallbackNotificationHandler = async (notification) => {
  summary.notifications[notification.method] = (summary.notifications[notification.method] ?? 0) + 1;
};
const REQUEST = { timeout: 120_000 };

function excerpt(text, size = 200) {
  return typeof text === "string" ? text.slice(0, size) : text;
}

async function attempt(what, action) {
  try {
    return await action();
  } catch (error) {
    summary.failures.push({ what, error: String(error?.stack ?? error).slice(0, 1500) });
    return undefined;
  }
}

const PICKED = ["status", "research_id", "benchmark_id", "total", "answer", "report", "cost_usd", "calls", "models"];

async function call(name, args, { expectError = false } = {}) {
  const result = await attempt(`tools/call ${name} ${JSON.stringify(args)}`, () =>
    client.callTool({ name, arguments: args }, undefined, REQUEST),
  );
  if (result === undefined) return undefined;
  const data = result.structuredContent ?? {};
  const picked = Object.fromEntries(
    PICKED.filter((key) => key in data).map((key) => [key, key === "models" ? data[key].length : excerpt(data[key])]),
  );
  summary.calls.push({
    tool: name,
    arguments: args,
    isError: result.isError === true,
    expectError,
    content_types: (result.content ?? []).map((part) => part.type),
    text: excerpt(result.content?.find((part) => part.type === "text")?.text, 400),
    structured_keys: Object.keys(data).sort(),
    structured: picked,
  });
  return data;
}

await client.connect(transport);
summary.protocol_version = transport.protocolVersion ?? null;
summary.session_id_set = Boolean(transport.sessionId);
summary.server = client.getServerVersion();
summary.capabilities = client.getServerCapabilities();
summary.instructions = excerpt(client.getInstructions());

const tools = (await client.listTools()).tools;
const resources = (await client.listResources()).resources;
const templates = (await client.listResourceTemplates()).resourceTemplates;
const prompts = (await client.listPrompts()).prompts;
summary.tools = tools.map((tool) => tool.name);
summary.tools_with_output_schema = tools.filter((tool) => tool.outputSchema).map((tool) => tool.name);
summary.resources = resources.map((resource) => resource.uri);
summary.templates = templates.map((template) => template.uriTemplate);
summary.prompts = prompts.map((prompt) => prompt.name);

// Work that finishes: every tool once, and ids for the resource templates.
const MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o"];
await call("ask", { prompt: "What causes tides?" });
await call("compare_models", { prompt: "Name a prime.", models: MODELS });
await call("list_models", { limit: 1 });
const research = await call("deep_research", { question: "Is fusion power near?", depth: 1 });
await call("get_research", { research_id: research?.research_id ?? "missing" });
await call("get_research", { research_id: "20260101-000000-00000000" }, { expectError: true });
const bench = await call("benchmark_models", { prompts: ["Is 17 prime?"], models: MODELS });
await call("get_benchmark", { benchmark_id: bench?.benchmark_id ?? "missing" });

// Work that is cancelled while it runs (the parent holds every upstream answer between HOLD and the last call).
await handshake("HOLD");
const running = await call("deep_research", { question: "How do honeybees live?", depth: 1, background: true });
const runningBench = await call("benchmark_models", { prompts: ["Is 17 prime?"], models: MODELS, background: true });
await call("get_research", { research_id: running?.research_id ?? "missing" });
await call("cancel_research", { research_id: running?.research_id ?? "missing" });
await call("cancel_benchmark", { benchmark_id: runningBench?.benchmark_id ?? "missing" });
await call("get_benchmark", { benchmark_id: runningBench?.benchmark_id ?? "missing" });

const called = new Set(summary.calls.map((entry) => entry.tool));
summary.tools_not_called = summary.tools.filter((name) => !called.has(name));

for (const resource of resources) {
  await read(resource.uri, resource.uri);
}
const VALUES = {
  model_id: "openai/gpt-4o",
  research_id: research?.research_id,
  benchmark_id: bench?.benchmark_id,
};
for (const template of templates) {
  let missing = null;
  const uri = template.uriTemplate.replace(/\{\+?([a-z_]+)\}/g, (_whole, name) => {
    if (!VALUES[name]) missing = name;
    return VALUES[name] ?? name;
  });
  if (missing) {
    summary.failures.push({ what: `resources/read ${template.uriTemplate}`, error: `no value for {${missing}}` });
    continue;
  }
  await read(uri, template.uriTemplate);
}

async function read(uri, from) {
  const result = await attempt(`resources/read ${uri}`, () => client.readResource({ uri }, REQUEST));
  if (result === undefined) return;
  summary.reads.push({
    uri,
    from,
    contents: result.contents.map((part) => ({
      uri: part.uri,
      mimeType: part.mimeType ?? null,
      kind: "text" in part ? "text" : "blob",
      size: ("text" in part ? part.text : part.blob).length,
      head: "text" in part ? excerpt(part.text, 120) : null,
    })),
  });
}

const ARGUMENTS = {
  topic: "fusion power",
  audience: "policy makers",
  focus: "cost and timelines",
  question: "What causes tides?",
  models: MODELS.join(","),
  task: "summarise legal contracts",
  budget_usd: "0.01",
  needs: "tools, 100k context",
};
for (const prompt of prompts) {
  const args = Object.fromEntries((prompt.arguments ?? []).map((arg) => [arg.name, ARGUMENTS[arg.name] ?? "example"]));
  const result = await attempt(`prompts/get ${prompt.name}`, () =>
    client.getPrompt({ name: prompt.name, arguments: args }, REQUEST),
  );
  if (result === undefined) continue;
  summary.prompts_got.push({
    name: prompt.name,
    arguments: args,
    declared: (prompt.arguments ?? []).map((arg) => arg.name),
    messages: result.messages.map((message) => ({
      role: message.role,
      type: message.content.type,
      text: message.content.type === "text" ? message.content.text : null,
    })),
  });
}

await attempt("close", () => transport.terminateSession().then(() => client.close()));
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(0);
