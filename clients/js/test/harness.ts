// The servers the library's tests talk to: the server's binary built from this checkout, a fresh
// PostgreSQL database named like the Go tests' (cgtest_<unix time>_<pid>_…, so that a crashed
// run's leftovers are swept by later runs), and a private redis-server, all removed when the
// tests end.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after } from "node:test";
import WS from "ws";

import { Api, Live, type LiveOptions } from "../src/index.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
/** The repository's root (this file runs from clients/js/dist/test). */
export const repoRoot = resolve(here, "../../../..");

const adminURL = process.env["TEST_DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
const runID = `${Math.floor(Date.now() / 1000)}_${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "cgjs-"));
const cleanups: (() => Promise<void> | void)[] = [];

after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      console.error("cleanup:", err);
    }
  }
  rmSync(work, { recursive: true, force: true });
});

let binary: Promise<string> | null = null;

/** serverBinary builds the server from the checkout once per test process (CG_SERVER_BIN names a built one). */
export function serverBinary(): Promise<string> {
  if (process.env["CG_SERVER_BIN"]) return Promise.resolve(process.env["CG_SERVER_BIN"]);
  binary ??= (async () => {
    const out = join(work, "commongrounds");
    await run("go", ["build", "-o", out, "./cmd/commongrounds"], { cwd: repoRoot });
    return out;
  })();
  return binary;
}

/** freePort returns a port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

// waitForLine resolves with the first line of a child's output that matches re.
function waitForLine(p: ChildProcess, re: RegExp, what: string, logs: string[]): Promise<RegExpExecArray> {
  return new Promise((res, rej) => {
    let buf = "";
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        const m = re.exec(line);
        if (m) {
          p.stdout?.off("data", onData);
          p.stderr?.off("data", onData);
          p.off("exit", onExit);
          // Keep draining the output so that the child never blocks on a full pipe.
          p.stdout?.on("data", (c: Buffer) => logs.push(c.toString()));
          p.stderr?.on("data", (c: Buffer) => logs.push(c.toString()));
          res(m);
        }
      }
    };
    const onExit = (code: number | null) => rej(new Error(`${what} exited (${code}) before it was ready:\n${logs.join("\n")}`));
    p.stdout?.on("data", onData);
    p.stderr?.on("data", onData);
    p.once("exit", onExit);
  });
}

let redisURL: Promise<string> | null = null;

/** redis starts one private redis-server for the test process and returns its URL. */
export function redis(): Promise<string> {
  redisURL ??= (async () => {
    const port = await freePort();
    const p = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    cleanups.push(() => stop(p, "SIGTERM"));
    await waitForLine(p, /Ready to accept connections/, "redis-server", []);
    return `redis://127.0.0.1:${port}/0`;
  })();
  return redisURL;
}

let dbSeq = 0;

/** A database of the test process, dropped when the tests end. */
export function newDatabase(): string {
  const name = `cgtest_${runID}_js${++dbSeq}`;
  cleanups.push(async () => {
    await run("psql", [adminURL, "-q", "-c", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
  });
  const u = new URL(adminURL);
  u.pathname = "/" + name;
  return u.toString();
}

function stop(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    p.once("exit", () => res());
    p.kill(signal);
  });
}

/** A running server. */
export interface Server {
  base: string;
  port: number;
  /** The base URL of its metrics listener (METRICS_ADDR). */
  metrics: string;
  logs: string[];
  /** stop sends SIGTERM (a graceful shutdown: every socket gets 1012) and waits for the exit. */
  stop(): Promise<void>;
}

/** The environment of a system: one database, one Redis, shared secrets. */
export interface System {
  env: Record<string, string>;
  start(opts?: { port?: number; env?: Record<string, string> }): Promise<Server>;
  seed(users: number, rooms: number): Promise<Seed>;
}

/** The users and rooms loadtest-seed wrote. */
export interface Seed {
  users: { email: string; token: string; rooms: string[] }[];
  rooms: string[];
}

/** system prepares a database, Redis and secrets shared by the servers it starts. */
export async function system(env: Record<string, string> = {}): Promise<System> {
  const bin = await serverBinary();
  const dir = mkdtempSync(join(work, "sys-"));
  const base: Record<string, string> = {
    PATH: process.env["PATH"] ?? "",
    DATABASE_URL: newDatabase(),
    REDIS_URL: await redis(),
    SECRETS_FILE: join(dir, "secrets.json"),
    SHUTDOWN_TIMEOUT: "10s",
    LOG_FORMAT: "json", // the harness reads the server's records
    METRICS_ADDR: "127.0.0.1:0", // any free port: servers of a system run side by side
    ...env,
  };
  return {
    env: base,
    async start(opts = {}) {
      const port = opts.port ?? (await freePort());
      const e = { ...base, ...opts.env, HTTP_ADDR: `127.0.0.1:${port}` };
      const p = spawn(bin, ["serve"], { env: e, stdio: ["ignore", "pipe", "pipe"] });
      const done = () => stop(p, "SIGTERM");
      cleanups.push(done);
      const logs: string[] = [];
      await waitForLine(p, /"msg":"listening on /, "server", logs);
      const aside = logs.map((l) => /"msg":"listening aside","setting":"METRICS_ADDR","addr":"([^"]+)"/.exec(l)).find((m) => m);
      if (!aside) throw new Error("the server did not say where its metrics are:\n" + logs.join("\n"));
      return { base: `http://127.0.0.1:${port}`, port, metrics: `http://${aside[1]}`, logs, stop: done };
    },
    async seed(users, rooms) {
      const out = join(dir, `seed-${users}-${rooms}-${Date.now()}.json`);
      await run(bin, ["loadtest-seed", "--users", String(users), "--rooms", String(rooms), "--members-per-room", String(users), "--out", out], { env: base });
      return JSON.parse(readFileSync(out, "utf8")) as Seed;
    },
  };
}

/** client returns an Api and a Live for a token on a server, in Node (the ws package), closed when the tests end. */
export function client(base: string | (() => string), token: string, opts: Partial<LiveOptions> = {}): { api: Api; live: Live } {
  const b = typeof base === "string" ? base : base();
  const api = new Api({ baseUrl: b, token });
  const live = new Live({
    api,
    WebSocket: WS,
    ...(typeof base === "function" ? { url: () => base().replace(/^http/, "ws") + "/ws" } : {}),
    ...opts,
  });
  cleanups.push(() => live.close());
  return { api, live };
}

/** until resolves once cond() holds, checking after every event loop turn; it fails after timeoutMs. */
export async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** seqs is 1..n. */
export function seqs(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
