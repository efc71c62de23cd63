// Module resolve hook (see node20-globsync.mjs): "fs" and "node:fs" resolve to node:fs plus a `globSync` that throws.
const SHIM =
  "data:text/javascript," +
  encodeURIComponent(
    'export * from "node:fs"; import fs from "node:fs"; export default fs; ' +
      'export function globSync() { throw new Error("fs.globSync needs Node.js 22 or later"); }',
  );

export async function resolve(specifier, context, nextResolve) {
  const fromShim = context.parentURL?.startsWith("data:");
  if ((specifier === "fs" || specifier === "node:fs") && !fromShim) {
    return { url: SHIM, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
