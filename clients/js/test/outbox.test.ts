import assert from "node:assert/strict";
import { test } from "node:test";

import { CGError, type Message } from "../src/index.js";
import { client, seqs, system, until } from "./harness.js";

test("the outbox under PUBLISH_BURST=2 keeps 30 sends in order, each once", async () => {
  const sys = await system({ PUBLISH_BURST: "2", PUBLISH_RATE: "10" });
  const srv = await sys.start();
  const seed = await sys.seed(2, 1);
  const room = seed.rooms[0]!;
  const { api, live } = client(srv.base, seed.users[0]!.token);
  const watcher = client(srv.base, seed.users[1]!.token);
  const got: Message[] = [];
  const watching = watcher.live.subscribe(room, { onMessage: (m) => got.push(m) });
  await until(() => watching.lastSeq !== null, "the watcher subscribed");

  const texts = seqs(1, 30).map((i) => `message ${i}`);
  const acks = await Promise.all(texts.map((t) => live.send(room, t)));
  assert.deepEqual(acks.map((m) => m.content), texts);
  assert.deepEqual(acks.map((m) => m.seq), seqs(1, 30));
  await until(() => got.length === 30, "30 messages at the watcher");
  assert.deepEqual(got.map((m) => m.content), texts);
  const stored = [];
  for await (const m of api.newerMessages(room, { pageSize: 7 })) stored.push(m.content);
  assert.deepEqual(stored, texts);
  assert.deepEqual(live.pending(room), []);
});

test("content the server would refuse is refused locally with its code", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(1, 1);
  const room = seed.rooms[0]!;
  const { api, live } = client(srv.base, seed.users[0]!.token);
  for (const bad of ["x".repeat(4001), "   ", "a\u0000b", "b\u0085c", "\u2028"]) {
    const local = await live.send(room, bad).then(() => null, (e: unknown) => e);
    assert.ok(local instanceof CGError, `local ${JSON.stringify(bad.slice(0, 8))}`);
    assert.equal(local.code, "invalid_content");
    // The server says the same over HTTP.
    const remote = await api.postMessage(room, bad).then(() => null, (e: unknown) => e);
    assert.ok(remote instanceof CGError);
    assert.equal(remote.code, local.code);
    assert.equal(remote.status, local.status);
  }
  // A lone surrogate is not text: refused here (the server's JSON decoder would store U+FFFD instead).
  await assert.rejects(live.send(room, "a\ud800"), (e: unknown) => e instanceof CGError && e.code === "invalid_content");
  // 4000 characters after trimming are fine, as the server counts them (code points).
  const m = await live.send(room, "  " + "😀".repeat(4000) + "\r\n");
  assert.equal(m.content, "😀".repeat(4000));
});
