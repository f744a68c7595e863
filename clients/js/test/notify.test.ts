// Read markers and notifications on the live socket, against a fake server that speaks the
// protocol's wire format.
import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import WS, { WebSocketServer } from "ws";

import { Api, Live, type Notification } from "../src/index.js";
import { until } from "./harness.js";

const room = "6f1c0e2a-1111-4222-8333-444455556666";
const note: Notification = {
  id: "00000000-0000-4000-8000-000000000001", room, thread_id: "00000000-0000-4000-8000-000000000002",
  message_id: "00000000-0000-4000-8000-000000000003", anon_id: "Anon_a3f2e1", excerpt: "an answer",
  created_at: "2026-12-08T01:23:45.678Z", read: false,
};

test("markRead is answered with the marker; read and notification frames reach onRead and onNotification", async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const port = (wss.address() as { port: number }).port;
  const sent: unknown[] = [];
  wss.on("connection", (ws: WS) => {
    // Another device moved the marker, and a reply came: neither needs a subscription.
    ws.send(JSON.stringify({ type: "read", room, seq: 4 }));
    ws.send(JSON.stringify({ type: "notification", notification: note }));
    ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as { type: string; ref: string; room: string; seq: number };
      if (f.type !== "read") return;
      sent.push(f);
      ws.send(JSON.stringify({ type: "read", ref: f.ref, room: f.room, seq: Math.min(f.seq, 7) }));
    });
  });
  const api = new Api({ baseUrl: `http://127.0.0.1:${port}`, token: "t0ken" });
  const reads: [string, number][] = [];
  const notes: Notification[] = [];
  const live = new Live({
    api, WebSocket: WS, auth: "header",
    onRead: (r, seq) => reads.push([r, seq]),
    onNotification: (n) => notes.push(n),
  });
  live.connect();
  await until(() => notes.length === 1 && live.state.status === "live", "the notification");
  live.markRead(room, 100);
  await until(() => reads.length === 2, "the marker's reply");
  live.close();
  wss.close();
  assert.deepEqual(notes, [note]);
  assert.deepEqual(reads, [[room, 4], [room, 7]]);
  assert.equal(sent.length, 1);
  assert.deepEqual({ ...(sent[0] as object), ref: "" }, { type: "read", ref: "", room, seq: 100 });
});
