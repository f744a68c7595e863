import assert from "node:assert/strict";
import { test } from "node:test";
import WS from "ws";

import { CGError, memoryStorage, reconnectAfter, type DebugEvent, type LiveState, type Message } from "../src/index.js";
import { client, seqs, system, until } from "./harness.js";

// received collects a room's messages, for the tests to compare with what was sent.
function received(): { list: Message[]; onMessage: (m: Message) => void } {
  const list: Message[] = [];
  return { list, onMessage: (m) => list.push(m) };
}

test("resume after a server restart: 1012's delay honoured, no gap, no duplicate; a reload resumes from storage", async () => {
  const sys = await system();
  let srv = await sys.start();
  const seed = await sys.seed(2, 1);
  const room = seed.rooms[0]!;
  const storage = memoryStorage();
  const events: (DebugEvent & { at: number })[] = [];
  const states: (LiveState & { at: number })[] = [];
  const sub = client(srv.base, seed.users[0]!.token, { storage, debug: (e) => events.push({ ...e, at: Date.now() }) });
  sub.live.onState((s) => states.push({ ...s, at: Date.now() }));
  const got = received();
  // Subscribed first: a first subscribe has no position to resume from, so messages committed
  // before it would be history, not deliveries.
  const s = sub.live.subscribe(room, got);
  await until(() => s.lastSeq !== null, "subscribed");
  const pub = client(srv.base, seed.users[1]!.token);

  await Promise.all(seqs(1, 5).map((i) => pub.live.send(room, `m${i}`)));
  await until(() => got.list.length === 5, "5 messages");

  // Ten more sends, some in flight as the server shuts down and comes back on its port.
  const later = seqs(6, 15).map((i) => pub.live.send(room, `m${i}`));
  await srv.stop();
  srv = await sys.start({ port: srv.port });
  const acks = await Promise.all(later);
  assert.deepEqual(acks.map((m) => m.content), seqs(6, 15).map((i) => `m${i}`));
  await until(() => got.list.length === 15, "15 messages");
  assert.deepEqual(got.list.map((m) => m.seq), seqs(1, 15));
  assert.deepEqual(got.list.map((m) => m.content), seqs(1, 15).map((i) => `m${i}`));

  // The close said when to come back, and the client waited that long.
  const closed = events.find((e) => e.kind === "closed" && e.detail.includes("1012"));
  assert.ok(closed, "a 1012 close");
  const delay = reconnectAfter(closed.detail);
  assert.ok(delay !== null && delay >= 500, `reconnect_after_ms in ${closed.detail}`);
  const i = states.findIndex((s) => s.at >= closed.at && s.status === "offline");
  assert.deepEqual({ status: states[i]!.status, retryInMs: (states[i] as { retryInMs: number }).retryInMs }, { status: "offline", retryInMs: delay });
  const next = states[i + 1]!;
  assert.equal(next.status, "connecting");
  assert.ok(next.at - states[i]!.at >= delay - 2, `reconnected after ${next.at - states[i]!.at} ms, asked ${delay}`);

  // A reload: a new client with the same storage resumes after the last seq seen.
  sub.live.close();
  await Promise.all(seqs(16, 18).map((i) => pub.live.send(room, `m${i}`)));
  const again = client(srv.base, seed.users[0]!.token, { storage });
  const got2 = received();
  again.live.subscribe(room, got2);
  await until(() => got2.list.length === 3, "3 messages after the reload");
  await Promise.all([pub.live.send(room, "m19")]);
  await until(() => got2.list.length === 4, "the live message after the reload");
  assert.deepEqual(got2.list.map((m) => m.seq), seqs(16, 19));
});

test("resume after a 4008 (slow consumer) with no gap and no duplicate", async () => {
  const sys = await system({ PUBLISH_RATE: "100000", PUBLISH_BURST: "100000" });
  const srv = await sys.start();
  const seed = await sys.seed(2, 1);
  const room = seed.rooms[0]!;
  const sockets: WS[] = [];
  class Watched extends WS {
    constructor(url: string, protocols?: string | string[], opts?: WS.ClientOptions) {
      super(url, protocols, opts);
      sockets.push(this);
    }
  }
  const events: DebugEvent[] = [];
  const sub = client(srv.base, seed.users[0]!.token, { WebSocket: Watched, debug: (e) => events.push(e) });
  const got = received();
  const s = sub.live.subscribe(room, got);
  await until(() => s.lastSeq !== null, "subscribed");

  // The subscriber stops reading; messages pile up at the server until it gives up on the socket.
  sockets[0]!.pause();
  const pub = client(srv.base, seed.users[1]!.token);
  const body = "x".repeat(3000);
  let sent = 0;
  const slow = async () => {
    const res = await fetch(srv.metrics + "/metrics");
    return /commongrounds_ws_slow_consumers_total [1-9]/.test(await res.text());
  };
  while (!(await slow())) {
    assert.ok(sent < 20_000, "no 4008 after 20,000 messages");
    await Promise.all(seqs(1, 100).map((i) => pub.api.postMessage(room, `${sent + i} ${body}`)));
    sent += 100;
  }
  sockets[0]!.resume();
  await until(() => got.list.length === sent, `${sent} messages`, 60_000);
  assert.ok(events.some((e) => e.kind === "closed" && e.detail.includes("4008")), "closed with 4008");
  assert.deepEqual(got.list.map((m) => m.seq), seqs(1, sent));
  assert.ok(sockets.length >= 2, "a new socket");
});

test("4001 ends the session: onSessionEnded, no reconnect, sends refused", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(1, 1);
  const room = seed.rooms[0]!;
  let ended = 0;
  const events: DebugEvent[] = [];
  const { api, live } = client(srv.base, seed.users[0]!.token, { onSessionEnded: () => ended++, debug: (e) => events.push(e) });
  live.subscribe(room);
  await until(() => live.state.status === "live", "live");
  await api.logout();
  await until(() => ended === 1, "onSessionEnded");
  assert.ok(events.some((e) => e.kind === "closed" && e.detail.includes("4001")));
  assert.deepEqual(live.state, { status: "offline", retryInMs: null });
  const dials = events.filter((e) => e.kind === "connect").length;
  live.reconnectNow();
  assert.deepEqual(live.state, { status: "offline", retryInMs: null });
  await assert.rejects(live.send(room, "hello"), (e: unknown) => e instanceof CGError && e.code === "closed");
  assert.equal(events.filter((e) => e.kind === "connect").length, dials);
  assert.equal(ended, 1);
});

test("two instances: a client moved from one to the other mid-stream misses nothing", async () => {
  const sys = await system();
  const a = await sys.start();
  const b = await sys.start();
  const seed = await sys.seed(2, 1);
  const room = seed.rooms[0]!;
  let target = a.base;
  const dials: string[] = [];
  const sub = client(() => target, seed.users[0]!.token, {
    auth: "header",
    debug: (e) => { if (e.kind === "connect") dials.push(e.detail); },
  });
  const got = received();
  const s = sub.live.subscribe(room, got);
  await until(() => s.lastSeq !== null, "subscribed on a");
  const pub = client(b.base, seed.users[1]!.token);
  const sends = seqs(1, 40).map((i) => pub.live.send(room, `m${i}`));
  await until(() => got.list.length >= 10, "10 messages on a");
  target = b.base;
  await a.stop();
  await Promise.all(sends);
  await until(() => got.list.length === 40, "40 messages");
  assert.deepEqual(got.list.map((m) => m.content), seqs(1, 40).map((i) => `m${i}`));
  assert.deepEqual(got.list.map((m) => m.seq), seqs(1, 40));
  assert.ok(dials.at(-1)!.includes(`:${b.port}/`), `last dial ${dials.at(-1)}`);
  assert.ok(dials[0]!.includes(`:${a.port}/`));
});

test("100 clients in one process: every message once and in order", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(100, 1);
  const room = seed.rooms[0]!;
  let subscribed = 0;
  const clients = seed.users.map((u) => {
    const c = client(srv.base, u.token, { auth: "header" });
    const got = received();
    c.live.subscribe(room, { ...got, onSubscribed: () => subscribed++ });
    return { ...c, got };
  });
  await until(() => subscribed === 100, "100 subscribed");
  const publishers = clients.slice(0, 10);
  await Promise.all(publishers.flatMap((p, j) => seqs(1, 5).map((i) => p.live.send(room, `p${j} m${i}`))));
  await until(() => clients.every((c) => c.got.list.length === 50), "50 messages at every client");
  const order = clients[0]!.got.list.map((m) => m.content);
  for (const c of clients) {
    assert.deepEqual(c.got.list.map((m) => m.seq), seqs(1, 50));
    assert.deepEqual(c.got.list.map((m) => m.content), order);
  }
  // Each publisher's messages in the order it sent them.
  for (let j = 0; j < 10; j++) {
    assert.deepEqual(order.filter((t) => t!.startsWith(`p${j} `)), seqs(1, 5).map((i) => `p${j} m${i}`));
  }
});
