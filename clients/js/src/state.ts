// RoomState is a room's messages as the room's events leave them, by the rules of
// docs/protocol.md ("Ordering and resuming"): each message keeps the position its state came
// from, a frame older than that changes nothing, and a reply raises its root's count only when it
// is newer than the root's state.
import type { ChangeFrame } from "./frames.js";
import type { Message, MessagePage } from "./types.js";

interface Held {
  message: Message;
  position: number;
}

/** A room's messages, kept up to date from a history page and the room's events. */
export class RoomState {
  private readonly held = new Map<string, Held>();
  private last = 0;

  /** The highest position applied: resume the room from it (`since_seq`). */
  get lastSeq(): number {
    return this.last;
  }

  /** addPage takes a page of the history route, whose messages are as of its `last_seq`. */
  addPage(page: MessagePage): void {
    for (const m of page.messages) this.put(m, page.last_seq);
    this.last = Math.max(this.last, page.last_seq);
  }

  /** addMessage takes a new message (a `message` frame, or the ack of one's own), at its seq. */
  addMessage(m: Message): void {
    const pos = m.seq;
    if (m.parent_id !== null && !this.seen(m.id, pos)) {
      const root = this.held.get(m.parent_id);
      if (root && pos > root.position) root.message = { ...root.message, reply_count: root.message.reply_count + 1 };
    }
    this.put(m, pos);
    this.last = Math.max(this.last, pos);
  }

  /** applyChange takes a change frame: the message as the change left it, at the change's position. */
  applyChange(f: Pick<ChangeFrame, "seq" | "message">): void {
    this.put(f.message, f.seq);
    this.last = Math.max(this.last, f.seq);
  }

  /** get returns a message as it is now. */
  get(id: string): Message | undefined {
    return this.held.get(id)?.message;
  }

  /** messages returns every message held, in ascending seq. */
  messages(): Message[] {
    return [...this.held.values()].map((h) => h.message).sort((a, b) => a.seq - b.seq);
  }

  // seen reports whether the message is held already with a state at least as new as pos.
  private seen(id: string, pos: number): boolean {
    const h = this.held.get(id);
    return h !== undefined && h.position >= pos;
  }

  private put(m: Message, pos: number): void {
    if (this.seen(m.id, pos)) return;
    this.held.set(m.id, { message: m, position: pos });
  }
}
