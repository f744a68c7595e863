// The README's examples of the library, run as written against a real server: in Node as they
// are; the browser's and React Native's with Node standing in for the platform's globals
// (WebSocket, localStorage, location; AsyncStorage).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";

import { repoRoot, system } from "./harness.js";

const run = promisify(execFile);
const readme = readFileSync(join(repoRoot, "README.md"), "utf8");

// example returns the code block that follows <!-- example: name --> in the README.
function example(name: string): string {
  const m = new RegExp("<!-- example: " + name + " -->\\n```js\\n([\\s\\S]*?)```").exec(readme);
  assert.ok(m, `the README's ${name} example`);
  return m[1]!;
}

// runModule writes code as an ES module inside the package (so that "@commongrounds/client"
// resolves to this build) and runs it with Node.
async function runModule(name: string, code: string, env: Record<string, string> = {}): Promise<string> {
  const file = join(repoRoot, "clients/js/dist", `readme-${name}.mjs`);
  writeFileSync(file, code);
  try {
    const { stdout } = await run(process.execPath, [file], { env: { ...process.env, ...env }, timeout: 60_000 });
    return stdout;
  } finally {
    rmSync(file, { force: true });
  }
}

const cgjs = pathToFileURL(join(repoRoot, "web/static/cg.js")).href;

test("the README's examples run", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(1, 1);
  const token = seed.users[0]!.token;
  const room = seed.rooms[0]!;

  const node = await runModule("node", example("node"), { CG_URL: srv.base, CG_TOKEN: token, CG_ROOM: room });
  assert.match(node, /^sent as 1$/m);

  const browser = await runModule("browser", [
    `import WebSocket from "ws";`,
    `import { memoryStorage } from ${JSON.stringify(cgjs)};`,
    `globalThis.WebSocket = WebSocket;`,
    `globalThis.localStorage = memoryStorage();`,
    `localStorage.setItem("commongrounds_token", ${JSON.stringify(token)});`,
    `globalThis.location = { origin: ${JSON.stringify(srv.base)} };`,
    example("browser").replace(`"/static/cg.js"`, JSON.stringify(cgjs)),
  ].join("\n"));
  assert.match(browser, /^socket: live$/m);
  assert.match(browser, /^sent as 2$/m);

  const rn = example("react-native")
    .replace(`import AsyncStorage from "@react-native-async-storage/async-storage";`, [
      `import WebSocket from "ws";`,
      `globalThis.WebSocket = WebSocket;`,
      `const saved = new Map([["token", ${JSON.stringify(token)}]]);`,
      `const AsyncStorage = { getItem: async (k) => saved.get(k) ?? null, setItem: async (k, v) => { saved.set(k, v); }, removeItem: async (k) => { saved.delete(k); } };`,
    ].join("\n"))
    .replace(`"https://chat.example.edu"`, JSON.stringify(srv.base));
  const mobile = await runModule("react-native", rn + [
    `let arrived; const delivered = new Promise((r) => { arrived = r; });`,
    `const send = await openClass(${JSON.stringify(room)}, (m) => { console.log("got", m.seq, m.content); arrived(); });`,
    `console.log("sent as", (await send("Hello from a phone")).seq);`,
    `await delivered;`,
    `const key = "cg.seq." + ${JSON.stringify(room)};`,
    `while (saved.get(key) !== "3") await new Promise((r) => setImmediate(r));`,
    `live.close();`,
    `console.log("kept", saved.get(key));`,
  ].join("\n"));
  assert.match(mobile, /^sent as 3$/m);
  assert.match(mobile, /^got 3 Hello from a phone$/m);
  assert.match(mobile, /^kept 3$/m);
});
