// What the browser tests run against: the server's binary built from this checkout (CG_SERVER_BIN
// names a built one), on a free port with a fresh PostgreSQL database named like the Go tests'
// (cgtest_<unix time>_<pid>_…, so that a crashed run's leftovers are swept by later runs), and
// an SMTP sink that the server mails sign-in links to. Everything is removed when the tests end.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../..");

const adminURL = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
const runID = `${Math.floor(Date.now() / 1000)}_${process.pid}`;
let dbSeq = 0;

/** Cleanups run in reverse order by env.close(). */
export class Env {
  constructor() {
    this.work = mkdtempSync(join(tmpdir(), "cge2e-"));
    this.cleanups = [];
  }

  async close() {
    for (const c of this.cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        console.error("cleanup:", err);
      }
    }
    rmSync(this.work, { recursive: true, force: true });
  }

  /** binary builds the server once (CG_SERVER_BIN names a built one). */
  async binary() {
    if (process.env.CG_SERVER_BIN) return process.env.CG_SERVER_BIN;
    this.bin ??= (async () => {
      const out = join(this.work, "commongrounds");
      await run("go", ["build", "-o", out, "./cmd/commongrounds"], { cwd: repoRoot });
      return out;
    })();
    return this.bin;
  }

  /** database names a new database, dropped at close. */
  database() {
    const name = `cgtest_${runID}_e2e${++dbSeq}`;
    this.cleanups.push(() => run("psql", [adminURL, "-q", "-c", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]));
    const u = new URL(adminURL);
    u.pathname = "/" + name;
    return u.toString();
  }

  /**
   * system returns a server configuration (a database, secrets, a port, the SMTP sink) whose
   * start() runs the server, again on the same port and database after a stop().
   */
  async system(env = {}) {
    const bin = await this.binary();
    const smtp = await smtpSink();
    this.cleanups.push(() => smtp.close());
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const vars = {
      PATH: process.env.PATH ?? "",
      DATABASE_URL: this.database(),
      SECRETS_FILE: join(mkdtempSync(join(this.work, "sys-")), "secrets.json"),
      HTTP_ADDR: `127.0.0.1:${port}`,
      PUBLIC_BASE_URL: base,
      METRICS_ADDR: "127.0.0.1:0",
      LOG_FORMAT: "json",
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}?tls=none`,
      ANONYMITY_K: "2",
      FLAG_HIDE_THRESHOLD: "2",
      SHUTDOWN_TIMEOUT: "5s",
      ...env,
    };
    if (env.SMTP_URL === "") delete vars.SMTP_URL;
    const sys = {
      base,
      smtp,
      env: vars,
      logs: [],
      proc: null,
      start: async () => {
        const p = spawn(bin, ["serve"], { env: vars, stdio: ["ignore", "pipe", "pipe"] });
        sys.proc = p;
        const stop = () => stopProcess(p);
        this.cleanups.push(stop);
        await waitForLine(p, /"msg":"listening on /, sys.logs);
      },
      stop: () => stopProcess(sys.proc),
      /** command runs one of the server's administrative commands against this system. */
      command: (...args) => run(bin, args, { env: vars }),
    };
    await sys.start();
    return sys;
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => res(a.port));
    });
  });
}

function stopProcess(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    p.once("exit", () => res());
    p.kill("SIGTERM");
  });
}

// waitForLine resolves once a line of the child's output matches re; it keeps draining after.
function waitForLine(p, re, logs) {
  return new Promise((res, rej) => {
    let buf = "";
    let done = false;
    const onData = (chunk) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        if (!done && re.test(line)) {
          done = true;
          res();
        }
      }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.once("exit", (code) => { if (!done) rej(new Error(`the server exited (${code}) before it was ready:\n${logs.join("\n")}`)); });
  });
}

/**
 * smtpSink is a minimal SMTP server (RFC 5321: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, no TLS,
 * no AUTH) that keeps every message; link(address) resolves with the sign-in link of the next
 * message to that address.
 */
export function smtpSink() {
  const messages = [];
  const waiters = [];
  const deliver = (m) => {
    messages.push(m);
    for (const w of [...waiters]) {
      const i = messages.findIndex((x) => !x.taken && x.to.includes(w.to));
      if (i >= 0) {
        messages[i].taken = true;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(messages[i]);
      }
    }
  };
  const server = createServer((sock) => {
    let buf = "";
    let data = null;
    let env = { from: "", to: [] };
    const reply = (s) => sock.write(s + "\r\n");
    reply("220 sink ESMTP");
    sock.on("data", (chunk) => {
      buf += chunk.toString("latin1");
      let i;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (data !== null) {
          if (line === ".") {
            deliver({ ...env, raw: data.join("\r\n"), taken: false });
            data = null;
            env = { from: "", to: [] };
            reply("250 OK");
          } else data.push(line.startsWith("..") ? line.slice(1) : line);
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === "EHLO" || cmd === "HELO") reply("250-sink\r\n250 8BITMIME");
        else if (cmd === "MAIL") { env.from = /<([^>]*)>/.exec(line)?.[1] ?? ""; reply("250 OK"); }
        else if (cmd === "RCPT") { env.to.push((/<([^>]*)>/.exec(line)?.[1] ?? "").toLowerCase()); reply("250 OK"); }
        else if (cmd === "DATA") { data = []; reply("354 go on"); }
        else if (cmd === "RSET") { env = { from: "", to: [] }; reply("250 OK"); }
        else if (cmd === "NOOP") reply("250 OK");
        else if (cmd === "QUIT") { reply("221 bye"); sock.end(); }
        else reply("502 not implemented");
      }
    });
    sock.on("error", () => {});
  });
  return new Promise((res) => {
    server.listen(0, "127.0.0.1", () => {
      res({
        port: server.address().port,
        messages,
        next(to) {
          to = to.toLowerCase();
          const i = messages.findIndex((x) => !x.taken && x.to.includes(to));
          if (i >= 0) {
            messages[i].taken = true;
            return Promise.resolve(messages[i]);
          }
          return new Promise((resolve) => waiters.push({ to, resolve }));
        },
        async link(to) {
          const m = await this.next(to);
          const text = decodeQuotedPrintable(m.raw);
          const found = /https?:\/\/[^\s"<>]+\/auth\/verify\?token=[\w-]+/.exec(text);
          if (!found) throw new Error("no sign-in link in the mail:\n" + m.raw);
          return found[0];
        },
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

// decodeQuotedPrintable undoes soft line breaks and =XX escapes (the mail's text part).
function decodeQuotedPrintable(s) {
  return s.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}
