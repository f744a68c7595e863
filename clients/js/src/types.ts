// The data the server sends, as docs/api.md and docs/protocol.md describe it. Identifiers are
// UUID strings and times RFC 3339 strings in UTC.

/** A user's role. */
export type Role = "student" | "moderator";

/** The signed-in user's account. */
export interface User {
  id: string;
  email: string;
  computing_id: string | null;
  email_verified: boolean;
  phone_verified: boolean;
  role: Role;
  created_at: string;
}

/** Another user, as users see each other. */
export interface PublicUser {
  id: string;
  email: string;
  computing_id: string | null;
}

/** A session started by a sign-in link. */
export interface Session {
  token: string;
  expires_at: string;
  user: User;
}

/** A single-use WebSocket ticket. */
export interface Ticket {
  ticket: string;
  expires_at: string;
}

/** A class section of the university's class search. */
export interface Class {
  id: string;
  subject: string;
  catalog_number: string;
  term: string;
  title: string | null;
  class_section: string | null;
  component: string | null;
  instructor: string | null;
  days: string | null;
  start_time: string | null;
  end_time: string | null;
  location: string | null;
  class_capacity: number | null;
  enrollment_available: number | null;
  sis_class_number: string | null;
}

/**
 * A class with the number of users enrolled in it: exact from the anonymity threshold K up; below
 * it `enrolled_count` is null and `enrolled_fewer_than` is K ("fewer than 5 enrolled").
 */
export interface ClassDetail extends Class {
  enrolled_count: number | null;
  enrolled_fewer_than?: number;
}

/** What a client may know of the server before signing in (GET /api/v1/config). */
export interface ServerConfig {
  /** The domain sign-in addresses must have. */
  email_domain: string;
  /** `email`: sign-in links are mailed; `server_output`: the server prints them in its output (development). */
  sign_in_links: "email" | "server_output";
}

/** The answer to a friend request named by e-mail or computing id: the same whether an account exists or not. */
export interface FriendRequested {
  status: "requested";
}

/** A message of a class room; it names its author only by the room's pseudonym. */
export interface Message {
  id: string;
  room: string;
  seq: number;
  anon_id: string | null;
  content: string | null;
  parent_id: string | null;
  reply_count: number;
  created_at: string;
  hidden: boolean;
  /** Who hid it: "flags" (show "hidden after reports") or "moderator"; null when not hidden. */
  hidden_by: "flags" | "moderator" | null;
  deleted: boolean;
  /** When its author last edited it; null when never. */
  edited_at: string | null;
}

/** An earlier content of a message, for moderators: replaced by an edit, or removed by its author's deletion of a flagged message. */
export interface MessageVersion {
  version: number;
  content: string;
  written_at: string;
  replaced_at: string;
  reason: "edited" | "deleted";
}

/** A flagged message, for moderators, with its earlier contents (oldest first). */
export interface FlaggedMessage extends Message {
  flag_count: number;
  versions: MessageVersion[];
}

/** A page of a room's history and the room's last event position when it was read: resume the room from it. */
export interface MessagePage {
  messages: Message[];
  last_seq: number;
}

/** The state of a friend request. */
export type FriendStatus = "PENDING" | "ACCEPTED" | "REJECTED";

/** A friend request; `user` is the other user. */
export interface FriendRequest {
  id: string;
  user: PublicUser;
  status: FriendStatus;
  created_at: string;
}

/** A friend, with the time the friendship was accepted. */
export interface Friend extends PublicUser {
  since: string;
}

/** Someone the caller may know. */
export interface Suggestion {
  user: PublicUser;
  shared_classes: number;
  in_contacts: boolean;
}

/** A user found among the caller's phone contacts. */
export interface ContactMatch {
  user_id: string;
  email: string;
  computing_id: string | null;
  friendship_status: FriendStatus | null;
}

/** A thread: its root and its replies in seq order. */
export interface Thread {
  root: Message;
  replies: Message[];
}

/** A class of the caller's, with the caller's read marker and how much is unread. */
export interface RoomUnread extends Class {
  /** The position of the room's order the caller has read up to (0 before the first marker). */
  read_seq: number;
  /** Messages by others after read_seq that are neither hidden nor deleted, up to 99. */
  unread: number;
  /** There are more than 99 unread messages (show "99+"). */
  unread_more: boolean;
}

/** Where the caller's read marker in a room stands. */
export interface ReadMarker {
  room: string;
  seq: number;
}

/** A reply in a thread the caller takes part in; it names the replier only by the class's pseudonym. */
export interface Notification {
  id: string;
  room: string;
  thread_id: string;
  message_id: string;
  /** Empty once the reply is erased. */
  anon_id: string;
  /** At most 140 characters of the reply (… when cut); empty once the reply is hidden, deleted or erased. */
  excerpt: string;
  created_at: string;
  read: boolean;
}

/** A page of the inbox, newest first. */
export interface NotificationPage {
  notifications: Notification[];
  /** All the caller's unread notifications. */
  unread: number;
  next_cursor: string | null;
}

/** A mute of a room (thread_id null) or of one thread. */
export interface Mute {
  room: string;
  thread_id: string | null;
  created_at: string;
}

/** What a mute names: a room or a thread, one of them. */
export type MuteTarget = { room: string } | { thread_id: string };

/**
 * A browser's Web Push subscription as `PushSubscription.toJSON()` gives it (the DOM type
 * `PushSubscriptionJSON` fits): the Push API's field names, which the server takes as they are.
 */
export interface BrowserPushSubscription {
  endpoint?: string;
  expirationTime?: number | null;
  keys?: Record<string, string>;
}

/** A Web Push subscription as its owner sees it, without its keys. */
export interface PushSubscriptionInfo {
  endpoint: string;
  expiration_time: string | null;
  created_at: string;
}

/** One page of a keyset-paginated list. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
