// Common Grounds, the students' app: sign-in, classes, the class rooms with their threads,
// friends, the account and, for moderators, the flagged messages. Everything it sends to and
// receives from the server goes through the client library (cg.js, built from clients/js): its
// Api for HTTP, and its Live for the one WebSocket, which resumes every room after the last
// message seen and sends each room's messages once, in order. Server data reaches the page as
// text nodes only (format.js makes links of http and https addresses).
import { Api, Live, MAX_CONTENT_CHARS, normalizeContent } from "./cg.js";
import {
  clock, countLabel, courseName, dayKey, dayLabel, linkify, phonesFromFile, plural, schedule, termName,
} from "./format.js";

const TOKEN_KEY = "commongrounds_token";
const STORAGE_PREFIX = "commongrounds."; // the library keeps seq.<room> and outbox under it
const FLAGGED_KEY = "commongrounds.flagged"; // ids of the messages this browser flagged
const CLASSES_KEY = "commongrounds.classes"; // the caller's classes, to list them offline
const PAGE = 50;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;
const GROUP_MS = 5 * 60 * 1000; // one author's messages within this read as one group
const COUNTER_FROM = MAX_CONTENT_CHARS - 500; // the counter shows from here

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,
  classes: new Map(), // class id -> Class, the caller's
  rooms: new Map(), // class id -> room (see room())
  current: null, // class id shown
  thread: null, // root message id of the open thread
  live: null,
  lastTyping: 0,
  online: false,
  failed: new Map(), // client-side id -> {room, content, parentId, error}: sends the server refused
};

const api = new Api({ baseUrl: "", token: () => state.token });

// ---- Small helpers ---------------------------------------------------------------------------

// el builds an element; strings among the children become text nodes, never markup.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

let toastTimer = 0;
// toast shows a short note; while the server cannot be reached, the offline note says so instead.
function toast(text) {
  if (!reachable) return;
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
}

// announce tells screen readers something politely, without moving focus.
function announce(text) {
  const a = $("announcer");
  a.textContent = "";
  setTimeout(() => { a.textContent = text; }, 50);
}

function store(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, String(value));
  } catch (_) { /* storage full or disabled: the app still works for this page */ }
}
function load(key) {
  try { return localStorage.getItem(key); } catch (_) { return null; }
}
function loadJSON(key, fallback) {
  try { return JSON.parse(load(key)) ?? fallback; } catch (_) { return fallback; }
}

const errText = (err) => (err.status === 0 ? "The server cannot be reached right now." : err.detail || err.message || String(err));
const personName = (u) => u.computing_id || u.email;

// call runs one call of the library's Api; a 401 signs out here too.
async function call(fn) {
  try {
    return await fn(api);
  } catch (err) {
    if (err.status === 401 && state.token) signOut("Your session has ended. Sign in again.");
    if (err.status === 0) setReachable(false);
    throw err;
  }
}

// confirmDialog asks in an in-page dialog; it resolves {ok, checked}.
function confirmDialog({ title, text, ok, check }) {
  const d = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("confirm-check-label").hidden = !check;
  $("confirm-check").checked = false;
  $("confirm-check-text").textContent = check || "";
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve({ ok: d.returnValue === "ok", checked: $("confirm-check").checked }), { once: true });
  });
}
for (const b of document.querySelectorAll("dialog [data-close]")) {
  b.addEventListener("click", () => b.closest("dialog").close(""));
}

// ---- Connection and reachability ---------------------------------------------------------------

let reachable = true;
function setReachable(yes) {
  reachable = yes;
  $("offline-note").hidden = yes && navigator.onLine;
}
window.addEventListener("offline", () => setReachable(false));
window.addEventListener("online", () => {
  setReachable(true);
  if (state.live) state.live.reconnectNow();
  else if (state.token && !state.me) signIn(state.token); // opened offline: sign in now
});

function setConn(s, text) {
  const c = $("conn");
  c.dataset.state = s;
  c.textContent = text;
  $("reconnect").hidden = s !== "offline" || !state.live;
}
$("reconnect").addEventListener("click", () => { if (state.live) state.live.reconnectNow(); });

// ---- Sign-in ---------------------------------------------------------------------------------

// linkToken takes the one-time token a sign-in link hands over as /#sign_in=..., and removes it
// from the address bar and the history.
function linkToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const t = params.get("sign_in");
  if (t) history.replaceState(null, "", location.pathname + location.search + "#/rooms");
  return t;
}

async function redeemLink(linkTok) {
  showSignIn();
  $("magic-status").textContent = "Signing you in…";
  try {
    const session = await api.verify(linkTok);
    await signIn(session.token);
  } catch (err) {
    $("magic-status").textContent = err.status === 0
      ? "The server could not be reached. Open the link again when you are online."
      : `${errText(err)} Ask for a new sign-in link below.`;
  }
}

function showSignIn() {
  $("app").hidden = true;
  $("signin").hidden = false;
}

api.config().then((c) => { $("link-note").hidden = c.sign_in_links !== "server_output"; }).catch(() => {});

$("magic-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const email = $("email").value.trim();
  const status = $("magic-status");
  status.textContent = "Sending…";
  try {
    await api.requestMagicLink(email);
    status.textContent = $("link-note").hidden
      ? `We sent a sign-in link to ${email}. Open it on this device; you can close this tab.`
      : `Your sign-in link for ${email} is in the server's output. Open it in this browser.`;
  } catch (err) {
    status.textContent = errText(err);
  }
});

async function signIn(token) {
  if (state.token && state.token !== token) reset();
  state.token = token;
  store(TOKEN_KEY, token);
  try {
    state.me = await call((a) => a.me());
  } catch (err) {
    if (err.status === 401 || state.token !== token) return;
    // The server is unreachable: the app opens from what this device kept (the service worker's
    // copy of the app, the list of classes), says it is offline, and tries again.
    $("signin").hidden = true;
    $("app").hidden = false;
    setReachable(false);
    for (const c of loadJSON(CLASSES_KEY, [])) state.classes.set(c.id, c);
    for (const sc of document.querySelectorAll(".screen")) sc.hidden = sc.dataset.screen !== "rooms";
    document.body.dataset.screen = "rooms";
    document.body.dataset.inRoom = "no";
    renderRoomList();
    setConn("offline", "offline");
    const delay = 2000 + Math.random() * 8000;
    setTimeout(() => { if (state.token === token && !state.me) signIn(token); }, delay);
    return;
  }
  setReachable(true);
  $("signin").hidden = true;
  $("app").hidden = false;
  $("mod-tab").hidden = state.me.role !== "moderator";
  $("account-email").textContent = `Signed in as ${state.me.email}.`;
  drawPhone();
  connect();
  await refreshClasses();
  route();
  refreshFriends().catch(() => {});
  refreshBell();
  loadMutes();
  offerPush();
}

// signOut forgets the session in this browser (the server side is revoked by logout).
function signOut(message) {
  const rooms = [...state.rooms.keys()];
  const wasSignedIn = state.token != null;
  store(TOKEN_KEY, null);
  reset();
  // What the library kept for this user (positions, unsent messages) is not the next user's.
  for (const id of rooms) store(STORAGE_PREFIX + "seq." + id, null);
  store(STORAGE_PREFIX + "outbox", null);
  store(FLAGGED_KEY, null);
  store(CLASSES_KEY, null);
  // The service worker forgets the names of this user's classes.
  if ("serviceWorker" in navigator && navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage({ type: "classes", names: {} });
  showSignIn();
  setConn("offline", "signed out");
  if (message && wasSignedIn) toast(message);
}

function reset() {
  state.token = null;
  state.me = null;
  if (state.live) state.live.close();
  state.live = null;
  state.classes.clear();
  state.rooms.clear();
  state.failed.clear();
  state.current = null;
  state.thread = null;
  if ($("thread").open) $("thread").close();
  inbox.unread = 0;
  inbox.cursor = null;
  mutes.clear();
  $("inbox").replaceChildren();
  drawBell();
  renderRoomList();
  updateTitle();
}

$("logout").addEventListener("click", async () => {
  try { await call((a) => a.logout()); } catch (_) { /* signed out here whatever the server said */ }
  signOut();
});

// ---- Screens (the address's fragment: #/rooms, #/rooms/<class id>, #/classes, ...) -------------

function route() {
  if (!state.me) return;
  const [, screen = "rooms", id, threadId] = location.hash.match(/^#\/(\w+)(?:\/([\w-]+)(?:\/thread\/([\w-]+))?)?/) || [];
  const name = ["rooms", "classes", "friends", "inbox", "account", "mod"].includes(screen) ? screen : "rooms";
  for (const s of document.querySelectorAll(".screen")) s.hidden = s.dataset.screen !== name;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.tab === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.dataset.screen = name;
  if (name === "rooms") {
    const target = id && state.classes.has(id) ? id : null;
    // On a wide screen the list and a room show side by side: open the last room read.
    const wide = matchMedia("(min-width: 900px)").matches;
    const pick = target || (wide ? (state.classes.has(load("commongrounds.room")) ? load("commongrounds.room") : state.classes.keys().next().value) : null);
    document.body.dataset.inRoom = target ? "yes" : "no";
    if (pick) selectRoom(pick);
    else { state.current = null; drawRoom(); }
    if (target && threadId) {
      // A notification's address: the thread opens once, and the address stays the room's.
      history.replaceState(null, "", `#/rooms/${target}`);
      openThread(threadId);
    }
  } else {
    document.body.dataset.inRoom = "no";
    if (name === "friends") refreshFriends().catch((err) => toast(errText(err)));
    if (name === "mod") loadFlagged(true);
    if (name === "inbox") loadInbox(true);
  }
}
window.addEventListener("hashchange", route);

// ---- Classes ---------------------------------------------------------------------------------

async function refreshClasses() {
  const classes = await call((a) => a.myClasses());
  store(CLASSES_KEY, JSON.stringify(classes));
  state.classes.clear();
  for (const c of classes) state.classes.set(c.id, c);
  for (const id of state.rooms.keys()) if (!state.classes.has(id)) forgetRoom(id);
  for (const c of classes) openRoom(c.id);
  for (const c of classes) applyUnread(c);
  renderRoomList();
  tellWorkerClasses();
}

function renderRoomList() {
  const list = $("room-list");
  const items = [...state.classes.values()].sort((a, b) => courseName(a).localeCompare(courseName(b)));
  list.replaceChildren(...items.map((c) => {
    const r = state.rooms.get(c.id);
    const unread = r ? r.unread : 0;
    const label = countLabel(unread, r && r.unreadMore);
    return el("li", {},
      el("a", { href: `#/rooms/${c.id}`, class: "room-link", "aria-current": c.id === state.current ? "true" : false },
        el("span", { class: "room-course" }, courseName(c)),
        el("span", { class: "room-sub" }, c.title || ""),
        unread > 0 && el("span", { class: "badge", "aria-label": `${label} unread ${unread === 1 ? "message" : "messages"}` }, label)));
  }));
  $("rooms-empty").hidden = items.length > 0;
  updateTitle();
}

function updateTitle() {
  let total = 0;
  let more = false;
  for (const r of state.rooms.values()) {
    total += r.unread;
    more ||= r.unreadMore;
  }
  const label = countLabel(total, more);
  document.title = total > 0 ? `(${label}) Common Grounds` : "Common Grounds";
  const b = $("unread-total");
  b.hidden = total === 0;
  b.textContent = label;
  b.setAttribute("aria-label", `${label} unread ${total === 1 ? "message" : "messages"}`);
}

function classCard(c, { joined, onJoin }) {
  return el("li", { class: "class-card" },
    el("div", { class: "class-main" },
      el("h3", {}, courseName(c), c.title ? ` · ${c.title}` : ""),
      el("p", { class: "class-line" }, [c.component, c.instructor].filter(Boolean).join(" · ")),
      el("p", { class: "class-line" }, schedule(c) || "No meeting time"),
      el("p", { class: "class-line muted" }, [termName(c.term), c.sis_class_number && `Class number ${c.sis_class_number}`].filter(Boolean).join(" · "))),
    joined
      ? el("a", { href: `#/rooms/${c.id}`, class: "button" }, "Open room")
      : el("button", { type: "button", onclick: onJoin, "aria-label": `Join ${courseName(c)}` }, "Join"));
}

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("q").value.trim();
  const list = $("results");
  const status = $("search-status");
  if (!q) {
    status.textContent = "Type a course (CS 2100), a word of its title, an instructor or a class number.";
    list.replaceChildren();
    return;
  }
  status.textContent = "Searching…";
  try {
    const page = await call((a) => a.searchClassesPage({ q, limit: 50 }));
    const classes = page.items;
    if (classes.length === 0) {
      const any = await call((a) => a.searchClassesPage({ limit: 1 }));
      status.textContent = any.items.length === 0
        ? "This server has no classes yet. Its operator brings them in from the university's class search (commongrounds sync-classes or import-classes)."
        : `No class matches “${q}”. Try the subject and number (CS 2100), one word of the title, or the instructor's last name.`;
    } else {
      status.textContent = `${plural(classes.length, "class", "classes")}${page.next_cursor ? " (the first 50: add a word to narrow it down)" : ""}.`;
    }
    list.replaceChildren(...classes.map((c) => classCard(c, { joined: state.classes.has(c.id), onJoin: () => enroll(c) })));
  } catch (err) {
    status.textContent = errText(err);
  }
});

async function enroll(c) {
  try {
    await call((a) => a.enroll(c.id));
  } catch (err) {
    toast(errText(err));
    return;
  }
  state.classes.set(c.id, c);
  openRoom(c.id);
  renderRoomList();
  announce(`Joined ${courseName(c)}.`);
  location.hash = `#/rooms/${c.id}`;
}

$("leave").addEventListener("click", async () => {
  const c = state.classes.get(state.current);
  if (!c) return;
  const { ok } = await confirmDialog({
    title: `Leave ${courseName(c)}?`,
    text: "You stop receiving its messages. What you wrote stays in the room under your pseudonym; you can join again later.",
    ok: "Leave",
  });
  if (!ok) return;
  try {
    await call((a) => a.drop(c.id));
  } catch (err) {
    toast(errText(err));
    return;
  }
  state.classes.delete(c.id);
  forgetRoom(c.id);
  renderRoomList();
  announce(`You left ${courseName(c)}.`);
  location.hash = "#/rooms";
});

$("room-details-toggle").addEventListener("click", () => {
  const b = $("room-details-toggle");
  const open = b.getAttribute("aria-expanded") !== "true";
  b.setAttribute("aria-expanded", String(open));
  $("room-details").hidden = !open;
});

// ---- Rooms -----------------------------------------------------------------------------------

function room(id) {
  let r = state.rooms.get(id);
  if (!r) {
    r = {
      id,
      messages: new Map(), // id -> Message
      newestSeq: 0,
      oldestSeq: Infinity,
      more: false,
      loading: null,
      loadingOlder: false,
      sub: null,
      subscribed: false,
      anonId: null,
      online: null,
      fewerThan: null,
      smallRoom: false,
      replayUntil: 0,
      unread: 0, // messages by others after the read marker, as the server counts them (to 99)
      unreadMore: false, // more than 99
      readSeq: 0, // the user's read marker of the room
      typing: new Map(), // anon id -> until
      friends: null,
    };
    state.rooms.set(id, r);
  }
  return r;
}

function forgetRoom(id) {
  const r = state.rooms.get(id);
  if (r && r.sub) r.sub.unsubscribe();
  state.rooms.delete(id);
  store(STORAGE_PREFIX + "seq." + id, null);
  if (state.current === id) state.current = null;
}

function selectRoom(id) {
  const changed = state.current !== id;
  state.current = id;
  store("commongrounds.room", id);
  const r = room(id);
  if (changed) {
    $("room-details").hidden = true;
    $("room-details-toggle").setAttribute("aria-expanded", "false");
    r.friends = null;
    call((a) => a.classFriends(id)).then((f) => { r.friends = f; drawRoom(); }).catch(() => {});
  }
  refreshSize(r);
  loadHistory(r).then(() => markSeen(r)).catch((err) => toast(`Could not load messages: ${errText(err)}`));
  markSeen(r);
  renderRoomList();
  drawRoom({ toBottom: changed });
}

// refreshSize asks whether the class is small now: the subscription said so when it began, and
// students join while it lasts.
function refreshSize(r) {
  call((a) => a.getClass(r.id)).then((c) => {
    r.smallRoom = c.enrolled_count === null;
    if (c.enrolled_fewer_than) r.fewerThan = c.enrolled_fewer_than;
    if (state.current === r.id) drawRoom();
  }).catch(() => {});
}

// loadHistory fetches, once per page load, the page of a room that ends with the last message
// this browser saw there (the newest page on a first visit); the socket resumes after it.
function loadHistory(r) {
  if (!r.loading) {
    const seen = r.sub && r.sub.lastSeq;
    const query = seen ? { before_seq: seen + 1, limit: PAGE } : { limit: PAGE };
    r.loading = call((a) => a.messages(r.id, query))
      .then((messages) => {
        for (const m of messages) add(r, m, false);
        r.oldestSeq = Math.min(r.oldestSeq, messages.length ? messages[0].seq : (seen || 0) + 1);
        r.more = r.oldestSeq > 1;
        render({ toBottom: true });
      })
      .catch((err) => {
        r.loading = null;
        throw err;
      });
  }
  return r.loading;
}

// fillGap fetches what lies between the messages held and a room's last seq, for a room whose
// history was loaded before it was subscribed.
async function fillGap(r, lastSeq) {
  if (!r.loading) return;
  await r.loading;
  if (r.newestSeq >= lastSeq) return;
  for await (const m of api.newerMessages(r.id, { afterSeq: r.newestSeq, pageSize: PAGE })) {
    if (m.seq > lastSeq) break;
    add(r, m, false);
  }
  render();
}

async function loadOlder() {
  const r = state.current && state.rooms.get(state.current);
  if (!r || !r.more || r.loadingOlder) return;
  r.loadingOlder = true;
  $("history-note").textContent = "Loading older messages…";
  try {
    const messages = await call((a) => a.messages(r.id, { before_seq: r.oldestSeq, limit: PAGE }));
    for (const m of messages) add(r, m, false);
    if (messages.length) r.oldestSeq = messages[0].seq;
    r.more = messages.length === PAGE && r.oldestSeq > 1;
    drawRoom({ keepScroll: true });
  } finally {
    r.loadingOlder = false;
  }
}

// add records a message; live is true for one that just arrived (not from history), which
// raises its root's reply count once.
function add(r, m, live) {
  const known = r.messages.has(m.id);
  r.messages.set(m.id, m);
  if (m.seq > r.newestSeq) r.newestSeq = m.seq;
  if (live && !known && m.parent_id) {
    const root = r.messages.get(m.parent_id);
    if (root) root.reply_count = (root.reply_count || 0) + 1;
  }
  return !known;
}

// ---- Drawing a room ----------------------------------------------------------------------------

const flagged = new Set(loadJSON(FLAGGED_KEY, []));

// hiddenText says why a message is hidden, when the server says (hidden_by), else both reasons.
function hiddenText(m) {
  if (m.hidden_by === "flags") return "Hidden after reports.";
  if (m.hidden_by === "moderator") return "Hidden by a moderator.";
  return "Hidden after reports or by a moderator.";
}

function messageItem(r, m, { inThread, head, root }) {
  const own = r.anonId != null && m.anon_id === r.anonId;
  const gone = m.hidden || m.deleted;
  const replies = m.reply_count || 0;
  const body = m.deleted ? "Message deleted" : m.hidden ? hiddenText(m) : null;
  const failed = m.failed;
  const mine = own && !gone && !m.pending;
  return el("li", {
    class: `msg${root ? " root" : ""}${own ? " own" : ""}${gone ? " gone" : ""}${m.pending ? " pending" : ""}${failed ? " failed" : ""}${head ? " head" : ""}`,
    "data-id": m.id,
  },
  head && el("p", { class: "msg-head" },
    el("span", { class: "anon" }, m.anon_id || "Deleted account"),
    own && el("span", { class: "you" }, " (you)"),
    m.created_at && el("time", { datetime: m.created_at }, clock(m.created_at))),
  // Isolated, so that no message can reorder the text around it.
  el("p", { class: "body", dir: "auto" }, body ?? linkify(m.content || "")),
  m.edited_at && !gone && el("p", { class: "edited" },
    el("time", { datetime: m.edited_at, title: `Edited ${new Date(m.edited_at).toLocaleString()}` }, "edited")),
  el("div", { class: "msg-actions" },
    m.pending && !failed && el("span", { class: "state" }, "Sending…"),
    failed && el("span", { class: "state" }, `Not sent: ${failed}`),
    failed && el("button", { type: "button", class: "link", onclick: () => retryFailed(m.id) }, "Retry"),
    failed && el("button", { type: "button", class: "link", onclick: () => discardFailed(m.id) }, "Discard"),
    !inThread && !m.parent_id && !m.pending && (!gone || (m.deleted && replies > 0)) && el("button", {
      type: "button", class: "link", onclick: () => openThread(m.id),
      "aria-label": replies === 0 ? "Reply in a thread" : `${plural(replies, "reply", "replies")}: open the thread`,
    }, replies === 0 ? "Reply" : plural(replies, "reply", "replies")),
    mine && el("button", { type: "button", class: "link", onclick: () => editMessage(m), "aria-label": "Edit your message" }, "Edit"),
    mine && el("button", { type: "button", class: "link", onclick: () => deleteMessage(m), "aria-label": "Delete your message" }, "Delete"),
    !own && !gone && !m.pending && (flagged.has(m.id)
      ? el("span", { class: "state" }, "You flagged this")
      : el("button", { type: "button", class: "link flag", onclick: () => flagMessage(m) }, "Flag"))));
}

// items lays out messages with day separators and groups of one author's messages.
function items(r, list, inThread, root = false) {
  const out = [];
  let prev = null;
  for (const m of list) {
    const t = m.created_at ? new Date(m.created_at).getTime() : Date.now();
    if (!inThread && m.created_at && (!prev || !prev.created_at || dayKey(prev.created_at) !== dayKey(m.created_at))) {
      out.push(el("li", { class: "day" }, el("span", {}, dayLabel(m.created_at))));
      prev = null;
    }
    const head = !prev || prev.anon_id !== m.anon_id || !prev.created_at || t - new Date(prev.created_at).getTime() > GROUP_MS
      || prev.hidden || prev.deleted;
    out.push(messageItem(r, m, { inThread, head: head || root, root }));
    prev = m;
  }
  return out;
}

// pendingOf lists the messages of a room still on their way (the library's outbox) and those
// the server refused (kept here with the reason, to retry or discard).
function pendingOf(r, parentId) {
  const out = [];
  if (state.live) {
    for (const p of state.live.pending(r.id)) {
      if (p.parentId !== parentId) continue;
      out.push({ id: p.clientMsgId, anon_id: r.anonId, content: p.content, parent_id: parentId, pending: true });
    }
  }
  for (const [id, f] of state.failed) {
    if (f.room === r.id && f.parentId === parentId) {
      out.push({ id, anon_id: r.anonId, content: f.content, parent_id: parentId, pending: true, failed: f.error });
    }
  }
  return out;
}

let renderQueued = false;
let renderOpts = {};
// render redraws the shown room and thread on the next frame, once however often it is asked.
function render(opts) {
  Object.assign(renderOpts, opts || {});
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const o = renderOpts;
    renderOpts = {};
    drawRoom(o);
  });
}

function presenceText(r) {
  if (!state.live || state.live.state.status !== "live" || !r.subscribed) return "offline: not live";
  if (r.online === null && r.fewerThan) return `fewer than ${r.fewerThan} online`;
  if (r.online === null) return "";
  return `${r.online} online`;
}

function drawRoom(o = {}) {
  const id = state.current;
  const c = id && state.classes.get(id);
  $("room").hidden = !c;
  if (!c) return;
  const r = room(id);
  $("room-title").textContent = `${courseName(c)}${c.title ? " · " + c.title : ""}`;
  $("room-title").title = $("room-title").textContent;
  $("room-meta").textContent = [presenceText(r), r.anonId && `you are ${r.anonId}`].filter(Boolean).join(" · ");
  $("room-schedule").textContent = [schedule(c), c.instructor, termName(c.term)].filter(Boolean).join(" · ");
  drawMute($("room-mute"), "room:" + id, "Mute reply notifications", "Unmute reply notifications");
  $("room-friends").textContent = r.friends == null ? ""
    : r.friends.length === 0 ? "None of your friends is in this class (or the class is too small to say)."
      : `Friends in this class: ${r.friends.map(personName).join(", ")}`;
  const small = $("small-room");
  small.hidden = !r.smallRoom;
  small.textContent = r.smallRoom
    ? `Fewer than ${r.fewerThan ?? "a few"} people are in this class: others may guess who is behind a pseudonym.` : "";
  $("history-note").textContent = r.more ? "Scroll up for older messages."
    : r.messages.size === 0 && !r.loading ? "" : r.messages.size === 0 ? "No messages yet: say hello." : "This is the start of the room.";
  if (r.messages.size === 0) $("history-note").textContent = "No messages yet: say hello to your classmates.";

  const scroller = $("scroller");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  const roots = [...r.messages.values()]
    .filter((m) => !m.parent_id && m.seq >= r.oldestSeq)
    .sort((a, b) => a.seq - b.seq);
  $("messages").replaceChildren(...items(r, roots, false), ...items(r, pendingOf(r, null), false));
  if (o.keepScroll) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  else if (o.toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
  if (o.toBottom || atBottom || scroller.scrollHeight <= scroller.clientHeight) r.below = 0;
  $("jump").hidden = !r.below;
  $("jump").textContent = r.below ? `${plural(r.below, "new message", "new messages")} ↓` : "New messages ↓";

  const now = Date.now();
  const typing = [...r.typing].filter(([, until]) => until > now).map(([anon]) => anon);
  $("typing").textContent = typing.length === 0 ? ""
    : typing.length === 1 ? `${typing[0]} is typing…` : `${typing.slice(0, 3).join(", ")} are typing…`;
  $("content").placeholder = r.anonId ? `Message as ${r.anonId}` : "Message the class";
  drawThread(r);
}

function drawThread(r) {
  if (!state.thread || !$("thread").open) return;
  drawMute($("thread-mute"), "thread:" + state.thread, "Mute thread", "Unmute thread");
  const root = r.messages.get(state.thread);
  const replies = [...r.messages.values()].filter((m) => m.parent_id === state.thread).sort((a, b) => a.seq - b.seq);
  $("thread-title").textContent = root ? `Thread · ${plural(root.reply_count || replies.length, "reply", "replies")}` : "Thread";
  $("thread-messages").replaceChildren(...(root ? items(r, [root], true, true) : []), ...items(r, replies, true), ...items(r, pendingOf(r, state.thread), true));
  const list = $("thread-messages");
  list.scrollTop = list.scrollHeight;
}

$("scroller").addEventListener("scroll", () => {
  const s = $("scroller");
  if (s.scrollTop < 120) loadOlder().catch((err) => toast(errText(err)));
  const r = state.current && state.rooms.get(state.current);
  if (r && r.below && s.scrollHeight - s.scrollTop - s.clientHeight < 80) {
    r.below = 0;
    $("jump").hidden = true;
  }
});
$("jump").addEventListener("click", () => {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
  const r = state.current && state.rooms.get(state.current);
  if (r) r.below = 0;
  $("jump").hidden = true;
  $("content").focus();
});

// Typing indicators fade on their own.
setInterval(() => {
  const r = state.current && state.rooms.get(state.current);
  if (r && r.typing.size > 0) {
    const now = Date.now();
    for (const [anon, until] of r.typing) if (until <= now) r.typing.delete(anon);
    render();
  }
}, 1000);

// ---- Threads ---------------------------------------------------------------------------------

async function openThread(rootId) {
  const r = room(state.current);
  state.thread = rootId;
  const d = $("thread");
  if (!d.open) d.showModal();
  drawThread(r);
  $("reply").focus();
  try {
    const { root, replies } = await call((a) => a.thread(r.id, rootId));
    add(r, root, false);
    for (const m of replies) add(r, m, false);
    drawThread(r);
  } catch (err) {
    toast(errText(err));
  }
}
$("thread-close").addEventListener("click", () => $("thread").close());
$("thread").addEventListener("close", () => {
  const id = state.thread;
  state.thread = null;
  // Back to the message the thread was opened from.
  const btn = id && document.querySelector(`#messages li[data-id="${CSS.escape(id)}"] .msg-actions button`);
  if (btn) btn.focus();
});

// ---- Edits and deletions -----------------------------------------------------------------------

// changed records the current state of a message its author edited or deleted; the frame has no
// reply count, which the message keeps.
function changed(r, m) {
  const old = r.messages.get(m.id);
  if (!old && m.seq < r.oldestSeq) return; // not loaded: history brings it as it is now
  r.messages.set(m.id, { ...m, reply_count: m.reply_count ?? old?.reply_count ?? 0 });
  if (state.current === r.id) render();
}

let editing = null;
function editMessage(m) {
  editing = m;
  $("edit-content").value = m.content || "";
  $("edit-status").textContent = "";
  $("edit-save").disabled = false;
  $("edit-dialog").showModal();
}
$("edit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const m = editing;
  if (!m) return;
  const content = $("edit-content").value;
  try {
    normalizeContent(content);
  } catch (err) {
    $("edit-status").textContent = errText(err);
    return;
  }
  $("edit-save").disabled = true;
  $("edit-status").textContent = "Saving…";
  try {
    const saved = await call((a) => a.editMessage(m.id, content));
    const r = state.rooms.get(saved.room);
    if (r) changed(r, saved);
    editing = null;
    $("edit-dialog").close();
    announce("Your message was edited.");
  } catch (err) {
    $("edit-save").disabled = err.code === "edit_window_passed" || err.code === "message_deleted";
    $("edit-status").textContent = err.code === "edit_window_passed"
      ? "The time for editing this message has passed, so it stays as it is. You can still delete it."
      : errText(err);
  }
});
$("edit-dialog").addEventListener("close", () => { editing = null; });

async function deleteMessage(m) {
  const { ok } = await confirmDialog({
    title: "Delete your message?",
    text: "Everyone sees “Message deleted” in its place under your pseudonym; replies to it stay. This cannot be undone.",
    ok: "Delete",
  });
  if (!ok) return;
  try {
    await call((a) => a.deleteMessage(m.id));
    const r = state.rooms.get(m.room);
    if (r) changed(r, { ...m, content: null, deleted: true });
    announce("Your message was deleted.");
  } catch (err) {
    toast(errText(err));
  }
}

// ---- Notifications ---------------------------------------------------------------------------

const inbox = { unread: 0, cursor: null, loading: false };

function drawBell() {
  const b = $("bell-count");
  b.hidden = inbox.unread === 0;
  b.textContent = countLabel(inbox.unread);
  const label = `${countLabel(inbox.unread)} unread ${inbox.unread === 1 ? "notification" : "notifications"}`;
  b.setAttribute("aria-label", label);
  // Inside a room on a phone the tabs give way to the room: its header shows the count.
  $("room-bell").hidden = inbox.unread === 0;
  $("room-bell").setAttribute("aria-label", `Inbox: ${label}`);
  $("room-bell-count").textContent = countLabel(inbox.unread);
}

function refreshBell() {
  call((a) => a.notifications({ limit: 1 })).then((p) => { inbox.unread = p.unread; drawBell(); }).catch(() => {});
}

function onNotification(n) {
  if (!n.read) inbox.unread++;
  drawBell();
  if (document.body.dataset.screen === "inbox") $("inbox").prepend(notificationItem(n));
  const c = state.classes.get(n.room);
  announce(`${n.anon_id || "Someone"} replied in ${c ? courseName(c) : "a thread"}.`);
}

function notificationItem(n) {
  const c = state.classes.get(n.room);
  const b = el("button", { type: "button", class: `inbox-item${n.read ? "" : " unread"}`, "data-id": n.id },
    el("span", { class: "who" }, `${n.anon_id || "Someone"} replied${n.read ? "" : " (unread)"}`),
    el("span", { class: "excerpt", dir: "auto" }, n.excerpt || "(this reply is no longer shown)"),
    el("span", { class: "meta" }, [c ? courseName(c) : "A class you left", n.created_at && `${dayLabel(n.created_at)} ${clock(n.created_at)}`].filter(Boolean).join(" · ")));
  b.addEventListener("click", () => openNotification(n, b));
  return el("li", {}, b);
}

async function openNotification(n, b) {
  if (!n.read) {
    try {
      await call((a) => a.readNotification(n.id));
      n.read = true;
      inbox.unread = Math.max(0, inbox.unread - 1);
      drawBell();
      b.classList.remove("unread");
      b.querySelector(".who").textContent = `${n.anon_id || "Someone"} replied`;
    } catch (err) {
      toast(errText(err));
    }
  }
  if (!state.classes.has(n.room)) return;
  location.hash = `#/rooms/${n.room}/thread/${n.thread_id}`;
}

async function loadInbox(fresh) {
  if (inbox.loading) return;
  inbox.loading = true;
  if (fresh) { inbox.cursor = null; $("inbox").replaceChildren(); }
  $("inbox-status").textContent = "Loading…";
  try {
    const p = await call((a) => a.notifications({ limit: 20, cursor: inbox.cursor }));
    inbox.cursor = p.next_cursor;
    inbox.unread = p.unread;
    drawBell();
    $("inbox").append(...p.notifications.map(notificationItem));
    $("inbox-more").hidden = !inbox.cursor;
    $("inbox-status").textContent = $("inbox").children.length ? "" : "No notifications yet: replies in your threads show up here.";
  } catch (err) {
    $("inbox-status").textContent = errText(err);
  } finally {
    inbox.loading = false;
  }
}
$("inbox-more").addEventListener("click", () => loadInbox(false));
$("inbox-all-read").addEventListener("click", async () => {
  try {
    await call((a) => a.readAllNotifications());
  } catch (err) {
    toast(errText(err));
    return;
  }
  announce("All notifications are marked read.");
  loadInbox(true);
});

// Mutes: "room:<class id>" and "thread:<root id>".
const mutes = new Set();
function loadMutes() {
  call((a) => a.mutes()).then((list) => {
    mutes.clear();
    for (const m of list) mutes.add(m.thread_id ? "thread:" + m.thread_id : "room:" + m.room);
    render();
  }).catch(() => {});
}

function drawMute(b, key, mute, unmute) {
  const on = mutes.has(key);
  b.textContent = on ? unmute : mute;
  b.setAttribute("aria-pressed", String(on));
}

async function toggleMute(key, target) {
  const on = mutes.has(key);
  try {
    await call((a) => (on ? a.unmute(target) : a.mute(target)));
  } catch (err) {
    toast(errText(err));
    return;
  }
  if (on) mutes.delete(key); else mutes.add(key);
  announce(on ? "Notifications are on again." : "Muted: no notifications from it.");
  render();
}
$("thread-mute").addEventListener("click", () => {
  if (state.thread) toggleMute("thread:" + state.thread, { thread_id: state.thread }).then(() => drawThread(room(state.current)));
});
$("room-mute").addEventListener("click", () => {
  if (state.current) toggleMute("room:" + state.current, { room: state.current });
});

// ---- Web Push ------------------------------------------------------------------------------------

// offerPush shows "Turn on notifications" when the server sends Web Push and this browser can
// receive it, and the student has not turned it on yet here.
async function offerPush() {
  const b = $("push-on");
  b.hidden = true;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
  try {
    await call((a) => a.pushKey());
  } catch (_) {
    return; // 404 push_disabled: the server sends no Web Push
  }
  const reg = await navigator.serviceWorker.ready;
  const sub = await reg.pushManager.getSubscription().catch(() => null);
  if (sub && Notification.permission === "granted") {
    // Stored again for this session (it may have changed).
    call((a) => a.savePushSubscription(sub.toJSON())).catch(() => {});
    $("push-status").textContent = "Notifications are on for this browser.";
    return;
  }
  b.hidden = Notification.permission === "denied";
  if (Notification.permission === "denied") $("push-status").textContent = "This browser blocks notifications from Common Grounds: allow them in its site settings.";
}

$("push-on").addEventListener("click", async () => {
  const status = $("push-status");
  // Asked only here, on the student's click.
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    status.textContent = "Notifications stay off: this browser was not allowed to show them.";
    return;
  }
  try {
    const key = await call((a) => a.pushKey());
    const reg = await navigator.serviceWorker.ready;
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    await call((a) => a.savePushSubscription(sub.toJSON()));
    $("push-on").hidden = true;
    status.textContent = "Notifications are on for this browser.";
  } catch (err) {
    status.textContent = `Notifications could not be turned on: ${err.detail || err.message || String(err)}`;
  }
});

// The service worker names a class in a notification by its course; it cannot ask the server.
function tellWorkerClasses() {
  if (!("serviceWorker" in navigator)) return;
  const names = Object.fromEntries([...state.classes.values()].map((c) => [c.id, courseName(c)]));
  navigator.serviceWorker.ready.then((reg) => reg.active && reg.active.postMessage({ type: "classes", names })).catch(() => {});
}

// ---- Flags -----------------------------------------------------------------------------------

let flagging = null;
function flagMessage(m) {
  flagging = m;
  $("flag-form").reset();
  $("flag-dialog").showModal();
}
$("flag-dialog").addEventListener("close", async () => {
  const m = flagging;
  flagging = null;
  if (!m || $("flag-dialog").returnValue !== "flag") return;
  const form = new FormData($("flag-form"));
  const more = $("flag-more").value.trim();
  const reason = [form.get("reason"), more].filter(Boolean).join(": ");
  try {
    await call((a) => a.flag(m.id, reason || undefined));
  } catch (err) {
    if (err.status !== 409) {
      toast(errText(err));
      return;
    }
  }
  flagged.add(m.id);
  store(FLAGGED_KEY, JSON.stringify([...flagged].slice(-500)));
  announce("You flagged the message. The moderators will look at it.");
  render();
});

// ---- Publishing ------------------------------------------------------------------------------

// publish hands a message to the library's outbox of the room, which sends the room's messages
// one at a time in this order, again after a rate limit or a reconnect, each once. Text the
// server would refuse stays in the box with the reason; only text the outbox took is cleared,
// and a message the server refuses comes back as "not sent", with its text, to retry.
function publish(input, parentId, counter) {
  if (!state.current || !state.live) return;
  if (input.value.trim() === "") return;
  try {
    normalizeContent(input.value);
  } catch (err) {
    toast(errText(err));
    updateCounter(input, counter);
    return;
  }
  const roomId = state.current;
  const content = input.value;
  state.live.send(roomId, content, { parentId }).catch((err) => {
    if (err.code === "closed") return;
    state.failed.set(`failed-${Date.now()}-${Math.random()}`, { room: roomId, content, parentId, error: errText(err) });
    render();
  });
  input.value = "";
  updateCounter(input, counter);
  render({ toBottom: !parentId });
}

function retryFailed(id) {
  const f = state.failed.get(id);
  if (!f || !state.live) return;
  state.failed.delete(id);
  state.live.send(f.room, f.content, { parentId: f.parentId }).catch((err) => {
    if (err.code === "closed") return;
    state.failed.set(id, { ...f, error: errText(err) });
    render();
  });
  render();
}
function discardFailed(id) {
  state.failed.delete(id);
  render();
}

// updateCounter shows how many characters are left near the limit, and says when it is passed.
function updateCounter(input, counter) {
  const n = [...input.value].length;
  const left = MAX_CONTENT_CHARS - n;
  counter.hidden = n < COUNTER_FROM;
  counter.textContent = left >= 0 ? `${left} characters left` : `${-left} characters over the limit of ${MAX_CONTENT_CHARS}: shorten it to send`;
  counter.classList.toggle("over", left < 0);
  input.setAttribute("aria-invalid", left < 0 ? "true" : "false");
}

for (const [formId, inputId, counterId, parent] of [["composer", "content", "counter", () => null], ["reply-form", "reply", "reply-counter", () => state.thread]]) {
  const input = $(inputId);
  const counter = $(counterId);
  $(formId).addEventListener("submit", (ev) => {
    ev.preventDefault();
    publish(input, parent(), counter);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      input.form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    updateCounter(input, counter);
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
    const now = Date.now();
    if (state.current && state.live && now - state.lastTyping > TYPING_EVERY_MS) {
      state.lastTyping = now;
      state.live.typing(state.current);
    }
  });
}

// ---- The live socket -------------------------------------------------------------------------

// connect starts the library's socket of this session: single-use tickets, because a browser
// cannot set an Authorization header on a WebSocket; positions and unsent messages kept in
// localStorage, so that a reload resumes and sends what was left.
function connect() {
  if (state.live || !state.token) return;
  const live = new Live({
    api,
    storage: localStorage,
    storagePrefix: STORAGE_PREFIX,
    onSessionEnded: () => { if (state.live === live) signOut("Your session has ended. Sign in again."); },
    onOutboxChange: () => render(),
    onRead,
    onNotification,
    debug: (e) => console.debug("cg:", e.kind, e.detail),
  });
  state.live = live;
  live.onState((s) => {
    if (state.live !== live) return;
    if (s.status === "live") {
      setConn("online", "online");
      setReachable(true);
    } else if (s.status === "connecting") setConn("connecting", "connecting…");
    else if (s.retryInMs != null) setConn("offline", `offline: retrying in ${Math.ceil(s.retryInMs / 1000)} s`);
    else setConn("offline", "offline");
    if (s.status !== "live") {
      // Who is online and typing is not known while offline.
      for (const r of state.rooms.values()) { r.subscribed = false; r.typing.clear(); r.online = null; }
      render();
    }
  });
  live.connect();
}

// openRoom subscribes a class room; the library resumes it after the last seq seen.
function openRoom(id) {
  const r = room(id);
  if (!state.live || r.sub) return;
  r.sub = state.live.subscribe(id, {
    onSubscribed(info) {
      r.subscribed = true;
      r.anonId = info.anonId;
      r.online = info.online;
      r.fewerThan = info.fewerThan ?? info.anonymityK;
      r.smallRoom = info.smallRoom;
      r.replayUntil = info.lastSeq;
      fillGap(r, info.lastSeq).catch((err) => toast(`Could not load messages: ${errText(err)}`));
      // What arrived while away is counted by the server; what arrives from now on, here.
      refreshUnread();
      markSeen(r);
      render();
    },
    onMessage(m) {
      // A replayed reply is already counted in the reply_count of a root loaded since.
      const fresh = add(r, m, m.seq > r.replayUntil);
      r.typing.delete(m.anon_id);
      const own = m.anon_id === r.anonId;
      if (fresh && !own) {
        if (!viewing(id) && m.seq > r.readSeq && !m.hidden && !m.deleted) {
          r.unread++;
          if (r.unread > 99) { r.unread = 99; r.unreadMore = true; }
        }
        if (id === state.current && !m.parent_id) {
          const s = $("scroller");
          if (s.scrollHeight - s.scrollTop - s.clientHeight >= 80) r.below = (r.below || 0) + 1;
          if (m.content) announce(`${m.anon_id}: ${m.content.slice(0, 140)}`);
        }
      }
      markSeen(r);
      renderRoomList();
      render({ toBottom: own && !m.parent_id });
    },
    onEdited(m) { changed(r, m); },
    onDeleted(m) { changed(r, m); },
    // Hides and erasures carry the message as it is now (a hide says who: hidden_by).
    onHidden(_messageId, m) { changed(r, m); },
    onRestored(m) {
      r.messages.set(m.id, m);
      render();
    },
    onErased(_messageId, m) { changed(r, m); },
    onPresence({ online, fewerThan }) {
      r.online = online;
      if (fewerThan !== null) r.fewerThan = fewerThan;
      if (r.smallRoom && id === state.current) refreshSize(r); // someone new may have joined
      render();
    },
    onTyping(anonId) {
      if (anonId !== r.anonId) r.typing.set(anonId, Date.now() + TYPING_SHOWN_MS);
      render();
    },
    onUnsubscribed() {
      r.subscribed = false;
      r.sub = null;
      render();
    },
    onError(err) {
      r.sub = null;
      toast(`Could not open the room: ${errText(err)}`);
    },
  });
}

// Back to the tab: do not wait for the backoff.
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  if (state.live) state.live.reconnectNow();
  const r = state.current && state.rooms.get(state.current);
  if (r) markSeen(r);
});

// ---- Read markers ------------------------------------------------------------------------------

// viewing tells whether the student sees a room now.
function viewing(id) {
  return id === state.current && !document.hidden && document.body.dataset.screen === "rooms" && !$("app").hidden;
}

// position is the last position of a room's order this page has seen.
function position(r) {
  return Math.max(r.newestSeq, (r.sub && r.sub.lastSeq) || 0);
}

// markSeen moves the read marker of a room the student is looking at to the last position seen;
// the library tells the student's other tabs and devices (onRead).
function markSeen(r) {
  if (!viewing(r.id)) return;
  const seq = position(r);
  if (r.unread || r.unreadMore) {
    r.unread = 0;
    r.unreadMore = false;
    renderRoomList();
  }
  if (seq > r.readSeq && state.live && state.live.state.status === "live") {
    r.readSeq = seq;
    state.live.markRead(r.id, seq);
  }
}

// applyUnread takes a room's read marker and unread count from the server's list of classes.
function applyUnread(c) {
  const r = state.rooms.get(c.id);
  if (!r || c.unread == null) return;
  r.readSeq = Math.max(r.readSeq, c.read_seq || 0);
  r.unread = c.unread;
  r.unreadMore = !!c.unread_more;
  markSeen(r);
}

let unreadFetch = null;
let unreadAgain = false;
// refreshUnread asks the server for every room's unread count, one request at a time.
function refreshUnread() {
  if (unreadFetch) { unreadAgain = true; return; }
  unreadFetch = call((a) => a.myClasses())
    .then((classes) => { for (const c of classes) applyUnread(c); renderRoomList(); })
    .catch(() => {})
    .finally(() => {
      unreadFetch = null;
      if (unreadAgain) { unreadAgain = false; refreshUnread(); }
    });
}

// onRead hears where the user's read marker of a room stands, moved here or elsewhere.
function onRead(roomId, seq) {
  const r = state.rooms.get(roomId);
  if (!r || seq <= r.readSeq) return;
  r.readSeq = seq;
  if (seq >= position(r)) {
    r.unread = 0;
    r.unreadMore = false;
    renderRoomList();
  } else refreshUnread();
}

// ---- Friends ---------------------------------------------------------------------------------

function personItem(u, detail, ...buttons) {
  return el("li", { class: "person" },
    el("div", { class: "person-main" }, el("span", { class: "person-name" }, personName(u)),
      u.computing_id && u.email && el("span", { class: "muted" }, ` ${u.email}`),
      detail && el("p", { class: "muted" }, detail)),
    el("div", { class: "row" }, ...buttons));
}

// act is a button of a person's card; who names the person in the button's accessible name.
function act(label, fn, cls, who) {
  return el("button", { type: "button", class: `small${cls ? " " + cls : ""}`, "aria-label": who ? `${label}: ${who}` : null, onclick: async (ev) => {
    ev.currentTarget.disabled = true;
    try {
      await fn();
    } catch (err) {
      toast(errText(err));
    }
    await refreshFriends().catch(() => {});
  } }, label);
}

function emptyItem(text) {
  return el("li", { class: "empty" }, text);
}

async function refreshFriends() {
  const [incoming, outgoing, friends, suggestions, blocked] = await Promise.all([
    call((a) => a.friendRequests("incoming")),
    call((a) => a.friendRequests("outgoing")),
    call((a) => a.friends()),
    call((a) => a.friendSuggestions(10)).catch(() => []),
    call((a) => a.blocked()),
  ]);
  const badge = $("incoming-count");
  badge.hidden = incoming.length === 0;
  badge.textContent = String(incoming.length);
  badge.setAttribute("aria-label", plural(incoming.length, "friend request", "friend requests"));

  $("incoming").replaceChildren(...(incoming.length ? incoming.map((q) => personItem(q.user, null,
    act("Accept", () => api.acceptFriendRequest(q.id), null, personName(q.user)),
    act("Decline", () => api.rejectFriendRequest(q.id), "ghost", personName(q.user)))) : [emptyItem("No requests to you.")]));
  $("outgoing").replaceChildren(...(outgoing.length ? outgoing.map((q) => personItem(q.user, "Waiting for an answer",
    act("Cancel", () => api.unfriend(q.user.id), "ghost", personName(q.user)))) : [emptyItem("You have no requests waiting.")]));
  $("friends").replaceChildren(...(friends.length ? friends.map((f) => friendCard(f))
    : [emptyItem("No friends yet: add one by computing ID above, or accept a request.")]));
  $("suggestions").replaceChildren(...(suggestions.length ? suggestions.map((s) => personItem(s.user,
    [s.shared_classes > 0 && plural(s.shared_classes, "class in common", "classes in common"), s.in_contacts && "in your contacts"].filter(Boolean).join(" · "),
    act("Add friend", () => api.sendFriendRequest({ user_id: s.user.id }), null, personName(s.user)))) : [emptyItem("No suggestions yet: they come from the classes you share.")]));
  $("blocked").replaceChildren(...(blocked.length ? blocked.map((u) => personItem(u, `Blocked since ${new Date(u.since).toLocaleDateString()}`,
    act("Unblock", () => api.unblock(u.id), "ghost", personName(u)))) : [emptyItem("Nobody blocked.")]));
}

function friendCard(f) {
  const common = el("p", { class: "muted" });
  const li = personItem(f, `Friends since ${new Date(f.since).toLocaleDateString()}`,
    act("Remove", async () => {
      const { ok } = await confirmDialog({ title: `Remove ${personName(f)}?`, text: "You stop being friends; you can ask again later.", ok: "Remove" });
      if (ok) await api.unfriend(f.id);
    }, "ghost", personName(f)),
    act("Block", async () => {
      const { ok } = await confirmDialog({ title: `Block ${personName(f)}?`, text: "This also ends your friendship; they cannot send you requests.", ok: "Block" });
      if (!ok) return;
      await api.block(f.id);
    }, "ghost", personName(f)));
  li.querySelector(".person-main").append(common);
  call((a) => a.commonClasses(f.id)).then((classes) => {
    common.textContent = classes.length ? `Classes in common: ${classes.map(courseName).join(", ")}` : "No classes in common that can be shown.";
  }).catch(() => {});
  return li;
}

$("friend-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = $("friend-id").value.trim().toLowerCase();
  const status = $("friend-status");
  try {
    const r = await call((a) => a.sendFriendRequest({ computing_id: id }));
    status.textContent = r.status === "ACCEPTED" ? `You and ${id} are friends now.` : `Request sent to ${id}, if they have an account.`;
    $("friend-id").value = "";
  } catch (err) {
    status.textContent = errText(err);
  }
  await refreshFriends().catch(() => {});
});

// ---- Account ---------------------------------------------------------------------------------

function drawPhone() {
  $("phone-state").textContent = state.me && state.me.phone_verified
    ? "Your number is verified: friends who have it in their contacts can find you."
    : "Verify your number so that friends who have it in their contacts can find you. It is kept only as a keyed hash.";
}

$("phone-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await call((a) => a.startPhoneVerification($("phone").value.trim()));
    $("code-form").hidden = false;
    $("phone-status").textContent = "We texted you a code. Enter it below.";
    $("code").focus();
  } catch (err) {
    $("phone-status").textContent = errText(err);
  }
});
$("code-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await call((a) => a.verifyPhone($("code").value.trim()));
    state.me = await call((a) => a.me());
    $("code-form").hidden = true;
    $("phone-status").textContent = "Your number is verified.";
    drawPhone();
  } catch (err) {
    $("phone-status").textContent = errText(err);
  }
});

$("contacts-file").addEventListener("change", async () => {
  const file = $("contacts-file").files[0];
  const status = $("contacts-status");
  if (!file) return;
  const phones = phonesFromFile(await file.text());
  if (phones.length === 0) {
    status.textContent = "No phone numbers found in that file.";
    return;
  }
  status.textContent = `Looking for ${plural(phones.length, "number", "numbers")}…`;
  try {
    const matches = [];
    for (let i = 0; i < phones.length; i += 2000) { // the server takes 2000 a call
      matches.push(...await call((a) => a.matchContacts(phones.slice(i, i + 2000))));
    }
    status.textContent = matches.length ? `${plural(matches.length, "student", "students")} found among your contacts.` : "None of your contacts is on Common Grounds yet.";
    $("contacts").replaceChildren(...matches.map((m) => personItem({ id: m.user_id, email: m.email, computing_id: m.computing_id },
      m.friendship_status === "ACCEPTED" ? "Already your friend" : m.friendship_status === "PENDING" ? "Request pending" : null,
      !m.friendship_status && act("Add friend", () => api.sendFriendRequest({ user_id: m.user_id }), null, m.computing_id || m.email))));
  } catch (err) {
    status.textContent = errText(err);
  }
});

$("delete-account").addEventListener("click", async () => {
  const { ok, checked } = await confirmDialog({
    title: "Delete your account?",
    text: "Your account, friendships, requests and classes go at once, and you are signed out everywhere. Your messages stay in their rooms under their pseudonyms, with nothing left that links them to you. If you also erase them, each becomes “Message deleted” at its own random time within a few days.",
    ok: "Delete my account",
    check: "Also erase my messages",
  });
  if (!ok) return;
  try {
    await call((a) => a.deleteMe({ eraseMessages: checked }));
  } catch (err) {
    toast(errText(err));
    return;
  }
  signOut();
  $("magic-status").textContent = "Your account was deleted.";
});

// ---- Moderation --------------------------------------------------------------------------------

let modCursor = null;
async function loadFlagged(fresh) {
  if (fresh) { modCursor = null; $("flagged").replaceChildren(); }
  $("mod-status").textContent = "Loading…";
  try {
    const page = await call((a) => a.flaggedPage(20, modCursor));
    modCursor = page.next_cursor;
    $("mod-more").hidden = !modCursor;
    $("flagged").append(...page.items.map(flaggedItem));
    $("mod-status").textContent = $("flagged").children.length ? "" : "Nothing is flagged. Flagged messages appear here, most flagged first.";
  } catch (err) {
    $("mod-status").textContent = errText(err);
  }
}
$("mod-more").addEventListener("click", () => loadFlagged(false));

function flaggedItem(m) {
  const c = state.classes.get(m.room);
  const author = el("p", { class: "muted" });
  const li = el("li", { class: "card flagged-item" },
    el("p", { class: "msg-head" }, el("span", { class: "anon" }, m.anon_id || "Deleted account"), " · ",
      c ? courseName(c) : "a class", " · ", plural(m.flag_count, "flag", "flags"), m.hidden ? " · hidden" : ""),
    el("p", { class: "body", dir: "auto" }, m.content == null ? (m.deleted ? "(erased)" : "(hidden: its text is not shown while it is hidden)") : linkify(m.content)),
    author,
    el("div", { class: "row" },
      m.hidden
        ? el("button", { type: "button", class: "small", onclick: () => moderate(() => api.unhide(m.id), "Restored.") }, "Restore")
        : el("button", { type: "button", class: "small danger", onclick: () => moderate(() => api.hide(m.id), "Hidden.") }, "Hide"),
      el("button", { type: "button", class: "small ghost", onclick: () => reveal(m, author) }, "Reveal author…")));
  return li;
}

async function moderate(fn, done) {
  try {
    await call(fn);
    announce(done);
  } catch (err) {
    toast(errText(err));
  }
  loadFlagged(true);
}

let revealing = null;
function reveal(m, out) {
  revealing = { m, out };
  $("reveal-form").reset();
  $("reveal-dialog").showModal();
}
$("reveal-dialog").addEventListener("close", async () => {
  const r = revealing;
  revealing = null;
  if (!r || $("reveal-dialog").returnValue !== "reveal") return;
  try {
    const u = await call((a) => a.revealAuthor(r.m.id, $("reveal-reason").value.trim()));
    r.out.textContent = `Written by ${u.email}${u.computing_id ? " (" + u.computing_id + ")" : ""}.`;
  } catch (err) {
    r.out.textContent = errText(err);
  }
});

// ---- Start -----------------------------------------------------------------------------------

// The service worker keeps the app shell for opening offline. The page's policy requires
// trusted types for script URLs, so the one URL goes through a policy of its own.
if ("serviceWorker" in navigator) {
  let url = "/sw.js";
  if (window.trustedTypes) {
    url = window.trustedTypes.createPolicy("service-worker", {
      createScriptURL: (u) => { if (u !== "/sw.js") throw new TypeError("not the service worker"); return u; },
    }).createScriptURL("/sw.js");
  }
  navigator.serviceWorker.register(url).catch((err) => console.debug("cg: service worker:", err));
}

if ("serviceWorker" in navigator) {
  // A click on a push notification while the app is open.
  navigator.serviceWorker.addEventListener("message", (ev) => {
    const m = ev.data;
    if (m && m.type === "open" && typeof m.hash === "string" && m.hash.startsWith("#/")) location.hash = m.hash;
  });
}

setReachable(navigator.onLine);
const fromLink = linkToken();
const saved = load(TOKEN_KEY);
if (fromLink) redeemLink(fromLink);
else if (saved) signIn(saved);
else showSignIn();
