// Loaded with `node --import` before the conformance CLI. Its bundle imports `globSync` from "fs" (Node.js 22+),
// though it is built for node20 and only its `tier-check` command calls it; on Node.js 20 the import alone fails
// with "The requested module 'fs' does not provide an export named 'globSync'". On such a Node.js this registers a
// resolve hook that gives "fs" a stand-in `globSync` that throws; on Node.js 22+ it does nothing.
import fs from "node:fs";
import { register } from "node:module";

if (typeof fs.globSync !== "function") {
  register("./node20-globsync-hooks.mjs", import.meta.url);
}
