// The frames of the room protocol (docs/protocol.md) and their checks: a frame the library acts
// on is checked field by field before it is used, so that a malformed frame is reported rather
// than half applied.
import type { Message, Notification } from "./types.js";

/** A frame the server sends, once checked. */
export type ServerFrame =
  | {
      type: "subscribed"; ref?: string; room: string; anon_id: string; last_seq: number;
      online: number | null; online_fewer_than?: number; small_room: boolean; anonymity_k: number;
    }
  | { type: "unsubscribed"; ref?: string; room: string }
  | { type: "message"; room: string; message: Message }
  | { type: "ack"; ref?: string; message: Message }
  | ChangeFrame
  | { type: "presence"; room: string; online: number | null; online_fewer_than?: number }
  | { type: "typing"; room: string; anon_id: string }
  | { type: "pong"; ref?: string }
  | { type: "error"; ref?: string; code: string; message: string; retry_after_ms?: number }
  | { type: "read"; ref?: string; room: string; seq: number }
  | { type: "notification"; notification: Notification };

/** The kinds of change to a message: each an event of the room's order at its own position `seq`. */
export type ChangeType = "message_edited" | "message_deleted" | "message_hidden" | "message_restored" | "message_erased";

/** A change to a message: its position in the room's order, and the message as it is after it. */
export interface ChangeFrame {
  type: ChangeType;
  room: string;
  seq: number;
  message_id: string;
  message: Message;
}

/** A frame the client sends. */
export type ClientFrame =
  | { type: "subscribe"; ref: string; room: string; since_seq?: number }
  | { type: "unsubscribe"; ref: string; room: string }
  | { type: "publish"; ref: string; room: string; content: string; parent_id?: string; client_msg_id: string }
  | { type: "typing"; room: string }
  | { type: "ping"; ref: string }
  | { type: "read"; ref: string; room: string; seq: number };

/** A check of one field's value. */
export type Check = (v: unknown) => boolean;

const str: Check = (v) => typeof v === "string";
const optStr: Check = (v) => v === undefined || typeof v === "string";
const nullStr: Check = (v) => v === null || typeof v === "string";
const seq: Check = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0;
const count: Check = seq;
const bool: Check = (v) => typeof v === "boolean";
const optCount: Check = (v) => v === undefined || seq(v);
const nullCount: Check = (v) => v === null || seq(v);
const positive: Check = (v) => typeof v === "number" && Number.isInteger(v) && v >= 1;
const optPositive: Check = (v) => v === undefined || positive(v);
const hiddenBy: Check = (v) => v === null || v === "flags" || v === "moderator";

/** The fields of a Message and their checks. */
export const messageFields: Record<string, Check> = {
  id: str, room: str, seq, anon_id: nullStr, content: nullStr, parent_id: nullStr,
  reply_count: count, created_at: str, hidden: bool, hidden_by: hiddenBy, deleted: bool,
  edited_at: nullStr,
};
const message: Check = (v) => fields(v, messageFields) === "";

/** The fields of a Notification and their checks. */
export const notificationFields: Record<string, Check> = {
  id: str, room: str, thread_id: str, message_id: str, anon_id: str, excerpt: str, created_at: str, read: bool,
};
const notification: Check = (v) => fields(v, notificationFields) === "";

/** The fields of each server frame type and their checks. */
export const serverFrameFields: Record<ServerFrame["type"], Record<string, Check>> = {
  subscribed: {
    type: str, ref: optStr, room: str, anon_id: str, last_seq: seq,
    online: nullCount, online_fewer_than: optPositive, small_room: bool, anonymity_k: positive,
  },
  unsubscribed: { type: str, ref: optStr, room: str },
  message: { type: str, room: str, message },
  ack: { type: str, ref: optStr, message },
  message_edited: { type: str, room: str, seq: positive, message_id: str, message },
  message_deleted: { type: str, room: str, seq: positive, message_id: str, message },
  message_hidden: { type: str, room: str, seq: positive, message_id: str, message },
  message_restored: { type: str, room: str, seq: positive, message_id: str, message },
  message_erased: { type: str, room: str, seq: positive, message_id: str, message },
  presence: { type: str, room: str, online: nullCount, online_fewer_than: optPositive },
  typing: { type: str, room: str, anon_id: str },
  pong: { type: str, ref: optStr },
  error: { type: str, ref: optStr, code: str, message: str, retry_after_ms: optCount },
  read: { type: str, ref: optStr, room: str, seq },
  notification: { type: str, notification },
};

// fields returns the name of the first field of v that fails its check, or "" when all pass.
function fields(v: unknown, checks: Record<string, Check>): string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "(frame)";
  const o = v as Record<string, unknown>;
  for (const [k, check] of Object.entries(checks)) if (!check(o[k])) return k;
  return "";
}

/** The outcome of reading one text frame. */
export type ParsedFrame =
  | { kind: "frame"; frame: ServerFrame; unknownFields: string[] }
  | { kind: "unknown_type"; type: string }
  | { kind: "malformed"; reason: string };

/** parseFrame reads one text frame of the server. */
export function parseFrame(data: unknown): ParsedFrame {
  if (typeof data !== "string") return { kind: "malformed", reason: "not a text frame" };
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return { kind: "malformed", reason: "not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { kind: "malformed", reason: "not a JSON object" };
  const type = (v as { type?: unknown }).type;
  if (typeof type !== "string") return { kind: "malformed", reason: "no type" };
  if (!Object.prototype.hasOwnProperty.call(serverFrameFields, type)) return { kind: "unknown_type", type };
  const checks = serverFrameFields[type as ServerFrame["type"]];
  const bad = fields(v, checks);
  if (bad !== "") return { kind: "malformed", reason: `${type}: bad ${bad}` };
  const unknownFields = Object.keys(v).filter((k) => !(k in checks));
  const m = (v as { message?: unknown }).message;
  if (typeof m === "object" && m !== null) for (const k of Object.keys(m)) if (!(k in messageFields)) unknownFields.push("message." + k);
  return { kind: "frame", frame: v as ServerFrame, unknownFields };
}
