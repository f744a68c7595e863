// Edits and deletions as events of the room's order: a client offline while they happen resumes
// from its last position and its RoomState ends as the history route shows the room.
import assert from "node:assert/strict";
import { test } from "node:test";

import { memoryStorage, RoomState, type ChangeFrame, type Message } from "../src/index.js";
import { client, system, until } from "./harness.js";

test("a client offline during edits and deletions resumes into the history's state", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(3, 1);
  const room = seed.rooms[0]!;
  const [reader, author, replier] = seed.users.map((u) => client(srv.base, u.token));
  const storage = memoryStorage();

  // The reader shows the history, then follows the room from its last_seq.
  const state = new RoomState();
  const changes: ChangeFrame[] = [];
  const follow = (live: typeof reader.live) =>
    live.subscribe(room, {
      onMessage: (m) => state.addMessage(m),
      onChange: (c) => {
        changes.push(c);
        state.applyChange(c);
      },
    });
  state.addPage(await reader!.api.messagePage(room));
  const first = client(srv.base, seed.users[0]!.token, { storage });
  const sub = follow(first.live);
  await until(() => sub.lastSeq !== null, "subscribed");

  const root = await author!.live.send(room, "a question");
  const reply = await replier!.live.send(room, "an answer", { parentId: root.id });
  await until(() => state.lastSeq === reply.seq, "the reply");
  assert.equal(state.get(root.id)?.reply_count, 1);

  // Offline (a reload): the root is edited, the reply deleted, and another reply comes.
  first.live.close();
  const edited = await author!.api.editMessage(root.id, "a better question");
  assert.equal(edited.content, "a better question");
  assert.ok(edited.edited_at !== null);
  await replier!.api.deleteMessage(reply.id);
  await replier!.api.deleteMessage(reply.id); // twice: nothing more happens
  const second = await replier!.live.send(room, "another answer", { parentId: root.id });

  const again = client(srv.base, seed.users[0]!.token, { storage });
  follow(again.live);
  const page = await reader!.api.messagePage(room);
  await until(() => state.lastSeq === page.last_seq, `position ${page.last_seq}`);
  assert.deepEqual(changes.map((c) => [c.type, c.message_id]), [["message_edited", root.id], ["message_deleted", reply.id]]);
  assert.ok(second.seq > reply.seq + 1, "the changes took positions between the replies");
  assert.deepEqual(state.messages(), page.messages);
  const r = state.get(reply.id) as Message;
  assert.deepEqual([r.deleted, r.content, r.anon_id !== null], [true, null, true]);
  assert.equal(state.get(root.id)?.reply_count, 2);
  again.live.close();
  for (const c of [reader, author, replier]) c!.live.close();
});
