// Common Grounds browser client: sign in, classes, and the class rooms. Everything it sends to
// and receives from the server goes through the client library (cg.js, built from clients/js):
// its Api for HTTP, and its Live for the one WebSocket, which resumes every room after the last
// message seen and sends each room's messages once, in order. Every piece of server data reaches
// the page through textContent only.
import { Api, Live, normalizeContent } from "./cg.js";

{
  const TOKEN_KEY = "commongrounds_token"; // the sign-in page (/auth/verify) stores the token here too
  const STORAGE_PREFIX = "commongrounds."; // the library keeps seq.<room> and outbox under it
  const ROOM_KEY = "commongrounds.room";
  const PAGE = 50;
  const TYPING_EVERY_MS = 3000;
  const TYPING_SHOWN_MS = 5000;

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    me: null,
    classes: new Map(), // class id -> Class
    rooms: new Map(), // class id -> room (see room())
    current: null, // class id shown
    thread: null, // root message id of the open thread
    live: null, // the library's socket of the signed-in session
    lastTyping: 0,
  };

  const api = new Api({ baseUrl: "", token: () => state.token });

  // ---- Small helpers -------------------------------------------------------------------------

  // el builds an element; strings among the children become text nodes, never markup.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  let toastTimer = 0;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  function store(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, String(value));
    } catch (_) { /* storage full or disabled: the client still works for this page */ }
  }
  function load(key) {
    try { return localStorage.getItem(key); } catch (_) { return null; }
  }

  function className(c) {
    return `${c.subject} ${c.catalog_number}` + (c.class_section ? ` (${c.class_section})` : "");
  }
  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? "" : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  // call runs one call of the library's Api; a 401 (other than a sign-in's) signs out here too.
  async function call(fn, signingIn) {
    try {
      return await fn(api);
    } catch (err) {
      if (err.status === 401 && state.token && !signingIn) signOut("Your session has ended. Sign in again.");
      throw err;
    }
  }

  // ---- Sign-in -------------------------------------------------------------------------------

  // tokenFromFragment takes a session token handed over as /#token=..., and removes it from the
  // address bar and history.
  function tokenFromFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const t = params.get("token");
    if (t) history.replaceState(null, "", location.pathname + location.search);
    return t;
  }

  const isJWT = (s) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(s);

  // redeem accepts a session token, a magic link, or the one-time token of a magic link.
  async function redeem(input) {
    let s = input.trim();
    if (isJWT(s)) return s;
    try {
      const u = new URL(s);
      s = u.searchParams.get("token") || new URLSearchParams(u.hash.slice(1)).get("token") || s;
      if (isJWT(s)) return s;
    } catch (_) { /* not a URL: a bare token */ }
    const reply = await call((a) => a.verify(s), true);
    return reply.token;
  }

  async function signIn(token) {
    if (state.token && state.token !== token) reset();
    state.token = token;
    store(TOKEN_KEY, token);
    try {
      state.me = await call((a) => a.me());
    } catch (err) {
      if (err.status === 401 || state.token !== token) return; // call() signed out
      // The server is unreachable or failing: the token may be fine, so try again later.
      const delay = 2000 + Math.random() * 8000;
      setConn("offline", `server unreachable: retrying in ${Math.ceil(delay / 1000)} s`);
      setTimeout(() => { if (state.token === token && !state.me) signIn(token); }, delay);
      return;
    }
    $("me").textContent = state.me.email;
    $("logout").hidden = false;
    $("signin").hidden = true;
    $("app").hidden = false;
    connect();
    await refreshClasses();
    const saved = load(ROOM_KEY);
    if (saved && state.classes.has(saved)) selectRoom(saved);
    else if (state.classes.size > 0) selectRoom(state.classes.keys().next().value);
  }

  // signOut forgets the session in this browser (the server side is revoked by logout).
  function signOut(message) {
    const wasSignedIn = state.token != null;
    const rooms = [...state.rooms.keys()];
    store(TOKEN_KEY, null);
    reset();
    // What the library kept for this user (positions, unsent messages) is not the next user's.
    for (const id of rooms) store(STORAGE_PREFIX + "seq." + id, null);
    store(STORAGE_PREFIX + "outbox", null);
    store(ROOM_KEY, null);
    $("app").hidden = true;
    $("signin").hidden = false;
    setConn("offline", "signed out");
    if (message && wasSignedIn) toast(message);
  }

  // reset drops the socket and everything known of the signed-in user from the page.
  function reset() {
    state.token = null;
    state.me = null;
    if (state.live) state.live.close();
    state.live = null;
    state.classes.clear();
    state.rooms.clear();
    state.current = null;
    state.thread = null;
    $("me").textContent = "";
    $("logout").hidden = true;
    render();
  }

  // ---- Where sign-in links go (GET /api/v1/config) -------------------------------------------
  // A server without a mail server (development) prints each link in its output instead: the
  // sign-in card says so, only then.
  const serverConfig = api.config().catch(() => ({}));
  const linksInServerOutput = () => serverConfig.then((c) => c.sign_in_links === "server_output");
  linksInServerOutput().then((yes) => { $("link-note").hidden = !yes; });

  $("magic-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = $("magic-status");
    status.textContent = "Sending…";
    try {
      await call((a) => a.requestMagicLink($("email").value.trim()), true);
      status.textContent = (await linksInServerOutput())
        ? "Sent to the server's output: find the line \"sign-in link for …\" in its terminal. The link is valid for 15 minutes."
        : "Check your inbox: the link is valid for 15 minutes.";
    } catch (err) {
      status.textContent = err.code === "rate_limited" && err.retryAfter
        ? `Too many requests; try again in ${Math.ceil(err.retryAfter / 60000)} min.`
        : err.message;
    }
  });

  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = $("token-status");
    status.textContent = "Signing in…";
    try {
      const token = await redeem($("token").value);
      $("token").value = "";
      status.textContent = "";
      await signIn(token);
    } catch (err) {
      status.textContent = err.message;
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await call((a) => a.logout()); } catch (_) { /* signed out locally anyway */ }
    signOut();
  });

  // Another tab (the sign-in page included) signing in or out is followed here.
  window.addEventListener("storage", (ev) => {
    if (ev.key !== TOKEN_KEY || ev.newValue === state.token) return;
    if (ev.newValue) signIn(ev.newValue).catch((err) => toast(err.message));
    else signOut("You signed out in another tab.");
  });

  // ---- Classes -------------------------------------------------------------------------------

  // room returns the client's state of a class room, creating it.
  function room(id) {
    let r = state.rooms.get(id);
    if (!r) {
      r = {
        id,
        anonId: null,
        online: 0, // null below the anonymity threshold: then "fewer than fewerThan online"
        fewerThan: null, // the anonymity threshold K
        smallRoom: false, // fewer than K enrolled: pseudonyms hide little
        messages: new Map(), // message id -> Message
        sub: null, // the library's subscription, once the room is live
        newestSeq: 0, // the newest seq of the messages held
        replayUntil: 0, // messages up to this seq are a resume's replay, not news
        oldestSeq: 0, // the oldest seq of the contiguous window shown
        more: false, // older messages exist
        loading: null, // promise of the first history page
        subscribed: false,
        unread: 0,
        typing: new Map(), // anon_id -> time shown until
      };
      state.rooms.set(id, r);
    }
    return r;
  }

  async function refreshClasses() {
    try {
      const classes = await call((a) => a.myClasses());
      state.classes = new Map(classes.map((c) => [c.id, c]));
    } catch (err) {
      toast(`Could not load your classes: ${err.message}`);
    }
    for (const id of state.classes.keys()) openRoom(id);
    renderClasses();
  }

  function renderClasses() {
    const list = $("classes");
    list.replaceChildren();
    if (state.classes.size === 0) list.append(el("li", { class: "title" }, "No classes yet: find yours below (try a subject such as CS) and press Join."));
    for (const c of state.classes.values()) {
      const r = room(c.id);
      list.append(el("li", {
        "aria-current": c.id === state.current ? "true" : "false",
        onclick: () => selectRoom(c.id),
      },
      el("span", { class: "name" }, className(c), el("span", { class: "title" }, c.title || "")),
      r.unread > 0 && el("span", { class: "badge", title: "new messages" }, r.unread)));
    }
  }

  $("search-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("q").value.trim();
    const list = $("results");
    list.replaceChildren(el("li", {}, "Searching…"));
    try {
      const { items: classes } = await call((a) => a.searchClassesPage({ q, limit: 25 }));
      list.replaceChildren();
      if (classes.length === 0) {
        list.append(el("li", {}, "No class matches. Try a subject (CS) or a course (CS 2100). " +
          "Classes come from the university's class search: the server's operator brings them in " +
          "with commongrounds sync-classes or import-classes (see the README)."));
      }
      for (const c of classes) {
        const details = [c.title, c.component, c.instructor, c.days && `${c.days} ${c.start_time || ""}–${c.end_time || ""}`, c.term]
          .filter(Boolean).join(" · ");
        const enrolled = state.classes.has(c.id);
        list.append(el("li", {},
          el("span", { class: "name" }, className(c), el("span", { class: "title", title: details }, details)),
          el("button", { type: "button", disabled: enrolled, onclick: () => enroll(c) }, enrolled ? "Joined" : "Join")));
      }
    } catch (err) {
      list.replaceChildren(el("li", {}, err.message));
    }
  });

  async function enroll(c) {
    try {
      await call((a) => a.enroll(c.id));
    } catch (err) {
      toast(err.message);
      return;
    }
    state.classes.set(c.id, c);
    openRoom(c.id);
    renderClasses();
    $("search-form").requestSubmit();
    selectRoom(c.id);
  }

  // ---- Messages ------------------------------------------------------------------------------

  // loadHistory fetches, once per page load, the page of a room that ends with the last message
  // this browser saw there (the newest page on a first visit); the socket resumes after it, so
  // what was missed streams in and the room reads on without a gap.
  function loadHistory(r) {
    if (!r.loading) {
      const seen = r.sub && r.sub.lastSeq;
      const query = seen ? { before_seq: seen + 1, limit: PAGE } : { limit: PAGE };
      r.loading = call((a) => a.messages(r.id, query))
        .then((messages) => {
          for (const m of messages) add(r, m, false);
          r.oldestSeq = messages.length ? messages[0].seq : (seen || 0) + 1;
          r.more = r.oldestSeq > 1;
          render();
        })
        .catch((err) => {
          r.loading = null;
          throw err;
        });
    }
    return r.loading;
  }

  // fillGap fetches what lies between the messages held and a room's last seq, for a room whose
  // history was loaded before it was subscribed without a position.
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
    const r = state.current && room(state.current);
    if (!r || !r.more) return;
    const messages = await call((a) => a.messages(r.id, { before_seq: r.oldestSeq, limit: PAGE }));
    for (const m of messages) add(r, m, false);
    if (messages.length) r.oldestSeq = messages[0].seq;
    r.more = messages.length === PAGE && r.oldestSeq > 1;
    render({ keepScroll: true });
  }
  $("older").addEventListener("click", () => loadOlder().catch((err) => toast(err.message)));

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

  // changed takes a message as a change left it; the reply count stays the one counted here.
  function changed(r, m) {
    const known = r.messages.get(m.id);
    if (known) r.messages.set(m.id, { ...m, reply_count: known.reply_count });
    render();
  }

  async function editOwn(m) {
    const content = prompt("Edit your message:", m.content || "");
    if (content === null || content === m.content) return;
    try {
      await call((a) => a.editMessage(m.id, content));
    } catch (err) {
      toast(err.code === "edit_window_passed" ? "This message is too old to edit." : err.message);
    }
  }

  async function deleteOwn(m) {
    if (!confirm("Delete this message? Everyone will see that a message was deleted here.")) return;
    try {
      await call((a) => a.deleteMessage(m.id));
    } catch (err) {
      toast(err.message);
    }
  }

  function selectRoom(id) {
    state.current = id;
    state.thread = null;
    store(ROOM_KEY, id);
    const r = room(id);
    r.unread = 0;
    loadHistory(r).catch((err) => toast(`Could not load messages: ${err.message}`));
    renderClasses();
    render({ toBottom: true });
  }

  async function openThread(rootId) {
    const r = room(state.current);
    state.thread = rootId;
    render();
    try {
      const { root, replies } = await call((a) => a.thread(r.id, rootId));
      add(r, root, false);
      for (const m of replies) add(r, m, false);
      render();
    } catch (err) {
      toast(err.message);
    }
  }
  $("thread-close").addEventListener("click", () => { state.thread = null; render(); });

  async function flag(m) {
    const reason = prompt("Flag this message for the moderators. Reason (optional):", "");
    if (reason === null) return;
    try {
      await call((a) => a.flag(m.id, reason || undefined));
      toast("Thank you: the moderators will look at it.");
    } catch (err) {
      toast(err.message);
    }
  }

  function messageItem(r, m, inThread) {
    const own = r.anonId != null && m.anon_id === r.anonId;
    const gone = m.hidden || m.deleted;
    const body = m.deleted ? "This message was deleted." : m.hidden ? "Hidden by a moderator." : m.content;
    const replies = m.reply_count || 0;
    return el("li", { class: `msg${own ? " own" : ""}${gone ? " gone" : ""}${m.pending ? " pending" : ""}`, "data-id": m.id },
      el("div", { class: "msg-head" },
        el("span", { class: "anon" }, m.anon_id || "Anon"),
        el("time", { datetime: m.created_at }, clock(m.created_at)),
        own && el("span", {}, "you"),
        m.edited_at && !gone && el("span", { class: "edited" }, "edited")),
      // Isolated, so that no message can reorder the text around it (the server also closes
      // the bidirectional controls a message leaves open).
      el("p", { class: "body", dir: "auto" }, body),
      el("div", { class: "msg-actions" },
        !inThread && !m.parent_id && !m.pending && el("button", { type: "button", class: "link", onclick: () => openThread(m.id) },
          replies === 0 ? "Reply" : replies === 1 ? "1 reply" : `${replies} replies`),
        !own && !gone && !m.pending && el("button", { type: "button", class: "link flag", onclick: () => flag(m) }, "Flag"),
        own && !gone && !m.pending && el("button", { type: "button", class: "link", onclick: () => editOwn(m) }, "Edit"),
        own && !gone && !m.pending && el("button", { type: "button", class: "link", onclick: () => deleteOwn(m) }, "Delete")));
  }

  // pendingOf lists the unacknowledged messages of a room (thread root or main list).
  function pendingOf(roomId, parentId) {
    if (!state.live) return [];
    return state.live.pending(roomId)
      .filter((p) => p.parentId === parentId)
      .map((p) => ({ id: p.clientMsgId, anon_id: room(roomId).anonId, content: p.content, parent_id: parentId, pending: true }));
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
      draw(o);
    });
  }

  function draw(o) {
    const id = state.current;
    const c = id && state.classes.get(id);
    $("composer").hidden = !c;
    $("thread").hidden = !c || !state.thread;
    if (!c) {
      $("room-title").textContent = "Pick a class";
      $("room-meta").textContent = "";
      $("messages").replaceChildren();
      $("typing").textContent = "";
      $("older").hidden = true;
      return;
    }
    const r = room(id);
    $("room-title").textContent = `${className(c)} ${c.title || ""}`;
    $("room-meta").textContent = [
      r.online === null ? `fewer than ${r.fewerThan} online` : `${r.online} online`,
      r.anonId && `you are ${r.anonId}`,
      r.smallRoom && `fewer than ${r.fewerThan} people here: others may guess who you are`,
      !r.subscribed && "not live",
    ].filter(Boolean).join(" · ");
    // A room below the anonymity threshold says so where messages are written.
    $("content").placeholder = r.smallRoom
      ? `Fewer than ${r.fewerThan} people here: others may guess who you are`
      : "Write to the class (you appear under your class pseudonym)";
    $("older").hidden = !r.more;

    const scroller = $("scroller");
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const roots = [...r.messages.values()]
      .filter((m) => !m.parent_id && m.seq >= r.oldestSeq)
      .sort((a, b) => a.seq - b.seq);
    $("messages").replaceChildren(...roots.map((m) => messageItem(r, m, false)),
      ...pendingOf(id, null).map((m) => messageItem(r, m, false)));
    if (o.keepScroll) scroller.scrollTop = scroller.scrollHeight - fromBottom;
    else if (o.toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;

    const now = Date.now();
    const typing = [...r.typing].filter(([, until]) => until > now).map(([anon]) => anon);
    $("typing").textContent = typing.length === 0 ? ""
      : typing.length === 1 ? `${typing[0]} is typing…` : `${typing.slice(0, 3).join(", ")} are typing…`;

    if (state.thread) {
      const root = r.messages.get(state.thread);
      const replies = [...r.messages.values()].filter((m) => m.parent_id === state.thread).sort((a, b) => a.seq - b.seq);
      $("thread-messages").replaceChildren(...(root ? [messageItem(r, root, true)] : []),
        ...replies.map((m) => messageItem(r, m, true)),
        ...pendingOf(id, state.thread).map((m) => messageItem(r, m, true)));
    }
  }
  // Typing indicators fade on their own.
  setInterval(() => {
    const r = state.current && state.rooms.get(state.current);
    if (r && r.typing.size > 0) {
      const now = Date.now();
      for (const [anon, until] of r.typing) if (until <= now) r.typing.delete(anon);
      render();
    }
  }, 1000);

  // ---- Publishing ----------------------------------------------------------------------------

  // publish hands a message to the library's outbox of the room, which sends the room's messages
  // one at a time in this order, again after a rate limit or a reconnect, each once. Content the
  // server would refuse stays in the composer with the reason; only accepted text clears it.
  function publish(input, parentId) {
    if (!state.current || !state.live) return;
    try {
      normalizeContent(input.value);
    } catch (err) {
      toast(err.detail || err.message);
      return;
    }
    const roomId = state.current;
    state.live.send(roomId, input.value, { parentId }).catch((err) => {
      if (err.code !== "closed") toast(`Your message was not sent: ${err.detail || err.message}`);
    });
    input.value = "";
    render({ toBottom: !parentId });
  }

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    publish($("content"), null);
  });
  $("reply-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    publish($("reply"), state.thread);
  });
  for (const id of ["content", "reply"]) {
    $(id).addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        ev.target.form.requestSubmit();
      }
    });
    $(id).addEventListener("input", () => {
      const now = Date.now();
      if (state.current && state.live && now - state.lastTyping > TYPING_EVERY_MS) {
        state.lastTyping = now;
        state.live.typing(state.current);
      }
    });
  }

  // ---- The live socket ----------------------------------------------------------------------

  function setConn(s, text) {
    const c = $("conn");
    c.dataset.state = s;
    c.textContent = text || s;
  }

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
      debug: (e) => console.debug("cg:", e.kind, e.detail),
    });
    state.live = live;
    live.onState((s) => {
      if (state.live !== live) return;
      if (s.status === "live") setConn("online");
      else if (s.status === "connecting") setConn("connecting", "connecting…");
      else if (s.retryInMs != null) setConn("offline", `offline: retrying in ${Math.ceil(s.retryInMs / 1000)} s`);
      else setConn("offline");
      if (s.status !== "live") {
        for (const r of state.rooms.values()) { r.subscribed = false; r.typing.clear(); }
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
        fillGap(r, info.lastSeq).catch((err) => toast(`Could not load messages: ${err.message}`));
        render();
      },
      onMessage(m) {
        // A replayed reply is already counted in the reply_count of a root loaded since.
        if (add(r, m, m.seq > r.replayUntil) && (id !== state.current || document.hidden)) r.unread++;
        r.typing.delete(m.anon_id);
        if (id !== state.current) renderClasses();
        render();
      },
      // Changes to messages: each frame carries the message as the change left it.
      onEdited(m) { changed(r, m); },
      onDeleted(m) { changed(r, m); },
      onHidden(_id, m) { changed(r, m); },
      onRestored(m) { changed(r, m); },
      onErased(_id, m) { changed(r, m); },
      onPresence({ online, fewerThan }) {
        r.online = online;
        if (fewerThan !== null) r.fewerThan = fewerThan;
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
        toast(`Could not open ${id}: ${err.detail || err.message}`);
      },
    });
  }

  // Back online, or back to the tab: do not wait for the backoff.
  const reconnectNow = () => { if (state.live) state.live.reconnectNow(); };
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });

  // ---- Start ---------------------------------------------------------------------------------

  const token = tokenFromFragment() || load(TOKEN_KEY);
  if (token) signIn(token);
  else signOut();
}
