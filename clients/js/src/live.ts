// Live is the one WebSocket of a signed-in client: every subscribed room rides on it, it resumes
// each room after the last event position seen, and it delivers each room's events (new messages
// and changes to them) in order, once.
import type { Api } from "./http.js";
import { CGError, statusOfCode } from "./errors.js";
import { newClientMsgId, normalizeContent } from "./content.js";
import { parseFrame, type ChangeFrame, type ClientFrame, type ServerFrame } from "./frames.js";
import type { StorageAdapter } from "./storage.js";
import type { Message, Notification } from "./types.js";

/** The part of a WebSocket the library uses: the browser's, React Native's and the `ws` package's all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "message" | "error", listener: (event: unknown) => void): void;
}

/** A WebSocket constructor. The third argument carries headers where the platform takes them (Node's `ws`, React Native). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers: Record<string, string> },
) => WebSocketLike;

/** The connection's state: `offline` says when the next try is (null: none, the client was closed or the session ended). */
export type LiveState =
  | { status: "connecting" }
  | { status: "live" }
  | { status: "offline"; retryInMs: number | null };

/** Something the library noticed and handled, for logs and tests; never needed to use it. */
export interface DebugEvent {
  /** What happened: `unknown_type`, `unknown_field`, `malformed`, `duplicate`, `gap`, `closed`, `error`, `connect`. */
  kind: string;
  /** A sentence for people. */
  detail: string;
  /** The frame concerned, when there is one. */
  frame?: unknown;
}

/** Options of a Live connection. */
export interface LiveOptions {
  /** The HTTP client, for WebSocket tickets and the session token. */
  api: Api;
  /** The socket's URL, or a function read at every connect; by default the Api's base URL with ws(s): and /ws. */
  url?: string | (() => string);
  /** The WebSocket constructor; the global one by default. Node passes the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /**
   * How the socket authenticates: `ticket` (the default: a single-use ticket in the URL, which
   * works everywhere, browsers included) or `header` (the session token in an Authorization
   * header, for platforms whose WebSocket takes headers: Node's `ws`, React Native).
   */
  auth?: "ticket" | "header";
  /** Where positions and unsent messages are kept across reloads. */
  storage?: StorageAdapter;
  /** The prefix of the storage keys (default `cg.`). */
  storagePrefix?: string;
  /** Called once when the session ends (revoked or expired): sign in again. The client stops. */
  onSessionEnded?: () => void;
  /** Called with everything the library ignored or recovered from. */
  debug?: (event: DebugEvent) => void;
  /** Called when the unsent messages of a room change (see pending()). */
  onOutboxChange?: (room: string) => void;
  /** Called when the user's read marker of a room moved on another device (or over HTTP): where it stands now. */
  onRead?: (room: string, seq: number) => void;
  /** Called with each notification of a reply, whatever rooms are subscribed. The inbox (Api.notifications) has those made while offline. */
  onNotification?: (n: Notification) => void;
  /** How often to ping the server (default 25 s), and how long to wait for its pong (default 10 s). */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

/**
 * A number of users online: exact (`online`, with `fewerThan` null) from the anonymity threshold
 * K up; below it `online` is null and `fewerThan` is K ("fewer than 5 online").
 */
export interface OnlineCount {
  online: number | null;
  fewerThan: number | null;
}

/** What a room's `subscribed` frame tells. */
export interface SubscribedInfo extends OnlineCount {
  /** The caller's pseudonym in the room. */
  anonId: string;
  /** The room's last event position. */
  lastSeq: number;
  /** Fewer than `anonymityK` users are enrolled in the class: pseudonyms hide little there. */
  smallRoom: boolean;
  /** The anonymity threshold K. */
  anonymityK: number;
}

/**
 * What a room's subscriber is told. Every handler is optional. New messages and changes to
 * messages are the room's events: each comes exactly once, in the order of the room's positions,
 * after the last one seen (a resume's replay included); RoomState applies them.
 */
export interface RoomHandlers {
  /** A new message (its position is its seq). */
  onMessage?(message: Message): void;
  /** Any change to a message, at its own position: called before the handler of its kind. */
  onChange?(change: ChangeFrame): void;
  /** Its author edited a message (`edited_at` set). */
  onEdited?(message: Message): void;
  /** Its author deleted a message: a tombstone that keeps its pseudonym. */
  onDeleted?(message: Message): void;
  /** The room is live on this connection (after every connect): the caller's pseudonym, the room's last seq, who is online. */
  onSubscribed?(info: SubscribedInfo): void;
  /** A message was hidden (the message has no content). */
  onHidden?(messageId: string, message: Message): void;
  /** A hidden message was restored. */
  onRestored?(message: Message): void;
  /** A message of a deleted account was erased: it is a tombstone now (deleted, no content, no pseudonym). */
  onErased?(messageId: string, message: Message): void;
  /** The number of users online in the room, as an OnlineCount. */
  onPresence?(online: OnlineCount): void;
  /** Someone is typing. */
  onTyping?(anonId: string): void;
  /** The server took the room away (the class was dropped); the subscription has ended. */
  onUnsubscribed?(): void;
  /** The subscription was refused (`not_enrolled`, `not_found`); it has ended. */
  onError?(error: CGError): void;
}

/** A subscription of one room. */
export interface Subscription {
  readonly room: string;
  /** The highest event position delivered, or null before the first `subscribed`. */
  readonly lastSeq: number | null;
  /** Ends the subscription. */
  unsubscribe(): void;
}

/** A message waiting in a room's outbox. */
export interface PendingMessage {
  clientMsgId: string;
  content: string;
  parentId: string | null;
}

interface Room {
  room: string;
  handlers: RoomHandlers;
  ready: Promise<void>;
  subscribed: boolean;
  /** The subscribe went out on this connection: the room's publishes may follow it. */
  sent: boolean;
  retryTimer: ReturnType<typeof setTimeout> | null;
  sub: Subscription;
}

interface OutboxItem extends PendingMessage {
  room: string;
  resolve: ((m: Message) => void) | null;
  reject: ((e: CGError) => void) | null;
  ref: string | null;
  waitTimer: ReturnType<typeof setTimeout> | null;
}

type Pending = { kind: "subscribe" | "unsubscribe" | "ping" | "read"; room: string } | { kind: "publish"; room: string; item: OutboxItem };

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const OPEN = 1;

/** reconnectAfter reads the delay a 1012 close's reason asks for (`reconnect_after_ms=N`). */
export function reconnectAfter(reason: string): number | null {
  const m = /reconnect_after_ms=(\d+)/.exec(reason);
  return m ? Number(m[1]) : null;
}

// onlineCount reads a frame's count of users online.
function onlineCount(f: { online: number | null; online_fewer_than?: number }): OnlineCount {
  return { online: f.online, fewerThan: f.online === null ? (f.online_fewer_than ?? null) : null };
}

/**
 * Live is one WebSocket for every room of a signed-in client. It connects on the first
 * subscribe or send (or connect()), reconnects with full-jitter backoff (at most 10 s), resumes
 * every room after the last seq it delivered, and sends each room's messages one at a time in the
 * order send() was called, each under a client_msg_id kept until it is acknowledged.
 */
export class Live {
  private readonly opts: LiveOptions;
  private readonly WS: WebSocketConstructor;
  private readonly prefix: string;
  private readonly rooms = new Map<string, Room>();
  private readonly positions = new Map<string, number>();
  private readonly outboxes = new Map<string, OutboxItem[]>();
  private readonly pendingRefs = new Map<string, Pending>();
  private readonly stateListeners = new Set<(s: LiveState) => void>();
  private readonly restored: Promise<void>;
  private ws: WebSocketLike | null = null;
  private gen = 0;
  private attempt = 0;
  private refs = 0;
  private started = false;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private current: LiveState = { status: "offline", retryInMs: null };
  private storageChain: Promise<void> = Promise.resolve();

  constructor(opts: LiveOptions) {
    this.opts = opts;
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("Live: no WebSocket on this platform; pass options.WebSocket (in Node, the ws package)");
    this.WS = WS;
    this.prefix = opts.storagePrefix ?? "cg.";
    this.restored = this.restoreOutbox();
  }

  /** The connection's state. */
  get state(): LiveState {
    return this.current;
  }

  /** onState calls listener with every change of state; it returns a function that stops it. */
  onState(listener: (s: LiveState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** connect starts the connection (subscribe and send start it too). */
  connect(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.open();
  }

  /** reconnectNow tries at once instead of waiting for the backoff (the device came back online, the tab became visible). */
  reconnectNow(): void {
    if (this.stopped) return;
    if (!this.started) return this.connect();
    if (this.ws !== null || this.current.status === "connecting") return;
    this.attempt = 0;
    void this.open();
  }

  /** close ends the connection for good; unsent messages stay in storage, and their send() calls fail with `closed`. */
  close(): void {
    if (this.stopped) return;
    this.halt(new CGError(0, "closed", "The client was closed before the message was sent."));
    this.setState({ status: "offline", retryInMs: null });
  }

  // halt stops the client: no socket, no timer, and every send() still waiting fails with err.
  private halt(err: CGError): void {
    this.stopped = true;
    this.drop(1000, "");
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
  subscribe(room: string, handlers: RoomHandlers = {}, opts: { sinceSeq?: number } = {}): Subscription {
    const old = this.rooms.get(room);
    if (old) {
      old.handlers = handlers;
      return old.sub;
    }
    if (opts.sinceSeq !== undefined) this.positions.set(room, opts.sinceSeq);
    const self = this;
    const r: Room = {
      room,
      handlers,
      ready: this.positions.has(room) ? Promise.resolve() : this.loadPosition(room),
      subscribed: false,
      sent: false,
      retryTimer: null,
      sub: {
        room,
        get lastSeq() { return self.positions.get(room) ?? null; },
        unsubscribe: () => self.unsubscribe(room),
      },
    };
    this.rooms.set(room, r);
    if (this.ws && this.current.status === "live") void this.sendSubscribes([r], this.gen);
    this.connect();
    return r.sub;
  }

  private unsubscribe(room: string): void {
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
  send(room: string, content: string, opts: { parentId?: string | null } = {}): Promise<Message> {
    if (this.stopped) return Promise.reject(new CGError(0, "closed", "The client is closed."));
    let text: string;
    try {
      text = normalizeContent(content);
    } catch (err) {
      return Promise.reject(err);
    }
    const item: OutboxItem = {
      room, clientMsgId: newClientMsgId(), content: text, parentId: opts.parentId ?? null,
      resolve: null, reject: null, ref: null, waitTimer: null,
    };
    const done = new Promise<Message>((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
    });
    // Every send waits for the restored outbox, in call order, so restored messages go first.
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
  markRead(room: string, seq: number): void {
    if (this.current.status === "live") this.write({ type: "read", ref: this.ref({ kind: "read", room }), room, seq });
  }

  /** typing tells the room the user is typing (dropped while offline). */
  typing(room: string): void {
    if (this.current.status === "live") this.write({ type: "typing", room });
  }

  /** pending lists a room's messages not yet acknowledged, oldest first. */
  pending(room: string): PendingMessage[] {
    return (this.outboxes.get(room) ?? []).map(({ clientMsgId, content, parentId }) => ({ clientMsgId, content, parentId }));
  }

  // ---- The connection

  private setState(s: LiveState): void {
    this.current = s;
    for (const l of this.stateListeners) l(s);
  }

  private debug(kind: string, detail: string, frame?: unknown): void {
    this.opts.debug?.(frame === undefined ? { kind, detail } : { kind, detail, frame });
  }

  private url(): string {
    const u = this.opts.url;
    if (typeof u === "function") return u();
    if (typeof u === "string") return u;
    let base = this.opts.api.baseUrl;
    const loc = (globalThis as { location?: { origin?: string } }).location;
    if (base === "" && loc?.origin) base = loc.origin;
    return base.replace(/^http/, "ws") + "/ws";
  }

  private async open(): Promise<void> {
    const gen = ++this.gen;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.setState({ status: "connecting" });
    let url = this.url();
    let init: { headers: Record<string, string> } | undefined;
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
    this.debug("connect", "dialing " + url.replace(/ticket=[^&]*/, "ticket=…"));
    const ws = init ? new this.WS(url, undefined, init) : new this.WS(url);
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      if (gen !== this.gen) return;
      opened = true;
      this.onOpen(gen);
    });
    ws.addEventListener("message", (ev) => {
      if (gen === this.gen) this.onFrame((ev as { data?: unknown }).data);
    });
    ws.addEventListener("close", (ev) => {
      if (gen !== this.gen) return;
      const { code, reason } = ev as { code?: number; reason?: string };
      void this.onClose(code ?? 1006, reason ?? "", opened);
    });
  }

  private onOpen(gen: number): void {
    this.setState({ status: "live" });
    this.armPing();
    void this.sendSubscribes([...this.rooms.values()], gen);
    for (const room of this.outboxes.keys()) this.pump(room);
  }

  // sendSubscribes subscribes rooms once their positions are known, all in one go, as the
  // server prefers.
  private async sendSubscribes(rooms: Room[], gen: number): Promise<void> {
    await Promise.all(rooms.map((r) => r.ready));
    if (gen !== this.gen || this.current.status !== "live") return;
    for (const r of rooms) {
      if (this.rooms.get(r.room) !== r) continue;
      r.subscribed = false;
      const since = this.positions.get(r.room);
      const f: ClientFrame = { type: "subscribe", ref: this.ref({ kind: "subscribe", room: r.room }), room: r.room };
      if (since !== undefined) f.since_seq = since;
      this.write(f);
      r.sent = true;
      this.pump(r.room);
    }
  }

  // drop forgets the socket (closing it when open) and everything tied to it.
  private drop(code: number, reason: string): void {
    this.gen++;
    const ws = this.ws;
    this.ws = null;
    if (ws && (ws.readyState === OPEN || ws.readyState === 0)) {
      try {
        ws.close(code, reason);
      } catch {
        // already closing
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

  private async onClose(code: number, reason: string, opened: boolean): Promise<void> {
    this.drop(1000, "");
    this.debug("closed", `closed with ${code}${reason ? " " + reason : ""}`);
    if (this.stopped) return;
    if (code === 4001) return this.endSession();
    if (!opened && this.opts.auth === "header") {
      // A refused upgrade looks like a lost connection; ask the API whether the session is over.
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
  private resync(detail: string, frame: unknown): void {
    this.debug("malformed", detail, frame);
    this.drop(4000, "resync");
    this.retryLater(this.backoff());
  }

  private retryLater(ms: number): void {
    if (this.stopped) return;
    const delay = Math.max(0, Math.round(ms));
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    // Announced first, so that the wait counts from the announcement: "retry in N ms" is never
    // cut short by the time the listeners take. A listener may reconnect at once (reconnectNow).
    this.setState({ status: "offline", retryInMs: delay });
    if (this.stopped || this.current.status !== "offline") return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.open();
    }, delay);
  }

  // backoff is the next delay: full jitter under an exponential ceiling capped at 10 s.
  private backoff(): number {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 20);
    return Math.random() * ceiling;
  }

  private endSession(): void {
    if (this.stopped) return;
    this.halt(new CGError(401, "unauthorized", "The session ended before the message was sent."));
    // The messages of an ended session are not sent by whoever signs in next.
    this.outboxes.clear();
    this.saveOutbox();
    this.setState({ status: "offline", retryInMs: null });
    this.opts.onSessionEnded?.();
  }

  private armPing(): void {
    const every = this.opts.pingIntervalMs ?? 25_000;
    const within = this.opts.pongTimeoutMs ?? 10_000;
    this.pingTimer = setInterval(() => {
      this.write({ type: "ping", ref: this.ref({ kind: "ping", room: "" }) });
      if (this.pongTimer) return;
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        this.debug("closed", "no pong");
        this.drop(4000, "no pong");
        this.retryLater(this.backoff());
      }, within);
    }, every);
  }

  private ref(p: Pending): string {
    const ref = "r" + ++this.refs;
    this.pendingRefs.set(ref, p);
    return ref;
  }

  private write(f: ClientFrame): void {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(f));
  }

  // ---- Frames

  private onFrame(data: unknown): void {
    const p = parseFrame(data);
    if (p.kind === "unknown_type") return this.debug("unknown_type", `ignored a frame of type ${p.type}`, data);
    if (p.kind === "malformed") return this.resync(`malformed frame (${p.reason}): resyncing`, data);
    if (p.unknownFields.length) this.debug("unknown_field", `ignored ${p.unknownFields.join(", ")}`, data);
    const f = p.frame;
    if (f.type !== "error") this.attempt = 0; // the server talks: the connection is good
    switch (f.type) {
      case "pong":
        if (f.ref !== undefined) this.pendingRefs.delete(f.ref);
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
        if (f.ref !== undefined) this.pendingRefs.delete(f.ref);
        return this.opts.onRead?.(f.room, f.seq);
      case "notification":
        return this.opts.onNotification?.(f.notification);
      default:
        return this.onRoomFrame(f);
    }
  }

  private onSubscribed(f: Extract<ServerFrame, { type: "subscribed" }>): void {
    if (f.ref) this.pendingRefs.delete(f.ref);
    const r = this.rooms.get(f.room);
    if (!r) return this.debug("unexpected", `subscribed to ${f.room}, which is not subscribed here`, f);
    const seen = this.positions.get(f.room);
    if (seen === undefined || f.last_seq < seen) {
      // No position yet (live from here on), or one past the room's end: a database that no
      // longer exists; start again from the room's end.
      if (seen !== undefined) this.debug("gap", `room ${f.room} ends at ${f.last_seq}, before the ${seen} seen`, f);
      this.setPosition(f.room, f.last_seq);
    }
    r.subscribed = true;
    r.handlers.onSubscribed?.({
      anonId: f.anon_id, lastSeq: f.last_seq, ...onlineCount(f), smallRoom: f.small_room, anonymityK: f.anonymity_k,
    });
  }

  private onRoomFrame(f: Exclude<ServerFrame, { type: "subscribed" | "pong" | "ack" | "error" | "read" | "notification" }>): void {
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
      // An event of the room's order: a new message at its seq, a change at its own.
      const pos = f.type === "message" ? f.message.seq : (f as ChangeFrame).seq;
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

  private onError(f: Extract<ServerFrame, { type: "error" }>): void {
    const p = f.ref !== undefined ? this.pendingRefs.get(f.ref) : undefined;
    if (f.ref !== undefined) this.pendingRefs.delete(f.ref);
    const err = new CGError(statusOfCode(f.code), f.code, f.message, f.retry_after_ms ?? null);
    const retryable = f.code === "rate_limited" || f.code === "unavailable";
    if (!p) return this.debug("error", `${f.code}: ${f.message}`, f);
    if (p.kind === "publish") {
      const q = this.outboxes.get(p.room);
      const it = p.item;
      if (!q || q[0] !== it) return;
      it.ref = null;
      if (retryable) {
        // The same message, under the same client_msg_id, once the server is ready for it;
        // the room's later messages wait behind it.
        it.waitTimer = setTimeout(() => {
          it.waitTimer = null;
          this.pump(p.room);
        }, f.retry_after_ms ?? 1000);
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
        }, f.retry_after_ms ?? 1000);
        return;
      }
      this.rooms.delete(p.room);
      this.pump(p.room);
      return r.handlers.onError?.(err);
    }
    this.debug("error", `${f.code}: ${f.message}`, f);
  }

  // ---- The outbox

  private queue(room: string): OutboxItem[] {
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
  private pump(room: string): void {
    const it = this.outboxes.get(room)?.[0];
    if (!it || it.ref !== null || it.waitTimer !== null || this.current.status !== "live") return;
    if (this.rooms.get(room)?.sent === false) return;
    const f: ClientFrame = {
      type: "publish", ref: "", room, content: it.content, client_msg_id: it.clientMsgId,
    };
    if (it.parentId) f.parent_id = it.parentId;
    f.ref = it.ref = this.ref({ kind: "publish", room, item: it });
    this.write(f);
  }

  private onAck(ref: string | undefined, m: Message): void {
    const p = ref === undefined ? undefined : this.pendingRefs.get(ref);
    if (ref !== undefined) this.pendingRefs.delete(ref);
    if (!p || p.kind !== "publish") return this.debug("unexpected", `an ack of ${ref}, which is not a publish in flight`, m);
    const q = this.outboxes.get(p.room);
    if (!q || q[0] !== p.item) return;
    q.shift();
    this.outboxChanged(p.room);
    p.item.resolve?.(m);
    this.pump(p.room);
  }

  private outboxChanged(room: string): void {
    if (this.outboxes.get(room)?.length === 0) this.outboxes.delete(room);
    this.saveOutbox();
    this.opts.onOutboxChange?.(room);
  }

  // ---- Storage

  // store runs storage writes one after another, so that a slow adapter never reorders them.
  private store(fn: (s: StorageAdapter) => void | Promise<void>): void {
    const s = this.opts.storage;
    if (!s) return;
    this.storageChain = this.storageChain.then(() => fn(s)).catch((err: unknown) => {
      this.debug("storage", `storage failed: ${String(err)}`);
    });
  }

  private setPosition(room: string, seq: number): void {
    this.positions.set(room, seq);
    this.store((s) => s.setItem(this.prefix + "seq." + room, String(seq)));
  }

  private async loadPosition(room: string): Promise<void> {
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

  private saveOutbox(): void {
    const all: { room: string; client_msg_id: string; content: string; parent_id: string | null }[] = [];
    for (const q of this.outboxes.values()) {
      for (const it of q) all.push({ room: it.room, client_msg_id: it.clientMsgId, content: it.content, parent_id: it.parentId });
    }
    const key = this.prefix + "outbox";
    this.store((s) => (all.length ? s.setItem(key, JSON.stringify(all)) : s.removeItem(key)));
  }

  // restoreOutbox puts the messages a previous page left unsent back in their outboxes.
  private async restoreOutbox(): Promise<void> {
    const s = this.opts.storage;
    if (!s) return;
    let saved: unknown;
    try {
      const v = await s.getItem(this.prefix + "outbox");
      saved = v === null ? [] : JSON.parse(v);
    } catch (err) {
      this.debug("storage", `unreadable outbox: ${String(err)}`);
      return;
    }
    if (!Array.isArray(saved)) return;
    for (const e of saved as { room?: unknown; client_msg_id?: unknown; content?: unknown; parent_id?: unknown }[]) {
      if (typeof e.room !== "string" || typeof e.client_msg_id !== "string" || typeof e.content !== "string") continue;
      this.queue(e.room).push({
        room: e.room, clientMsgId: e.client_msg_id, content: e.content,
        parentId: typeof e.parent_id === "string" ? e.parent_id : null,
        resolve: null, reject: null, ref: null, waitTimer: null,
      });
    }
    if (this.outboxes.size > 0) {
      for (const room of this.outboxes.keys()) this.opts.onOutboxChange?.(room);
      this.connect();
      for (const room of this.outboxes.keys()) this.pump(room);
    }
  }
}
