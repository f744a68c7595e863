// Against a fake server that speaks the protocol's wire format, for what a real server never sends.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import WS, { WebSocketServer } from "ws";

import { Api, Live, type DebugEvent, type Message } from "../src/index.js";
import { until } from "./harness.js";

const room = "6f1c0e2a-1111-4222-8333-444455556666";

function message(seq: number): Message {
  return {
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, "0")}`, room, seq, anon_id: "Anon_a3f2e1",
    content: `m${seq}`, parent_id: null, reply_count: 0, created_at: "2026-01-20T15:04:05Z", hidden: false, hidden_by: null, deleted: false, edited_at: null,
  };
}

test("a malformed frame is reported and the connection resyncs; unknown types and fields are ignored", async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const port = (wss.address() as { port: number }).port;
  const subscribes: { since_seq?: number; auth: string | undefined }[] = [];
  wss.on("connection", (ws: WS, req) => {
    const n = subscribes.length;
    ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as { type: string; ref: string; since_seq?: number };
      if (f.type !== "subscribe") return;
      subscribes.push({ ...(f.since_seq === undefined ? {} : { since_seq: f.since_seq }), auth: req.headers.authorization });
      ws.send(JSON.stringify({ type: "subscribed", ref: f.ref, room, anon_id: "Anon_a3f2e1", last_seq: n === 0 ? 0 : 1, online: null, online_fewer_than: 5, small_room: true, anonymity_k: 5 }));
      if (n === 0) {
        ws.send(JSON.stringify({ type: "sparkle", room }));
        ws.send(JSON.stringify({ type: "message", room, message: { ...message(1), mood: "sunny" }, extra: 1 }));
        ws.send(JSON.stringify({ type: "message", room, message: { ...message(2), seq: "two" } }));
        ws.send(JSON.stringify({ type: "message", room, message: message(3) })); // never read: the client left
      } else {
        ws.send(JSON.stringify({ type: "message", room, message: message(2) }));
      }
    });
  });
  const events: DebugEvent[] = [];
  const api = new Api({ baseUrl: `http://127.0.0.1:${port}`, token: "t0ken" });
  const live = new Live({ api, WebSocket: WS, auth: "header", debug: (e) => events.push(e) });
  const got: Message[] = [];
  live.subscribe(room, { onMessage: (m) => got.push(m) });
  await until(() => got.length === 2, "two messages");
  live.close();
  wss.close();

  assert.deepEqual(got.map((m) => m.seq), [1, 2]);
  assert.deepEqual(subscribes, [{ auth: "Bearer t0ken" }, { since_seq: 1, auth: "Bearer t0ken" }]);
  const kinds = events.map((e) => e.kind).filter((k) => k !== "connect" && k !== "closed");
  assert.deepEqual(kinds, ["unknown_type", "unknown_field", "malformed"]);
  assert.match(events.find((e) => e.kind === "unknown_field")!.detail, /extra, message\.mood/);
  assert.match(events.find((e) => e.kind === "malformed")!.detail, /message: bad message/);
});

test("a rate-limited subscribe waits retry_after_ms; a refused one ends with onError", async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const port = (wss.address() as { port: number }).port;
  const other = "6f1c0e2a-1111-4222-8333-777777777777";
  const seen: { room: string; at: number }[] = [];
  wss.on("connection", (ws: WS) => {
    ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as { type: string; ref: string; room: string };
      if (f.type !== "subscribe") return;
      seen.push({ room: f.room, at: Date.now() });
      if (f.room === other) {
        ws.send(JSON.stringify({ type: "error", ref: f.ref, code: "not_enrolled", message: "Enroll first." }));
      } else if (seen.filter((s) => s.room === room).length === 1) {
        ws.send(JSON.stringify({ type: "error", ref: f.ref, code: "rate_limited", message: "Slow down.", retry_after_ms: 300 }));
      } else {
        ws.send(JSON.stringify({ type: "subscribed", ref: f.ref, room, anon_id: "Anon_a3f2e1", last_seq: 7, online: 7, small_room: false, anonymity_k: 5 }));
      }
    });
  });
  const api = new Api({ baseUrl: `http://127.0.0.1:${port}`, token: "t0ken" });
  const live = new Live({ api, WebSocket: WS, auth: "header" });
  let refused: unknown = null;
  let lastSeq = -1;
  live.subscribe(other, { onError: (e) => { refused = e; } });
  live.subscribe(room, { onSubscribed: (i) => { lastSeq = i.lastSeq; } });
  await until(() => lastSeq === 7 && refused !== null, "both answered");
  live.close();
  wss.close();
  assert.equal((refused as { code: string }).code, "not_enrolled");
  const tries = seen.filter((s) => s.room === room);
  assert.equal(tries.length, 2);
  assert.ok(tries[1]!.at - tries[0]!.at >= 298, `retried after ${tries[1]!.at - tries[0]!.at} ms`);
});
