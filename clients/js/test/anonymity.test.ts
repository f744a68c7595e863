// Small rooms and erased messages as the library hands them over: counts below the anonymity
// threshold K are null with K as their "fewer than", small_room says when the pseudonyms hide
// little, and an erasure of a deleted account's message reaches onErased.
import assert from "node:assert/strict";
import { test } from "node:test";

import type { Message, OnlineCount, SubscribedInfo } from "../src/index.js";
import { client, system, until } from "./harness.js";

test("counts below ANONYMITY_K are fewer-than, small_room is told, an erased message reaches onErased", async () => {
  const sys = await system({ ANONYMITY_K: "2", ERASE_SPREAD: "1ms" });
  const srv = await sys.start();
  const seed = await sys.seed(2, 1);
  const room = seed.rooms[0]!;

  const infos: SubscribedInfo[] = [];
  const presences: OnlineCount[] = [];
  const messages: Message[] = [];
  const erased: string[] = [];
  const a = client(srv.base, seed.users[0]!.token);
  a.live.subscribe(room, {
    onSubscribed: (i) => infos.push(i),
    onPresence: (p) => presences.push(p),
    onMessage: (m) => messages.push(m),
    onErased: (id) => erased.push(id),
  });
  await until(() => infos.length === 1, "subscribed");
  // Two enrolled (not a small room under K=2), one online (fewer than 2).
  const { anonId, ...rest } = infos[0]!;
  assert.ok(anonId.length > 0);
  assert.deepEqual(rest, { lastSeq: 0, online: null, fewerThan: 2, smallRoom: false, anonymityK: 2 });

  // A second user online makes the count exact.
  const b = client(srv.base, seed.users[1]!.token);
  b.live.subscribe(room);
  await until(() => presences.some((p) => p.online === 2), "presence of 2");
  assert.deepEqual(presences.find((p) => p.online === 2), { online: 2, fewerThan: null });

  const m = await b.live.send(room, "soon erased");
  await until(() => messages.some((x) => x.id === m.id), "the message");

  // The author deletes the account asking for erasure: the count drops below K again, and the
  // message is erased by the erasure job (a second instance runs it as it starts).
  await b.api.deleteMe({ eraseMessages: true });
  await until(() => presences.at(-1)!.online === null, "presence below K");
  assert.deepEqual(presences.at(-1), { online: null, fewerThan: 2 });
  const srv2 = await sys.start();
  await until(() => erased.includes(m.id), "message_erased");
  const stored = (await a.api.messages(room)).find((x) => x.id === m.id);
  assert.deepEqual(
    { deleted: stored?.deleted, content: stored?.content, anon_id: stored?.anon_id },
    { deleted: true, content: null, anon_id: null },
  );

  // One user enrolled now: a small room.
  const infos2: SubscribedInfo[] = [];
  const a2 = client(srv2.base, seed.users[0]!.token);
  a2.live.subscribe(room, { onSubscribed: (i) => infos2.push(i) });
  await until(() => infos2.length === 1, "subscribed on the second instance");
  assert.deepEqual(
    { online: infos2[0]!.online, fewerThan: infos2[0]!.fewerThan, smallRoom: infos2[0]!.smallRoom, anonymityK: infos2[0]!.anonymityK },
    { online: null, fewerThan: 2, smallRoom: true, anonymityK: 2 },
  );
});
