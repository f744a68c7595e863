// The Common Grounds client library, built from clients/js by 'npm run build'. Do not edit.

// src/errors.ts
var CGError = class extends Error {
  constructor(status, code, detail, retryAfter = null) {
    super(detail || code);
    this.name = "CGError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
};
function statusOfCode(code) {
  switch (code) {
    case "not_enrolled":
    case "forbidden":
      return 403;
    case "not_found":
    case "class_not_found":
      return 404;
    case "rate_limited":
      return 429;
    case "unavailable":
      return 503;
    case "internal":
      return 500;
    case "unauthorized":
      return 401;
    default:
      return 400;
  }
}

// src/http.ts
var enc = encodeURIComponent;
var Api = class {
  constructor(opts) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token ?? null;
    const g = globalThis;
    if (!opts.fetch && !g.fetch) throw new TypeError("Api: no fetch on this platform; pass options.fetch");
    this.fetchFn = opts.fetch ?? ((input, init) => g.fetch(input, init));
  }
  /** The current session token, if any. */
  async currentToken() {
    return typeof this.token === "function" ? await this.token() : this.token;
  }
  /**
   * request sends one JSON request and returns the decoded reply (undefined for 204). It is the
   * one place the library talks HTTP; the typed calls below are built on it.
   */
  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = await this.currentToken();
    if (token) headers["Authorization"] = "Bearer " + token;
    const init = { method, headers, cache: "no-store" };
    if (body !== void 0) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await this.fetchFn(this.baseUrl + path, init);
    } catch (err) {
      throw new CGError(0, "network", err instanceof Error ? err.message : String(err));
    }
    const text = res.status === 204 ? "" : await res.text();
    let data = void 0;
    if (text !== "" && /json/.test(res.headers.get("Content-Type") ?? "")) {
      try {
        data = JSON.parse(text);
      } catch {
        data = void 0;
      }
    }
    if (!res.ok) {
      const p = typeof data === "object" && data !== null ? data : {};
      const seconds = Number(res.headers.get("Retry-After"));
      throw new CGError(
        res.status,
        typeof p.code === "string" ? p.code : "http_" + res.status,
        typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : `${res.status} ${res.statusText}`,
        Number.isFinite(seconds) && seconds > 0 ? seconds * 1e3 : null
      );
    }
    if (res.status !== 204 && data === void 0 && text !== "") {
      throw new CGError(res.status, "invalid_reply", "The server's reply was not JSON.");
    }
    return data;
  }
  // pages walks a keyset-paginated list from its first page.
  async *pages(path, params, key) {
    let cursor = null;
    do {
      const q = new URLSearchParams(params);
      if (cursor !== null) q.set("cursor", cursor);
      const s = q.toString();
      const page = await this.request("GET", path + (s ? "?" + s : ""));
      yield page[key] ?? [];
      cursor = page["next_cursor"] ?? null;
    } while (cursor !== null);
  }
  // ---- Server
  /** GET /api/v1/config: what the client may know of the server before signing in (public). */
  config() {
    return this.request("GET", "/api/v1/config");
  }
  // ---- Auth
  /** POST /api/v1/auth/magic-link: mails a sign-in link. */
  async requestMagicLink(email) {
    await this.request("POST", "/api/v1/auth/magic-link", { email });
  }
  /** POST /api/v1/auth/verify: uses a link's token and starts a session. */
  verify(token) {
    return this.request("POST", "/api/v1/auth/verify", { token });
  }
  /** POST /api/v1/auth/logout: ends the caller's session (its sockets are closed with 4001). */
  async logout() {
    await this.request("POST", "/api/v1/auth/logout");
  }
  /** POST /api/v1/auth/ws-ticket: a single-use ticket that opens one socket, for browsers. */
  wsTicket() {
    return this.request("POST", "/api/v1/auth/ws-ticket");
  }
  // ---- Me
  /** GET /api/v1/me: the caller's account. */
  me() {
    return this.request("GET", "/api/v1/me");
  }
  /**
   * DELETE /api/v1/me: deletes the caller's account and everything it owns. With `eraseMessages`,
   * its messages also become tombstones, each at its own random time.
   */
  async deleteMe(opts = {}) {
    await this.request("DELETE", "/api/v1/me" + (opts.eraseMessages ? "?erase_messages=true" : ""));
  }
  /** POST /api/v1/me/phone: texts a code to the number. */
  async startPhoneVerification(phone) {
    await this.request("POST", "/api/v1/me/phone", { phone });
  }
  /** POST /api/v1/me/phone/verify: checks the code texted to the number. */
  verifyPhone(code) {
    return this.request("POST", "/api/v1/me/phone/verify", { code });
  }
  /** POST /api/v1/me/contacts: the users among the caller's phone contacts. */
  async matchContacts(phones) {
    return (await this.request("POST", "/api/v1/me/contacts", { phones })).matches;
  }
  // ---- Web Push
  /**
   * GET /api/v1/push/key: the VAPID public key (base64url), the `applicationServerKey` to
   * subscribe with (public). Fails with 404 `push_disabled` when the server sends no Web Push.
   */
  async pushKey() {
    return (await this.request("GET", "/api/v1/push/key")).public_key;
  }
  /** GET /api/v1/me/push-subscriptions: the caller's subscriptions, oldest first, without keys. */
  async pushSubscriptions() {
    return (await this.request("GET", "/api/v1/me/push-subscriptions")).subscriptions;
  }
  /**
   * POST /api/v1/me/push-subscriptions: stores the browser's subscription (`sub.toJSON()`) for
   * this session; the same endpoint again replaces it. It ends when the session does.
   */
  savePushSubscription(sub) {
    return this.request("POST", "/api/v1/me/push-subscriptions", sub);
  }
  /** DELETE /api/v1/me/push-subscriptions: deletes the caller's subscription with the endpoint. */
  async deletePushSubscription(endpoint) {
    await this.request("DELETE", `/api/v1/me/push-subscriptions?endpoint=${encodeURIComponent(endpoint)}`);
  }
  // ---- Classes and enrollment
  /** GET /api/v1/classes: one page of a class search. */
  searchClassesPage(query = {}, cursor = null) {
    const q = new URLSearchParams(stringParams({ ...query }));
    if (cursor !== null) q.set("cursor", cursor);
    return this.request("GET", "/api/v1/classes?" + q.toString()).then((p) => ({ items: p.classes, next_cursor: p.next_cursor }));
  }
  /** GET /api/v1/classes: every class of a search, page after page as the iteration goes. */
  async *searchClasses(query = {}) {
    for await (const page of this.pages("/api/v1/classes", stringParams({ ...query }), "classes")) yield* page;
  }
  /** GET /api/v1/classes/{id}: a class with its enrolled count. */
  getClass(id) {
    return this.request("GET", `/api/v1/classes/${enc(id)}`);
  }
  /** GET /api/v1/me/classes: the caller's classes, each with its read marker and unread count. */
  async myClasses() {
    return (await this.request("GET", "/api/v1/me/classes")).classes;
  }
  /** PUT /api/v1/classes/{id}/read: moves the caller's read marker forward (never back; clamped to the room's end). */
  markRead(classId, seq2) {
    return this.request("PUT", `/api/v1/classes/${enc(classId)}/read`, { seq: seq2 });
  }
  /** POST /api/v1/me/classes: enrolls the caller. */
  enroll(classId) {
    return this.request("POST", "/api/v1/me/classes", { class_id: classId });
  }
  /** DELETE /api/v1/me/classes/{class_id}: drops the class. */
  async drop(classId) {
    await this.request("DELETE", `/api/v1/me/classes/${enc(classId)}`);
  }
  /** GET /api/v1/classes/{id}/friends: the caller's friends enrolled in the class. */
  async classFriends(classId) {
    return (await this.request("GET", `/api/v1/classes/${enc(classId)}/friends`)).friends;
  }
  // ---- Notifications
  /** GET /api/v1/me/notifications: one page of the caller's inbox, newest first, with the unread count. */
  notifications(opts = {}) {
    const q = new URLSearchParams();
    if (opts.limit !== void 0) q.set("limit", String(opts.limit));
    if (opts.cursor) q.set("cursor", opts.cursor);
    const s = q.toString();
    return this.request("GET", "/api/v1/me/notifications" + (s ? "?" + s : ""));
  }
  /** POST /api/v1/me/notifications/{id}/read: marks one notification read. */
  async readNotification(id) {
    await this.request("POST", `/api/v1/me/notifications/${enc(id)}/read`);
  }
  /** POST /api/v1/me/notifications/read: marks every notification read; resolves with how many were unread. */
  async readAllNotifications() {
    return (await this.request("POST", "/api/v1/me/notifications/read")).marked;
  }
  /** GET /api/v1/me/mutes: the caller's mutes, newest first. */
  async mutes() {
    return (await this.request("GET", "/api/v1/me/mutes")).mutes;
  }
  /** POST /api/v1/me/mutes: mutes a room or a thread. */
  mute(target) {
    return this.request("POST", "/api/v1/me/mutes", target);
  }
  /** DELETE /api/v1/me/mutes: lifts a mute of a room or a thread. */
  async unmute(target) {
    await this.request("DELETE", "/api/v1/me/mutes", target);
  }
  sendFriendRequest(to) {
    return this.request("POST", "/api/v1/friends/requests", to);
  }
  /** GET /api/v1/friends/requests: pending requests to the caller, or the caller's own. */
  async friendRequests(direction = "incoming") {
    return (await this.request("GET", `/api/v1/friends/requests?direction=${direction}`)).requests;
  }
  /** POST /api/v1/friends/requests/{id}/accept. */
  acceptFriendRequest(id) {
    return this.request("POST", `/api/v1/friends/requests/${enc(id)}/accept`);
  }
  /** POST /api/v1/friends/requests/{id}/reject. */
  rejectFriendRequest(id) {
    return this.request("POST", `/api/v1/friends/requests/${enc(id)}/reject`);
  }
  /** GET /api/v1/friends: the caller's friends. */
  async friends() {
    return (await this.request("GET", "/api/v1/friends")).friends;
  }
  /** DELETE /api/v1/friends/{user_id}: ends a friendship or withdraws a request. */
  async unfriend(userId) {
    await this.request("DELETE", `/api/v1/friends/${enc(userId)}`);
  }
  /** GET /api/v1/friends/suggestions: people the caller may know. */
  async friendSuggestions(limit) {
    const q = limit === void 0 ? "" : `?limit=${limit}`;
    return (await this.request("GET", "/api/v1/friends/suggestions" + q)).suggestions;
  }
  /** GET /api/v1/friends/{user_id}/common-classes: the classes the caller shares with a friend. */
  async commonClasses(userId) {
    return (await this.request("GET", `/api/v1/friends/${enc(userId)}/common-classes`)).classes;
  }
  /** GET /api/v1/me/blocks: the users the caller blocked (`since`: when). */
  async blocked() {
    return (await this.request("GET", "/api/v1/me/blocks")).blocked;
  }
  /** POST /api/v1/users/{user_id}/block. */
  async block(userId) {
    await this.request("POST", `/api/v1/users/${enc(userId)}/block`);
  }
  /** DELETE /api/v1/users/{user_id}/block. */
  async unblock(userId) {
    await this.request("DELETE", `/api/v1/users/${enc(userId)}/block`);
  }
  // ---- Messages
  /** GET /api/v1/classes/{id}/messages: one page of a room, in ascending seq. */
  async messages(classId, query = {}) {
    return (await this.messagePage(classId, query)).messages;
  }
  /**
   * GET /api/v1/classes/{id}/messages: one page of a room, in ascending seq, with the room's last
   * event position when it was read (RoomState.addPage; subscribe after it).
   */
  messagePage(classId, query = {}) {
    const q = new URLSearchParams(stringParams({ ...query })).toString();
    return this.request("GET", `/api/v1/classes/${enc(classId)}/messages${q ? "?" + q : ""}`);
  }
  /** PATCH /api/v1/messages/{id}: edits one's own message (within the server's EDIT_WINDOW). */
  editMessage(messageId, content) {
    return this.request("PATCH", `/api/v1/messages/${enc(messageId)}`, { content });
  }
  /** DELETE /api/v1/messages/{id}: deletes one's own message (a tombstone that keeps its pseudonym). */
  async deleteMessage(messageId) {
    await this.request("DELETE", `/api/v1/messages/${enc(messageId)}`);
  }
  /**
   * The messages of a room before `beforeSeq` (the newest first when it is omitted), newest first,
   * a page of `pageSize` at a time as the iteration goes: scrolling back through history.
   */
  async *olderMessages(classId, opts = {}) {
    const limit = opts.pageSize ?? 50;
    let before = opts.beforeSeq;
    for (; ; ) {
      const page = await this.messages(classId, before === void 0 ? { limit } : { before_seq: before, limit });
      for (let i = page.length - 1; i >= 0; i--) yield page[i];
      if (page.length < limit || page[0].seq <= 1) return;
      before = page[0].seq;
    }
  }
  /** The messages of a room after `afterSeq` (0: from the first), in ascending seq, a page at a time. */
  async *newerMessages(classId, opts = {}) {
    const limit = opts.pageSize ?? 50;
    let after = opts.afterSeq ?? 0;
    for (; ; ) {
      const page = await this.messages(classId, { after_seq: after, limit });
      yield* page;
      if (page.length < limit) return;
      after = page[page.length - 1].seq;
    }
  }
  /** GET /api/v1/classes/{id}/messages/{message_id}/thread. */
  thread(classId, messageId) {
    return this.request("GET", `/api/v1/classes/${enc(classId)}/messages/${enc(messageId)}/thread`);
  }
  /** POST /api/v1/classes/{id}/messages: publishes over HTTP (the socket's send is usually better). */
  postMessage(classId, content, opts = {}) {
    const body = { content };
    if (opts.parentId) body["parent_id"] = opts.parentId;
    if (opts.clientMsgId) body["client_msg_id"] = opts.clientMsgId;
    return this.request("POST", `/api/v1/classes/${enc(classId)}/messages`, body);
  }
  /** POST /api/v1/messages/{id}/flag. */
  async flag(messageId, reason) {
    await this.request("POST", `/api/v1/messages/${enc(messageId)}/flag`, reason ? { reason } : {});
  }
  // ---- Moderation
  /** GET /api/v1/mod/flagged: one page of flagged messages. */
  async flaggedPage(limit, cursor = null) {
    const q = new URLSearchParams(limit === void 0 ? {} : { limit: String(limit) });
    if (cursor !== null) q.set("cursor", cursor);
    const p = await this.request("GET", "/api/v1/mod/flagged?" + q.toString());
    return { items: p.messages, next_cursor: p.next_cursor };
  }
  /** GET /api/v1/mod/flagged: every flagged message, most flagged first, page after page. */
  async *flagged(limit) {
    for await (const page of this.pages("/api/v1/mod/flagged", limit === void 0 ? {} : { limit: String(limit) }, "messages")) yield* page;
  }
  /** POST /api/v1/mod/messages/{id}/hide. */
  async hide(messageId) {
    await this.request("POST", `/api/v1/mod/messages/${enc(messageId)}/hide`);
  }
  /** POST /api/v1/mod/messages/{id}/unhide. */
  async unhide(messageId) {
    await this.request("POST", `/api/v1/mod/messages/${enc(messageId)}/unhide`);
  }
  /** GET /api/v1/mod/messages/{id}/versions: the earlier contents of a message, oldest first. */
  async messageVersions(messageId) {
    return (await this.request("GET", `/api/v1/mod/messages/${enc(messageId)}/versions`)).versions;
  }
  /** GET /api/v1/mod/messages/{id}/author: reveals (and logs) who wrote a message. */
  async revealAuthor(messageId, reason) {
    const q = reason ? `?reason=${enc(reason)}` : "";
    return (await this.request("GET", `/api/v1/mod/messages/${enc(messageId)}/author${q}`)).user;
  }
  // ---- Operations
  /** GET /readyz: whether the server's PostgreSQL (and Redis) answer; a 503 is a CGError. */
  readyz() {
    return this.request("GET", "/readyz");
  }
};
function stringParams(q) {
  const out = {};
  for (const [k, v] of Object.entries(q)) if (v !== void 0) out[k] = String(v);
  return out;
}

// src/content.ts
var MAX_CONTENT_CHARS = 4e3;
var MAX_CLIENT_MSG_ID_LEN = 128;
function isSpace(c) {
  if (c <= 255) return c === 32 || c >= 9 && c <= 13 || c === 133 || c === 160;
  return c === 5760 || c >= 8192 && c <= 8202 || c === 8232 || c === 8233 || c === 8239 || c === 8287 || c === 12288;
}
function isControl(c) {
  return c < 32 || c >= 127 && c <= 159;
}
function normalizeContent(content) {
  const points = [];
  const s = content.replace(/\r\n/g, "\n");
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 55296 && c <= 56319) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d < 56320 || d > 57343) throw invalid("content must be valid UTF-8.");
      points.push(65536 + (c - 55296 << 10) + (d - 56320));
      i++;
    } else if (c >= 56320 && c <= 57343) {
      throw invalid("content must be valid UTF-8.");
    } else {
      points.push(c);
    }
  }
  let start = 0;
  let end = points.length;
  while (start < end && isSpace(points[start])) start++;
  while (end > start && isSpace(points[end - 1])) end--;
  const n = end - start;
  if (n === 0) throw invalid("content must not be empty.");
  if (n > MAX_CONTENT_CHARS) {
    throw invalid(`content has ${n} characters; at most ${MAX_CONTENT_CHARS} are allowed.`);
  }
  for (let i = start; i < end; i++) {
    const c = points[i];
    if (isControl(c) && c !== 10 && c !== 9 || c === 8232 || c === 8233) {
      throw invalid(`content must not contain control characters (U+${c.toString(16).toUpperCase().padStart(4, "0")}).`);
    }
  }
  return String.fromCodePoint(...points.slice(start, end));
}
function validClientMsgId(id) {
  return id.length > 0 && id.length <= MAX_CLIENT_MSG_ID_LEN && /^[\x21-\x7e]+$/.test(id);
}
function invalid(detail) {
  return new CGError(400, "invalid_content", detail);
}
function newClientMsgId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// src/frames.ts
var str = (v) => typeof v === "string";
var optStr = (v) => v === void 0 || typeof v === "string";
var nullStr = (v) => v === null || typeof v === "string";
var seq = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0;
var count = seq;
var bool = (v) => typeof v === "boolean";
var optCount = (v) => v === void 0 || seq(v);
var nullCount = (v) => v === null || seq(v);
var positive = (v) => typeof v === "number" && Number.isInteger(v) && v >= 1;
var optPositive = (v) => v === void 0 || positive(v);
var hiddenBy = (v) => v === null || v === "flags" || v === "moderator";
var messageFields = {
  id: str,
  room: str,
  seq,
  anon_id: nullStr,
  content: nullStr,
  parent_id: nullStr,
  reply_count: count,
  created_at: str,
  hidden: bool,
  hidden_by: hiddenBy,
  deleted: bool,
  edited_at: nullStr
};
var message = (v) => fields(v, messageFields) === "";
var notificationFields = {
  id: str,
  room: str,
  thread_id: str,
  message_id: str,
  anon_id: str,
  excerpt: str,
  created_at: str,
  read: bool
};
var notification = (v) => fields(v, notificationFields) === "";
var serverFrameFields = {
  subscribed: {
    type: str,
    ref: optStr,
    room: str,
    anon_id: str,
    last_seq: seq,
    online: nullCount,
    online_fewer_than: optPositive,
    small_room: bool,
    anonymity_k: positive
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
  notification: { type: str, notification }
};
function fields(v, checks) {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "(frame)";
  const o = v;
  for (const [k, check] of Object.entries(checks)) if (!check(o[k])) return k;
  return "";
}
function parseFrame(data) {
  if (typeof data !== "string") return { kind: "malformed", reason: "not a text frame" };
  let v;
  try {
    v = JSON.parse(data);
  } catch {
    return { kind: "malformed", reason: "not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { kind: "malformed", reason: "not a JSON object" };
  const type = v.type;
  if (typeof type !== "string") return { kind: "malformed", reason: "no type" };
  if (!Object.prototype.hasOwnProperty.call(serverFrameFields, type)) return { kind: "unknown_type", type };
  const checks = serverFrameFields[type];
  const bad = fields(v, checks);
  if (bad !== "") return { kind: "malformed", reason: `${type}: bad ${bad}` };
  const unknownFields = Object.keys(v).filter((k) => !(k in checks));
  const m = v.message;
  if (typeof m === "object" && m !== null) {
    for (const k of Object.keys(m)) if (!(k in messageFields)) unknownFields.push("message." + k);
  }
  return { kind: "frame", frame: v, unknownFields };
}

// src/live.ts
var BACKOFF_BASE_MS = 500;
var BACKOFF_CAP_MS = 1e4;
var OPEN = 1;
function reconnectAfter(reason) {
  const m = /reconnect_after_ms=(\d+)/.exec(reason);
  return m ? Number(m[1]) : null;
}
function onlineCount(f) {
  return { online: f.online, fewerThan: f.online === null ? f.online_fewer_than ?? null : null };
}
var Live = class {
  constructor(opts) {
    this.rooms = /* @__PURE__ */ new Map();
    this.positions = /* @__PURE__ */ new Map();
    this.outboxes = /* @__PURE__ */ new Map();
    this.pendingRefs = /* @__PURE__ */ new Map();
    this.stateListeners = /* @__PURE__ */ new Set();
    this.ws = null;
    this.gen = 0;
    this.attempt = 0;
    this.refs = 0;
    this.started = false;
    this.stopped = false;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.current = { status: "offline", retryInMs: null };
    this.storageChain = Promise.resolve();
    this.opts = opts;
    const WS = opts.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new TypeError("Live: no WebSocket on this platform; pass options.WebSocket (in Node, the ws package)");
    this.WS = WS;
    this.prefix = opts.storagePrefix ?? "cg.";
    this.restored = this.restoreOutbox();
  }
  /** The connection's state. */
  get state() {
    return this.current;
  }
  /** onState calls listener with every change of state; it returns a function that stops it. */
  onState(listener) {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
  /** connect starts the connection (subscribe and send start it too). */
  connect() {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.open();
  }
  /** reconnectNow tries at once instead of waiting for the backoff (the device came back online, the tab became visible). */
  reconnectNow() {
    if (this.stopped) return;
    if (!this.started) return this.connect();
    if (this.ws !== null || this.current.status === "connecting") return;
    this.attempt = 0;
    void this.open();
  }
  /** close ends the connection for good; unsent messages stay in storage, and their send() calls fail with `closed`. */
  close() {
    if (this.stopped) return;
    this.halt(new CGError(0, "closed", "The client was closed before the message was sent."));
    this.setState({ status: "offline", retryInMs: null });
  }
  // halt stops the client: no socket, no timer, and every send() still waiting fails with err.
  halt(err) {
    this.stopped = true;
    this.drop(1e3, "");
    for (const r of this.rooms.values()) if (r.retryTimer) clearTimeout(r.retryTimer);
    for (const q of this.outboxes.values()) {
      for (const it of q) {
        if (it.waitTimer) clearTimeout(it.waitTimer);
        it.reject?.(err);
      }
    }
  }
  /**
   * subscribe joins a room on the socket and resumes it after the last seq seen (in memory, else
   * in storage; `sinceSeq` overrides both). One subscription per room: subscribing again
   * replaces the handlers.
   */
  subscribe(room, handlers = {}, opts = {}) {
    const old = this.rooms.get(room);
    if (old) {
      old.handlers = handlers;
      return old.sub;
    }
    if (opts.sinceSeq !== void 0) this.positions.set(room, opts.sinceSeq);
    const self = this;
    const r = {
      room,
      handlers,
      ready: this.positions.has(room) ? Promise.resolve() : this.loadPosition(room),
      subscribed: false,
      sent: false,
      retryTimer: null,
      sub: {
        room,
        get lastSeq() {
          return self.positions.get(room) ?? null;
        },
        unsubscribe: () => self.unsubscribe(room)
      }
    };
    this.rooms.set(room, r);
    if (this.ws && this.current.status === "live") void this.sendSubscribes([r], this.gen);
    this.connect();
    return r.sub;
  }
  unsubscribe(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.rooms.delete(room);
    if (r.retryTimer) clearTimeout(r.retryTimer);
    if (this.current.status === "live") this.write({ type: "unsubscribe", ref: this.ref({ kind: "unsubscribe", room }), room });
    this.pump(room);
  }
  /**
   * send publishes content to a room and resolves with the acknowledged message. Content the
   * server would refuse fails at once with its code (`invalid_content`); otherwise the message
   * waits its turn in the room's outbox and goes out, and again after a rate limit, a lost
   * connection or a restart, under the same client_msg_id, until the server answers.
   */
  send(room, content, opts = {}) {
    if (this.stopped) return Promise.reject(new CGError(0, "closed", "The client is closed."));
    let text;
    try {
      text = normalizeContent(content);
    } catch (err) {
      return Promise.reject(err);
    }
    const item = {
      room,
      clientMsgId: newClientMsgId(),
      content: text,
      parentId: opts.parentId ?? null,
      resolve: null,
      reject: null,
      ref: null,
      waitTimer: null
    };
    const done = new Promise((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
    });
    void this.restored.then(() => {
      if (this.stopped) return;
      this.queue(room).push(item);
      this.saveOutbox();
      this.opts.onOutboxChange?.(room);
      this.connect();
      this.pump(room);
    });
    return done;
  }
  /**
   * markRead moves the user's read marker of a room to seq (dropped while offline: the marker
   * never moves back, so Api.markRead, or the next markRead, makes up for it). The user's other
   * devices hear of it (onRead), and so does this one, with where the marker stands.
   */
  markRead(room, seq2) {
    if (this.current.status === "live") this.write({ type: "read", ref: this.ref({ kind: "read", room }), room, seq: seq2 });
  }
  /** typing tells the room the user is typing (dropped while offline). */
  typing(room) {
    if (this.current.status === "live") this.write({ type: "typing", room });
  }
  /** pending lists a room's messages not yet acknowledged, oldest first. */
  pending(room) {
    return (this.outboxes.get(room) ?? []).map(({ clientMsgId, content, parentId }) => ({ clientMsgId, content, parentId }));
  }
  // ---- The connection
  setState(s) {
    this.current = s;
    for (const l of this.stateListeners) l(s);
  }
  debug(kind, detail, frame) {
    this.opts.debug?.(frame === void 0 ? { kind, detail } : { kind, detail, frame });
  }
  url() {
    const u = this.opts.url;
    if (typeof u === "function") return u();
    if (typeof u === "string") return u;
    let base = this.opts.api.baseUrl;
    const loc = globalThis.location;
    if (base === "" && loc?.origin) base = loc.origin;
    return base.replace(/^http/, "ws") + "/ws";
  }
  async open() {
    const gen = ++this.gen;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.setState({ status: "connecting" });
    let url = this.url();
    let init;
    try {
      if (this.opts.auth === "header") {
        const token = await this.opts.api.currentToken();
        if (!token) throw new CGError(401, "unauthorized", "No session token.");
        init = { headers: { Authorization: "Bearer " + token } };
      } else {
        const t = await this.opts.api.wsTicket();
        url += (url.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(t.ticket);
      }
    } catch (err) {
      if (gen !== this.gen || this.stopped) return;
      const e = err instanceof CGError ? err : new CGError(0, "network", String(err));
      if (e.status === 401) return this.endSession();
      this.debug("connect", `no ticket: ${e.code}`);
      return this.retryLater(Math.max(this.backoff(), e.retryAfter ?? 0));
    }
    if (gen !== this.gen || this.stopped) return;
    this.debug("connect", "dialing " + url.replace(/ticket=[^&]*/, "ticket=\u2026"));
    const ws = init ? new this.WS(url, void 0, init) : new this.WS(url);
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      if (gen !== this.gen) return;
      opened = true;
      this.onOpen(gen);
    });
    ws.addEventListener("message", (ev) => {
      if (gen === this.gen) this.onFrame(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      if (gen !== this.gen) return;
      const { code, reason } = ev;
      void this.onClose(code ?? 1006, reason ?? "", opened);
    });
  }
  onOpen(gen) {
    this.setState({ status: "live" });
    this.armPing();
    void this.sendSubscribes([...this.rooms.values()], gen);
    for (const room of this.outboxes.keys()) this.pump(room);
  }
  // sendSubscribes subscribes rooms once their positions are known, all in one go, as the
  // server prefers.
  async sendSubscribes(rooms, gen) {
    await Promise.all(rooms.map((r) => r.ready));
    if (gen !== this.gen || this.current.status !== "live") return;
    for (const r of rooms) {
      if (this.rooms.get(r.room) !== r) continue;
      r.subscribed = false;
      const since = this.positions.get(r.room);
      const f = { type: "subscribe", ref: this.ref({ kind: "subscribe", room: r.room }), room: r.room };
      if (since !== void 0) f.since_seq = since;
      this.write(f);
      r.sent = true;
      this.pump(r.room);
    }
  }
  // drop forgets the socket (closing it when open) and everything tied to it.
  drop(code, reason) {
    this.gen++;
    const ws = this.ws;
    this.ws = null;
    if (ws && (ws.readyState === OPEN || ws.readyState === 0)) {
      try {
        ws.close(code, reason);
      } catch {
      }
    }
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.pingTimer = this.pongTimer = this.reconnectTimer = null;
    this.pendingRefs.clear();
    for (const r of this.rooms.values()) r.subscribed = r.sent = false;
    for (const q of this.outboxes.values()) if (q[0]) q[0].ref = null;
  }
  async onClose(code, reason, opened) {
    this.drop(1e3, "");
    this.debug("closed", `closed with ${code}${reason ? " " + reason : ""}`);
    if (this.stopped) return;
    if (code === 4001) return this.endSession();
    if (!opened && this.opts.auth === "header") {
      try {
        await this.opts.api.me();
      } catch (err) {
        if (err instanceof CGError && err.status === 401) return this.endSession();
      }
      if (this.stopped || this.ws) return;
    }
    if (code === 1012) {
      this.attempt = 0;
      const after = reconnectAfter(reason);
      return this.retryLater(after ?? this.backoff());
    }
    this.retryLater(this.backoff());
  }
  // resync drops a connection the library can no longer trust and resumes on a new one.
  resync(detail, frame) {
    this.debug("malformed", detail, frame);
    this.drop(4e3, "resync");
    this.retryLater(this.backoff());
  }
  retryLater(ms) {
    if (this.stopped) return;
    const delay = Math.max(0, Math.round(ms));
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.setState({ status: "offline", retryInMs: delay });
    if (this.stopped || this.current.status !== "offline") return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }
  // backoff is the next delay: full jitter under an exponential ceiling capped at 10 s.
  backoff() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 20);
    return Math.random() * ceiling;
  }
  endSession() {
    if (this.stopped) return;
    this.halt(new CGError(401, "unauthorized", "The session ended before the message was sent."));
    this.outboxes.clear();
    this.saveOutbox();
    this.setState({ status: "offline", retryInMs: null });
    this.opts.onSessionEnded?.();
  }
  armPing() {
    const every = this.opts.pingIntervalMs ?? 25e3;
    const within = this.opts.pongTimeoutMs ?? 1e4;
    this.pingTimer = setInterval(() => {
      this.write({ type: "ping", ref: this.ref({ kind: "ping", room: "" }) });
      if (this.pongTimer) return;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        this.debug("closed", "no pong");
        this.drop(4e3, "no pong");
        this.retryLater(this.backoff());
      }, within);
    }, every);
  }
  ref(p) {
    const ref = "r" + ++this.refs;
    this.pendingRefs.set(ref, p);
    return ref;
  }
  write(f) {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(f));
  }
  // ---- Frames
  onFrame(data) {
    const p = parseFrame(data);
    if (p.kind === "unknown_type") return this.debug("unknown_type", `ignored a frame of type ${p.type}`, data);
    if (p.kind === "malformed") return this.resync(`malformed frame (${p.reason}): resyncing`, data);
    if (p.unknownFields.length) this.debug("unknown_field", `ignored ${p.unknownFields.join(", ")}`, data);
    const f = p.frame;
    if (f.type !== "error") this.attempt = 0;
    switch (f.type) {
      case "pong":
        if (f.ref !== void 0) this.pendingRefs.delete(f.ref);
        if (this.pongTimer) clearTimeout(this.pongTimer);
        this.pongTimer = null;
        return;
      case "ack":
        return this.onAck(f.ref, f.message);
      case "error":
        return this.onError(f);
      case "subscribed":
        return this.onSubscribed(f);
      case "read":
        if (f.ref !== void 0) this.pendingRefs.delete(f.ref);
        return this.opts.onRead?.(f.room, f.seq);
      case "notification":
        return this.opts.onNotification?.(f.notification);
      default:
        return this.onRoomFrame(f);
    }
  }
  onSubscribed(f) {
    if (f.ref) this.pendingRefs.delete(f.ref);
    const r = this.rooms.get(f.room);
    if (!r) return this.debug("unexpected", `subscribed to ${f.room}, which is not subscribed here`, f);
    const seen = this.positions.get(f.room);
    if (seen === void 0 || f.last_seq < seen) {
      if (seen !== void 0) this.debug("gap", `room ${f.room} ends at ${f.last_seq}, before the ${seen} seen`, f);
      this.setPosition(f.room, f.last_seq);
    }
    r.subscribed = true;
    r.handlers.onSubscribed?.({
      anonId: f.anon_id,
      lastSeq: f.last_seq,
      ...onlineCount(f),
      smallRoom: f.small_room,
      anonymityK: f.anonymity_k
    });
  }
  onRoomFrame(f) {
    const r = this.rooms.get(f.room);
    if (f.type === "unsubscribed") {
      if (f.ref) {
        this.pendingRefs.delete(f.ref);
        return;
      }
      if (!r) return;
      this.rooms.delete(f.room);
      this.pump(f.room);
      return r.handlers.onUnsubscribed?.();
    }
    if (!r || !r.subscribed) return this.debug("unexpected", `a ${f.type} frame of ${f.room}, which is not subscribed here`, f);
    if (f.type === "message" || f.type.startsWith("message_")) {
      const pos = f.type === "message" ? f.message.seq : f.seq;
      const seen = this.positions.get(f.room) ?? 0;
      if (pos <= seen) return this.debug("duplicate", `position ${pos} of ${f.room} again`, f);
      if (pos !== seen + 1) return this.resync(`position ${pos} of ${f.room} after ${seen}: resyncing`, f);
      this.setPosition(f.room, pos);
    }
    switch (f.type) {
      case "message":
        return r.handlers.onMessage?.(f.message);
      case "message_edited":
        r.handlers.onChange?.(f);
        return r.handlers.onEdited?.(f.message);
      case "message_deleted":
        r.handlers.onChange?.(f);
        return r.handlers.onDeleted?.(f.message);
      case "message_hidden":
        r.handlers.onChange?.(f);
        return r.handlers.onHidden?.(f.message_id, f.message);
      case "message_restored":
        r.handlers.onChange?.(f);
        return r.handlers.onRestored?.(f.message);
      case "message_erased":
        r.handlers.onChange?.(f);
        return r.handlers.onErased?.(f.message_id, f.message);
      case "presence":
        return r.handlers.onPresence?.(onlineCount(f));
      case "typing":
        return r.handlers.onTyping?.(f.anon_id);
    }
  }
  onError(f) {
    const p = f.ref !== void 0 ? this.pendingRefs.get(f.ref) : void 0;
    if (f.ref !== void 0) this.pendingRefs.delete(f.ref);
    const err = new CGError(statusOfCode(f.code), f.code, f.message, f.retry_after_ms ?? null);
    const retryable = f.code === "rate_limited" || f.code === "unavailable";
    if (!p) return this.debug("error", `${f.code}: ${f.message}`, f);
    if (p.kind === "publish") {
      const q = this.outboxes.get(p.room);
      const it = p.item;
      if (!q || q[0] !== it) return;
      it.ref = null;
      if (retryable) {
        it.waitTimer = setTimeout(() => {
          it.waitTimer = null;
          this.pump(p.room);
        }, f.retry_after_ms ?? 1e3);
        return;
      }
      q.shift();
      this.outboxChanged(p.room);
      it.reject?.(err);
      return this.pump(p.room);
    }
    if (p.kind === "subscribe") {
      const r = this.rooms.get(p.room);
      if (!r) return;
      if (retryable) {
        const gen = this.gen;
        r.retryTimer = setTimeout(() => {
          r.retryTimer = null;
          void this.sendSubscribes([r], gen);
        }, f.retry_after_ms ?? 1e3);
        return;
      }
      this.rooms.delete(p.room);
      this.pump(p.room);
      return r.handlers.onError?.(err);
    }
    this.debug("error", `${f.code}: ${f.message}`, f);
  }
  // ---- The outbox
  queue(room) {
    let q = this.outboxes.get(room);
    if (!q) {
      q = [];
      this.outboxes.set(room, q);
    }
    return q;
  }
  // pump sends a room's oldest unsent message, unless one is in flight or waiting out a limit.
  // In a room subscribed here it waits for the subscribe to go out first, so that the sender's
  // own messages come after the subscription's start and reach its handlers too.
  pump(room) {
    const it = this.outboxes.get(room)?.[0];
    if (!it || it.ref !== null || it.waitTimer !== null || this.current.status !== "live") return;
    if (this.rooms.get(room)?.sent === false) return;
    const f = {
      type: "publish",
      ref: "",
      room,
      content: it.content,
      client_msg_id: it.clientMsgId
    };
    if (it.parentId) f.parent_id = it.parentId;
    f.ref = it.ref = this.ref({ kind: "publish", room, item: it });
    this.write(f);
  }
  onAck(ref, m) {
    const p = ref === void 0 ? void 0 : this.pendingRefs.get(ref);
    if (ref !== void 0) this.pendingRefs.delete(ref);
    if (!p || p.kind !== "publish") return this.debug("unexpected", `an ack of ${ref}, which is not a publish in flight`, m);
    const q = this.outboxes.get(p.room);
    if (!q || q[0] !== p.item) return;
    q.shift();
    this.outboxChanged(p.room);
    p.item.resolve?.(m);
    this.pump(p.room);
  }
  outboxChanged(room) {
    if (this.outboxes.get(room)?.length === 0) this.outboxes.delete(room);
    this.saveOutbox();
    this.opts.onOutboxChange?.(room);
  }
  // ---- Storage
  // store runs storage writes one after another, so that a slow adapter never reorders them.
  store(fn) {
    const s = this.opts.storage;
    if (!s) return;
    this.storageChain = this.storageChain.then(() => fn(s)).catch((err) => {
      this.debug("storage", `storage failed: ${String(err)}`);
    });
  }
  setPosition(room, seq2) {
    this.positions.set(room, seq2);
    this.store((s) => s.setItem(this.prefix + "seq." + room, String(seq2)));
  }
  async loadPosition(room) {
    const s = this.opts.storage;
    if (!s) return;
    try {
      const v = await s.getItem(this.prefix + "seq." + room);
      const n = v === null ? NaN : Number(v);
      if (!this.positions.has(room) && Number.isInteger(n) && n >= 0) this.positions.set(room, n);
    } catch (err) {
      this.debug("storage", `storage failed: ${String(err)}`);
    }
  }
  saveOutbox() {
    const all = [];
    for (const q of this.outboxes.values()) {
      for (const it of q) all.push({ room: it.room, client_msg_id: it.clientMsgId, content: it.content, parent_id: it.parentId });
    }
    const key = this.prefix + "outbox";
    this.store((s) => all.length ? s.setItem(key, JSON.stringify(all)) : s.removeItem(key));
  }
  // restoreOutbox puts the messages a previous page left unsent back in their outboxes.
  async restoreOutbox() {
    const s = this.opts.storage;
    if (!s) return;
    let saved;
    try {
      const v = await s.getItem(this.prefix + "outbox");
      saved = v === null ? [] : JSON.parse(v);
    } catch (err) {
      this.debug("storage", `unreadable outbox: ${String(err)}`);
      return;
    }
    if (!Array.isArray(saved)) return;
    for (const e of saved) {
      if (typeof e.room !== "string" || typeof e.client_msg_id !== "string" || typeof e.content !== "string") continue;
      this.queue(e.room).push({
        room: e.room,
        clientMsgId: e.client_msg_id,
        content: e.content,
        parentId: typeof e.parent_id === "string" ? e.parent_id : null,
        resolve: null,
        reject: null,
        ref: null,
        waitTimer: null
      });
    }
    if (this.outboxes.size > 0) {
      for (const room of this.outboxes.keys()) this.opts.onOutboxChange?.(room);
      this.connect();
      for (const room of this.outboxes.keys()) this.pump(room);
    }
  }
};

// src/state.ts
var RoomState = class {
  constructor() {
    this.held = /* @__PURE__ */ new Map();
    this.last = 0;
  }
  /** The highest position applied: resume the room from it (`since_seq`). */
  get lastSeq() {
    return this.last;
  }
  /** addPage takes a page of the history route, whose messages are as of its `last_seq`. */
  addPage(page) {
    for (const m of page.messages) this.put(m, page.last_seq);
    this.last = Math.max(this.last, page.last_seq);
  }
  /** addMessage takes a new message (a `message` frame, or the ack of one's own), at its seq. */
  addMessage(m) {
    const pos = m.seq;
    if (m.parent_id !== null && !this.seen(m.id, pos)) {
      const root = this.held.get(m.parent_id);
      if (root && pos > root.position) root.message = { ...root.message, reply_count: root.message.reply_count + 1 };
    }
    this.put(m, pos);
    this.last = Math.max(this.last, pos);
  }
  /** applyChange takes a change frame: the message as the change left it, at the change's position. */
  applyChange(f) {
    this.put(f.message, f.seq);
    this.last = Math.max(this.last, f.seq);
  }
  /** get returns a message as it is now. */
  get(id) {
    return this.held.get(id)?.message;
  }
  /** messages returns every message held, in ascending seq. */
  messages() {
    return [...this.held.values()].map((h) => h.message).sort((a, b) => a.seq - b.seq);
  }
  // seen reports whether the message is held already with a state at least as new as pos.
  seen(id, pos) {
    const h = this.held.get(id);
    return h !== void 0 && h.position >= pos;
  }
  put(m, pos) {
    if (this.seen(m.id, pos)) return;
    this.held.set(m.id, { message: m, position: pos });
  }
};

// src/storage.ts
function memoryStorage() {
  const data = /* @__PURE__ */ new Map();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => {
      data.set(k, v);
    },
    removeItem: (k) => {
      data.delete(k);
    }
  };
}
export {
  Api,
  CGError,
  Live,
  MAX_CONTENT_CHARS,
  RoomState,
  memoryStorage,
  normalizeContent,
  parseFrame,
  reconnectAfter,
  validClientMsgId
};
