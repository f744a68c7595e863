import { CGError } from "./errors.js";
import type {
  BrowserPushSubscription, Class, ClassDetail, ContactMatch, FlaggedMessage, Friend, FriendRequest, FriendRequested,
  Message, MessagePage, MessageVersion, Mute, MuteTarget, NotificationPage, Page, PublicUser, PushSubscriptionInfo,
  ReadMarker, RoomUnread, ServerConfig, Session, Suggestion, Thread, Ticket, User,
} from "./types.js";

/** The subset of the platform's fetch the library uses (browsers, Node >= 18 and React Native have it). */
export type FetchLike = (input: string, init: {
  method: string;
  headers: Record<string, string>;
  body?: string;
  cache?: "no-store";
}) => Promise<{
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

/** A session token, or a function that returns the current one (read before every request). */
export type TokenSource = string | null | (() => string | null | Promise<string | null>);

/** Options of an Api. */
export interface ApiOptions {
  /** The server's origin, such as `https://chat.example.edu`; "" for the page's own origin in a browser. */
  baseUrl: string;
  /** The session token; calls that need a session fail with 401 `unauthorized` without one. */
  token?: TokenSource;
  /** The fetch to use; the global one by default. */
  fetch?: FetchLike;
}

/** The search parameters of GET /api/v1/classes. */
export interface ClassQuery {
  term?: string;
  subject?: string;
  catalog_number?: string;
  q?: string;
  /** Page size, 1 to 200 (default 50). */
  limit?: number;
}

/** Which messages of a room GET /api/v1/classes/{id}/messages returns. */
export interface MessageQuery {
  after_seq?: number;
  before_seq?: number;
  limit?: number;
}

/** Who a friend request goes to: exactly one of the three. */
export type FriendTarget = { email: string } | { computing_id: string } | { user_id: string };

const enc = encodeURIComponent;

/**
 * Api is a typed call for every route of the HTTP API (docs/api.md). Every failure is a CGError;
 * lists with keyset pagination are async iterators over their items.
 */
export class Api {
  readonly baseUrl: string;
  private readonly token: TokenSource;
  private readonly fetchFn: FetchLike;

  constructor(opts: ApiOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token ?? null;
    const g = globalThis as { fetch?: FetchLike };
    if (!opts.fetch && !g.fetch) throw new TypeError("Api: no fetch on this platform; pass options.fetch");
    // The global fetch is called as a function of the global object (browsers refuse it otherwise).
    this.fetchFn = opts.fetch ?? ((input, init) => g.fetch!(input, init));
  }

  /** The current session token, if any. */
  async currentToken(): Promise<string | null> {
    return typeof this.token === "function" ? await this.token() : this.token;
  }

  /**
   * request sends one JSON request and returns the decoded reply (undefined for 204). It is the
   * one place the library talks HTTP; the typed calls below are built on it.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = await this.currentToken();
    if (token) headers["Authorization"] = "Bearer " + token;
    const init: Parameters<FetchLike>[1] = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await this.fetchFn(this.baseUrl + path, init);
    } catch (err) {
      throw new CGError(0, "network", err instanceof Error ? err.message : String(err));
    }
    const text = res.status === 204 ? "" : await res.text();
    let data: unknown = undefined;
    if (text !== "" && /json/.test(res.headers.get("Content-Type") ?? "")) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (!res.ok) {
      const p = (typeof data === "object" && data !== null ? data : {}) as { code?: unknown; detail?: unknown; title?: unknown };
      const seconds = Number(res.headers.get("Retry-After"));
      throw new CGError(
        res.status,
        typeof p.code === "string" ? p.code : "http_" + res.status,
        typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : `${res.status} ${res.statusText}`,
        Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : null,
      );
    }
    if (res.status !== 204 && data === undefined && text !== "") {
      throw new CGError(res.status, "invalid_reply", "The server's reply was not JSON.");
    }
    return data as T;
  }

  // pages walks a keyset-paginated list from its first page.
  private async *pages<T>(path: string, params: Record<string, string>, key: string): AsyncGenerator<T[], void, undefined> {
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams(params);
      if (cursor !== null) q.set("cursor", cursor);
      const s = q.toString();
      const page: Record<string, unknown> = await this.request("GET", path + (s ? "?" + s : ""));
      yield (page[key] ?? []) as T[];
      cursor = (page["next_cursor"] as string | null | undefined) ?? null;
    } while (cursor !== null);
  }

  // ---- Server

  /** GET /api/v1/config: what the client may know of the server before signing in (public). */
  config(): Promise<ServerConfig> {
    return this.request("GET", "/api/v1/config");
  }

  // ---- Auth

  /** POST /api/v1/auth/magic-link: mails a sign-in link. */
  async requestMagicLink(email: string): Promise<void> {
    await this.request("POST", "/api/v1/auth/magic-link", { email });
  }
  /** POST /api/v1/auth/verify: uses a link's token and starts a session. */
  verify(token: string): Promise<Session> {
    return this.request("POST", "/api/v1/auth/verify", { token });
  }
  /** POST /api/v1/auth/logout: ends the caller's session (its sockets are closed with 4001). */
  async logout(): Promise<void> {
    await this.request("POST", "/api/v1/auth/logout");
  }
  /** POST /api/v1/auth/ws-ticket: a single-use ticket that opens one socket, for browsers. */
  wsTicket(): Promise<Ticket> {
    return this.request("POST", "/api/v1/auth/ws-ticket");
  }

  // ---- Me

  /** GET /api/v1/me: the caller's account. */
  me(): Promise<User> {
    return this.request("GET", "/api/v1/me");
  }
  /**
   * DELETE /api/v1/me: deletes the caller's account and everything it owns. With `eraseMessages`,
   * its messages also become tombstones, each at its own random time.
   */
  async deleteMe(opts: { eraseMessages?: boolean } = {}): Promise<void> {
    await this.request("DELETE", "/api/v1/me" + (opts.eraseMessages ? "?erase_messages=true" : ""));
  }
  /** POST /api/v1/me/phone: texts a code to the number. */
  async startPhoneVerification(phone: string): Promise<void> {
    await this.request("POST", "/api/v1/me/phone", { phone });
  }
  /** POST /api/v1/me/phone/verify: checks the code texted to the number. */
  verifyPhone(code: string): Promise<{ phone_verified: boolean }> {
    return this.request("POST", "/api/v1/me/phone/verify", { code });
  }
  /** POST /api/v1/me/contacts: the users among the caller's phone contacts. */
  async matchContacts(phones: string[]): Promise<ContactMatch[]> {
    return (await this.request<{ matches: ContactMatch[] }>("POST", "/api/v1/me/contacts", { phones })).matches;
  }

  // ---- Web Push

  /**
   * GET /api/v1/push/key: the VAPID public key (base64url), the `applicationServerKey` to
   * subscribe with (public). Fails with 404 `push_disabled` when the server sends no Web Push.
   */
  async pushKey(): Promise<string> {
    return (await this.request<{ public_key: string }>("GET", "/api/v1/push/key")).public_key;
  }
  /** GET /api/v1/me/push-subscriptions: the caller's subscriptions, oldest first, without keys. */
  async pushSubscriptions(): Promise<PushSubscriptionInfo[]> {
    return (await this.request<{ subscriptions: PushSubscriptionInfo[] }>("GET", "/api/v1/me/push-subscriptions")).subscriptions;
  }
  /**
   * POST /api/v1/me/push-subscriptions: stores the browser's subscription (`sub.toJSON()`) for
   * this session; the same endpoint again replaces it. It ends when the session does.
   */
  savePushSubscription(sub: BrowserPushSubscription): Promise<PushSubscriptionInfo> {
    return this.request("POST", "/api/v1/me/push-subscriptions", sub);
  }
  /** DELETE /api/v1/me/push-subscriptions: deletes the caller's subscription with the endpoint. */
  async deletePushSubscription(endpoint: string): Promise<void> {
    await this.request("DELETE", `/api/v1/me/push-subscriptions?endpoint=${encodeURIComponent(endpoint)}`);
  }

  // ---- Classes and enrollment

  /** GET /api/v1/classes: one page of a class search. */
  searchClassesPage(query: ClassQuery = {}, cursor: string | null = null): Promise<Page<Class>> {
    const q = new URLSearchParams(stringParams({ ...query }));
    if (cursor !== null) q.set("cursor", cursor);
    return this.request<{ classes: Class[]; next_cursor: string | null }>("GET", "/api/v1/classes?" + q.toString())
      .then((p) => ({ items: p.classes, next_cursor: p.next_cursor }));
  }
  /** GET /api/v1/classes: every class of a search, page after page as the iteration goes. */
  async *searchClasses(query: ClassQuery = {}): AsyncGenerator<Class, void, undefined> {
    for await (const page of this.pages<Class>("/api/v1/classes", stringParams({ ...query }), "classes")) yield* page;
  }
  /** GET /api/v1/classes/{id}: a class with its enrolled count. */
  getClass(id: string): Promise<ClassDetail> {
    return this.request("GET", `/api/v1/classes/${enc(id)}`);
  }
  /** GET /api/v1/me/classes: the caller's classes, each with its read marker and unread count. */
  async myClasses(): Promise<RoomUnread[]> {
    return (await this.request<{ classes: RoomUnread[] }>("GET", "/api/v1/me/classes")).classes;
  }
  /** PUT /api/v1/classes/{id}/read: moves the caller's read marker forward (never back; clamped to the room's end). */
  markRead(classId: string, seq: number): Promise<ReadMarker> {
    return this.request("PUT", `/api/v1/classes/${enc(classId)}/read`, { seq });
  }
  /** POST /api/v1/me/classes: enrolls the caller. */
  enroll(classId: string): Promise<Class> {
    return this.request("POST", "/api/v1/me/classes", { class_id: classId });
  }
  /** DELETE /api/v1/me/classes/{class_id}: drops the class. */
  async drop(classId: string): Promise<void> {
    await this.request("DELETE", `/api/v1/me/classes/${enc(classId)}`);
  }
  /** GET /api/v1/classes/{id}/friends: the caller's friends enrolled in the class. */
  async classFriends(classId: string): Promise<PublicUser[]> {
    return (await this.request<{ friends: PublicUser[] }>("GET", `/api/v1/classes/${enc(classId)}/friends`)).friends;
  }

  // ---- Notifications

  /** GET /api/v1/me/notifications: one page of the caller's inbox, newest first, with the unread count. */
  notifications(opts: { limit?: number; cursor?: string | null } = {}): Promise<NotificationPage> {
    const q = new URLSearchParams();
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    if (opts.cursor) q.set("cursor", opts.cursor);
    const s = q.toString();
    return this.request("GET", "/api/v1/me/notifications" + (s ? "?" + s : ""));
  }
  /** POST /api/v1/me/notifications/{id}/read: marks one notification read. */
  async readNotification(id: string): Promise<void> {
    await this.request("POST", `/api/v1/me/notifications/${enc(id)}/read`);
  }
  /** POST /api/v1/me/notifications/read: marks every notification read; resolves with how many were unread. */
  async readAllNotifications(): Promise<number> {
    return (await this.request<{ marked: number }>("POST", "/api/v1/me/notifications/read")).marked;
  }
  /** GET /api/v1/me/mutes: the caller's mutes, newest first. */
  async mutes(): Promise<Mute[]> {
    return (await this.request<{ mutes: Mute[] }>("GET", "/api/v1/me/mutes")).mutes;
  }
  /** POST /api/v1/me/mutes: mutes a room or a thread. */
  mute(target: MuteTarget): Promise<Mute> {
    return this.request("POST", "/api/v1/me/mutes", target);
  }
  /** DELETE /api/v1/me/mutes: lifts a mute of a room or a thread. */
  async unmute(target: MuteTarget): Promise<void> {
    await this.request("DELETE", "/api/v1/me/mutes", target);
  }

  // ---- Friends

  /**
   * POST /api/v1/friends/requests: asks a user to be friends (accepts theirs if they asked first).
   * Named by `user_id`, the answer is the request; named by `email` or `computing_id`, it is
   * `{status: "requested"}` whether an account exists or not (or the accepted request, when that
   * user had asked the caller first).
   */
  sendFriendRequest(to: { user_id: string }): Promise<FriendRequest>;
  sendFriendRequest(to: FriendTarget): Promise<FriendRequest | FriendRequested>;
  sendFriendRequest(to: FriendTarget): Promise<FriendRequest | FriendRequested> {
    return this.request("POST", "/api/v1/friends/requests", to);
  }
  /** GET /api/v1/friends/requests: pending requests to the caller, or the caller's own. */
  async friendRequests(direction: "incoming" | "outgoing" = "incoming"): Promise<FriendRequest[]> {
    return (await this.request<{ requests: FriendRequest[] }>("GET", `/api/v1/friends/requests?direction=${direction}`)).requests;
  }
  /** POST /api/v1/friends/requests/{id}/accept. */
  acceptFriendRequest(id: string): Promise<FriendRequest> {
    return this.request("POST", `/api/v1/friends/requests/${enc(id)}/accept`);
  }
  /** POST /api/v1/friends/requests/{id}/reject. */
  rejectFriendRequest(id: string): Promise<FriendRequest> {
    return this.request("POST", `/api/v1/friends/requests/${enc(id)}/reject`);
  }
  /** GET /api/v1/friends: the caller's friends. */
  async friends(): Promise<Friend[]> {
    return (await this.request<{ friends: Friend[] }>("GET", "/api/v1/friends")).friends;
  }
  /** DELETE /api/v1/friends/{user_id}: ends a friendship or withdraws a request. */
  async unfriend(userId: string): Promise<void> {
    await this.request("DELETE", `/api/v1/friends/${enc(userId)}`);
  }
  /** GET /api/v1/friends/suggestions: people the caller may know. */
  async friendSuggestions(limit?: number): Promise<Suggestion[]> {
    const q = limit === undefined ? "" : `?limit=${limit}`;
    return (await this.request<{ suggestions: Suggestion[] }>("GET", "/api/v1/friends/suggestions" + q)).suggestions;
  }
  /** GET /api/v1/friends/{user_id}/common-classes: the classes the caller shares with a friend. */
  async commonClasses(userId: string): Promise<Class[]> {
    return (await this.request<{ classes: Class[] }>("GET", `/api/v1/friends/${enc(userId)}/common-classes`)).classes;
  }
  /** GET /api/v1/me/blocks: the users the caller blocked (`since`: when). */
  async blocked(): Promise<Friend[]> {
    return (await this.request<{ blocked: Friend[] }>("GET", "/api/v1/me/blocks")).blocked;
  }
  /** POST /api/v1/users/{user_id}/block. */
  async block(userId: string): Promise<void> {
    await this.request("POST", `/api/v1/users/${enc(userId)}/block`);
  }
  /** DELETE /api/v1/users/{user_id}/block. */
  async unblock(userId: string): Promise<void> {
    await this.request("DELETE", `/api/v1/users/${enc(userId)}/block`);
  }

  // ---- Messages

  /** GET /api/v1/classes/{id}/messages: one page of a room, in ascending seq. */
  async messages(classId: string, query: MessageQuery = {}): Promise<Message[]> {
    return (await this.messagePage(classId, query)).messages;
  }
  /**
   * GET /api/v1/classes/{id}/messages: one page of a room, in ascending seq, with the room's last
   * event position when it was read (RoomState.addPage; subscribe after it).
   */
  messagePage(classId: string, query: MessageQuery = {}): Promise<MessagePage> {
    const q = new URLSearchParams(stringParams({ ...query })).toString();
    return this.request<MessagePage>("GET", `/api/v1/classes/${enc(classId)}/messages${q ? "?" + q : ""}`);
  }
  /** PATCH /api/v1/messages/{id}: edits one's own message (within the server's EDIT_WINDOW). */
  editMessage(messageId: string, content: string): Promise<Message> {
    return this.request("PATCH", `/api/v1/messages/${enc(messageId)}`, { content });
  }
  /** DELETE /api/v1/messages/{id}: deletes one's own message (a tombstone that keeps its pseudonym). */
  async deleteMessage(messageId: string): Promise<void> {
    await this.request("DELETE", `/api/v1/messages/${enc(messageId)}`);
  }
  /**
   * The messages of a room before `beforeSeq` (the newest first when it is omitted), newest first,
   * a page of `pageSize` at a time as the iteration goes: scrolling back through history.
   */
  async *olderMessages(classId: string, opts: { beforeSeq?: number; pageSize?: number } = {}): AsyncGenerator<Message, void, undefined> {
    const limit = opts.pageSize ?? 50;
    let before = opts.beforeSeq;
    for (;;) {
      const page = await this.messages(classId, before === undefined ? { limit } : { before_seq: before, limit });
      for (let i = page.length - 1; i >= 0; i--) yield page[i]!;
      if (page.length < limit || page[0]!.seq <= 1) return;
      before = page[0]!.seq;
    }
  }
  /** The messages of a room after `afterSeq` (0: from the first), in ascending seq, a page at a time. */
  async *newerMessages(classId: string, opts: { afterSeq?: number; pageSize?: number } = {}): AsyncGenerator<Message, void, undefined> {
    const limit = opts.pageSize ?? 50;
    let after = opts.afterSeq ?? 0;
    for (;;) {
      const page = await this.messages(classId, { after_seq: after, limit });
      yield* page;
      if (page.length < limit) return;
      after = page[page.length - 1]!.seq;
    }
  }
  /** GET /api/v1/classes/{id}/messages/{message_id}/thread. */
  thread(classId: string, messageId: string): Promise<Thread> {
    return this.request("GET", `/api/v1/classes/${enc(classId)}/messages/${enc(messageId)}/thread`);
  }
  /** POST /api/v1/classes/{id}/messages: publishes over HTTP (the socket's send is usually better). */
  postMessage(classId: string, content: string, opts: { parentId?: string | null; clientMsgId?: string } = {}): Promise<Message> {
    const body: Record<string, string> = { content };
    if (opts.parentId) body["parent_id"] = opts.parentId;
    if (opts.clientMsgId) body["client_msg_id"] = opts.clientMsgId;
    return this.request("POST", `/api/v1/classes/${enc(classId)}/messages`, body);
  }
  /** POST /api/v1/messages/{id}/flag. */
  async flag(messageId: string, reason?: string): Promise<void> {
    await this.request("POST", `/api/v1/messages/${enc(messageId)}/flag`, reason ? { reason } : {});
  }

  // ---- Moderation

  /** GET /api/v1/mod/flagged: one page of flagged messages. */
  async flaggedPage(limit?: number, cursor: string | null = null): Promise<Page<FlaggedMessage>> {
    const q = new URLSearchParams(limit === undefined ? {} : { limit: String(limit) });
    if (cursor !== null) q.set("cursor", cursor);
    const p = await this.request<{ messages: FlaggedMessage[]; next_cursor: string | null }>("GET", "/api/v1/mod/flagged?" + q.toString());
    return { items: p.messages, next_cursor: p.next_cursor };
  }
  /** GET /api/v1/mod/flagged: every flagged message, most flagged first, page after page. */
  async *flagged(limit?: number): AsyncGenerator<FlaggedMessage, void, undefined> {
    for await (const page of this.pages<FlaggedMessage>("/api/v1/mod/flagged", limit === undefined ? {} : { limit: String(limit) }, "messages")) yield* page;
  }
  /** POST /api/v1/mod/messages/{id}/hide. */
  async hide(messageId: string): Promise<void> {
    await this.request("POST", `/api/v1/mod/messages/${enc(messageId)}/hide`);
  }
  /** POST /api/v1/mod/messages/{id}/unhide. */
  async unhide(messageId: string): Promise<void> {
    await this.request("POST", `/api/v1/mod/messages/${enc(messageId)}/unhide`);
  }
  /** GET /api/v1/mod/messages/{id}/versions: the earlier contents of a message, oldest first. */
  async messageVersions(messageId: string): Promise<MessageVersion[]> {
    return (await this.request<{ versions: MessageVersion[] }>("GET", `/api/v1/mod/messages/${enc(messageId)}/versions`)).versions;
  }
  /** GET /api/v1/mod/messages/{id}/author: reveals (and logs) who wrote a message. */
  async revealAuthor(messageId: string, reason?: string): Promise<PublicUser> {
    const q = reason ? `?reason=${enc(reason)}` : "";
    return (await this.request<{ user: PublicUser }>("GET", `/api/v1/mod/messages/${enc(messageId)}/author${q}`)).user;
  }

  // ---- Operations

  /** GET /readyz: whether the server's PostgreSQL (and Redis) answer; a 503 is a CGError. */
  readyz(): Promise<Record<string, unknown>> {
    return this.request("GET", "/readyz");
  }
}

// stringParams keeps the defined values of a query, as strings.
function stringParams(q: Record<string, string | number | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined) out[k] = String(v);
  return out;
}
