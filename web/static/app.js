// Common Grounds browser client: sign in, classes, and one WebSocket carrying every class room.
// No dependencies; every piece of server data reaches the page through textContent only.
"use strict";

(() => {
  const TOKEN_KEY = "commongrounds_token"; // the sign-in page (/auth/verify) stores the token here too
  const SEQ_KEY = "commongrounds.seq."; // + room id: the last seq seen in that room
  const ROOM_KEY = "commongrounds.room";
  const PAGE = 50;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const PING_EVERY_MS = 25000;
  const PONG_WITHIN_MS = 10000;
  const TYPING_EVERY_MS = 3000;
  const TYPING_SHOWN_MS = 5000;
  const CLOSE_SESSION_ENDED = 4001; // revoked or expired session: sign in again
  const CLOSE_SERVICE_RESTART = 1012; // the server is shutting down: reconnect after a random delay
  // Other closes (4008: too slow to read, 1006: connection lost, ...) reconnect with backoff and
  // resume every room after its last seq, so nothing is lost.

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    me: null,
    classes: new Map(), // class id -> Class
    rooms: new Map(), // class id -> room (see room())
    current: null, // class id shown
    thread: null, // root message id of the open thread
    ws: null,
    wsAttempt: 0,
    wsTimer: 0,
    pingTimer: 0,
    pongTimer: 0,
    refs: 0,
    outbox: new Map(), // ref -> publish frame not yet acknowledged
    lastTyping: 0,
  };

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

  // uuid returns a random UUID v4; crypto.randomUUID needs a secure context, getRandomValues not.
  function uuid() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
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

  // api calls the JSON API; a failure throws an Error with the problem's status, code and detail.
  async function api(method, path, body) {
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const isJSON = (res.headers.get("Content-Type") || "").includes("json");
    const data = res.status !== 204 && isJSON ? await res.json().catch(() => null) : null;
    if (!res.ok) {
      const err = new Error((data && (data.detail || data.title)) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      err.code = data && data.code;
      err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
      if (res.status === 401 && state.token && !path.startsWith("/api/v1/auth/verify")) {
        signOut("Your session has ended. Sign in again.");
      }
      throw err;
    }
    return data;
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
    const reply = await api("POST", "/api/v1/auth/verify", { token: s });
    return reply.token;
  }

  async function signIn(token) {
    if (state.token && state.token !== token) reset();
    state.token = token;
    store(TOKEN_KEY, token);
    try {
      state.me = await api("GET", "/api/v1/me");
    } catch (err) {
      if (err.status === 401 || state.token !== token) return; // api() signed out
      // The server is unreachable or failing: the token may be fine, so try again later.
      const delay = backoff();
      setConn("offline", `server unreachable: retrying in ${Math.ceil(delay / 1000)} s`);
      setTimeout(() => { if (state.token === token && !state.me) signIn(token); }, delay);
      return;
    }
    state.wsAttempt = 0;
    $("me").textContent = state.me.email;
    $("logout").hidden = false;
    $("signin").hidden = true;
    $("app").hidden = false;
    await refreshClasses();
    const saved = load(ROOM_KEY);
    if (saved && state.classes.has(saved)) selectRoom(saved);
    else if (state.classes.size > 0) selectRoom(state.classes.keys().next().value);
    connect();
  }

  // signOut forgets the session in this browser (the server side is revoked by logout).
  function signOut(message) {
    const wasSignedIn = state.token != null;
    store(TOKEN_KEY, null);
    for (const id of state.rooms.keys()) store(SEQ_KEY + id, null);
    store(ROOM_KEY, null);
    reset();
    $("app").hidden = true;
    $("signin").hidden = false;
    setConn("offline", "signed out");
    if (message && wasSignedIn) toast(message);
  }

  // reset drops the socket and everything known of the signed-in user from the page.
  function reset() {
    state.token = null;
    state.me = null;
    disconnect();
    state.classes.clear();
    state.rooms.clear();
    state.outbox.clear();
    state.current = null;
    state.thread = null;
    $("me").textContent = "";
    $("logout").hidden = true;
    render();
  }

  // ---- Where sign-in links go (GET /api/v1/config) -------------------------------------------
  // A server without a mail server (development) prints each link in its output instead: the
  // sign-in card says so, only then.
  const serverConfig = fetch("/api/v1/config")
    .then((r) => (r.ok ? r.json() : {}))
    .catch(() => ({}));
  const linksInServerOutput = () => serverConfig.then((c) => c.sign_in_links === "server_output");
  linksInServerOutput().then((yes) => { $("link-note").hidden = !yes; });

  $("magic-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = $("magic-status");
    status.textContent = "Sending…";
    try {
      await api("POST", "/api/v1/auth/magic-link", { email: $("email").value.trim() });
      status.textContent = (await linksInServerOutput())
        ? "Sent to the server's output: find the line \"sign-in link for …\" in its terminal. The link is valid for 15 minutes."
        : "Check your inbox: the link is valid for 15 minutes.";
    } catch (err) {
      status.textContent = err.code === "rate_limited" && err.retryAfter
        ? `Too many requests; try again in ${Math.ceil(err.retryAfter / 60)} min.`
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
    try { await api("POST", "/api/v1/auth/logout"); } catch (_) { /* signed out locally anyway */ }
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
        online: 0,
        messages: new Map(), // message id -> Message
        lastSeq: Number(load(SEQ_KEY + id)) || 0,
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

  function setLastSeq(r, seq) {
    r.lastSeq = seq;
    store(SEQ_KEY + r.id, seq);
  }

  async function refreshClasses() {
    try {
      const { classes } = await api("GET", "/api/v1/me/classes");
      state.classes = new Map(classes.map((c) => [c.id, c]));
    } catch (err) {
      toast(`Could not load your classes: ${err.message}`);
    }
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
      const { classes } = await api("GET", "/api/v1/classes?" + new URLSearchParams({ q, limit: "25" }));
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
      await api("POST", "/api/v1/me/classes", { class_id: c.id });
    } catch (err) {
      toast(err.message);
      return;
    }
    state.classes.set(c.id, c);
    renderClasses();
    $("search-form").requestSubmit();
    selectRoom(c.id);
    if (state.ws && state.ws.readyState === WebSocket.OPEN) openRoom(state.ws, c.id);
  }

  // ---- Messages ------------------------------------------------------------------------------

  // loadHistory fetches, once per page load, the page of a room that ends with the last message
  // this browser saw there (the newest page on a first visit). The socket then resumes after it,
  // so what was missed streams in and the room reads on without a gap.
  function loadHistory(r) {
    if (!r.loading) {
      const page = r.lastSeq > 0 ? `before_seq=${r.lastSeq + 1}&limit=${PAGE}` : `limit=${PAGE}`;
      r.loading = api("GET", `/api/v1/classes/${encodeURIComponent(r.id)}/messages?${page}`)
        .then(({ messages }) => {
          for (const m of messages) add(r, m, false);
          const newest = messages.length ? messages[messages.length - 1].seq : 0;
          // A stored seq beyond the newest message belongs to a database that no longer exists.
          if (r.lastSeq === 0 || newest < r.lastSeq) setLastSeq(r, newest);
          r.oldestSeq = messages.length ? messages[0].seq : r.lastSeq + 1;
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

  async function loadOlder() {
    const r = state.current && room(state.current);
    if (!r || !r.more) return;
    const { messages } = await api("GET",
      `/api/v1/classes/${encodeURIComponent(r.id)}/messages?before_seq=${r.oldestSeq}&limit=${PAGE}`);
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
    if (live && !known && m.parent_id) {
      const root = r.messages.get(m.parent_id);
      if (root) root.reply_count = (root.reply_count || 0) + 1;
    }
    return !known;
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
      const { root, replies } = await api("GET",
        `/api/v1/classes/${encodeURIComponent(r.id)}/messages/${encodeURIComponent(rootId)}/thread`);
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
      await api("POST", `/api/v1/messages/${encodeURIComponent(m.id)}/flag`, reason ? { reason } : {});
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
        own && el("span", {}, "you")),
      // Isolated, so that no message can reorder the text around it (the server also closes
      // the bidirectional controls a message leaves open).
      el("p", { class: "body", dir: "auto" }, body),
      el("div", { class: "msg-actions" },
        !inThread && !m.parent_id && !m.pending && el("button", { type: "button", class: "link", onclick: () => openThread(m.id) },
          replies === 0 ? "Reply" : replies === 1 ? "1 reply" : `${replies} replies`),
        !own && !gone && !m.pending && el("button", { type: "button", class: "link flag", onclick: () => flag(m) }, "Flag")));
  }

  // pendingOf lists the unacknowledged messages of a room (thread root or main list).
  function pendingOf(roomId, parentId) {
    const out = [];
    for (const f of state.outbox.values()) {
      if (f.room === roomId && (f.parent_id || null) === parentId) {
        out.push({ id: f.client_msg_id, anon_id: room(roomId).anonId, content: f.content, parent_id: parentId, pending: true });
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

  // publish queues a message; it is sent now if the socket is open, and again after every
  // reconnect until acknowledged. client_msg_id makes the repeats harmless.
  function publish(content, parentId) {
    const text = content.trim();
    if (!text || !state.current) return;
    const frame = { type: "publish", ref: nextRef(), room: state.current, content: text, client_msg_id: uuid() };
    if (parentId) frame.parent_id = parentId;
    state.outbox.set(frame.ref, frame);
    send(frame);
    render({ toBottom: !parentId });
  }

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    publish($("content").value);
    $("content").value = "";
  });
  $("reply-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    publish($("reply").value, state.thread);
    $("reply").value = "";
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
      if (state.current && now - state.lastTyping > TYPING_EVERY_MS) {
        state.lastTyping = now;
        send({ type: "typing", room: state.current });
      }
    });
  }

  // ---- WebSocket -----------------------------------------------------------------------------

  function nextRef() { return "r" + (++state.refs); }

  function send(frame) {
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function setConn(s, text) {
    const c = $("conn");
    c.dataset.state = s;
    c.textContent = text || s;
  }

  // connect opens the one socket of this page: a single-use ticket, because a browser cannot
  // set an Authorization header on a WebSocket.
  async function connect() {
    clearTimeout(state.wsTimer);
    state.wsTimer = 0;
    if (!state.token || state.ws) return;
    setConn("connecting", "connecting…");
    let ticket;
    try {
      ({ ticket } = await api("POST", "/api/v1/auth/ws-ticket"));
    } catch (err) {
      if (err.status === 401) return; // api() signed out
      reconnectLater(backoff(), err.status === 429 && err.retryAfter * 1000);
      return;
    }
    if (!state.token || state.ws) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    state.ws = ws;
    ws.onopen = () => {
      setConn("online");
      for (const r of state.rooms.values()) r.subscribed = false;
      for (const id of state.classes.keys()) openRoom(ws, id);
      heartbeat(ws);
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      state.wsAttempt = 0; // the server talks: the connection is good
      onFrame(f);
    };
    ws.onclose = (ev) => closed(ws, ev.code, ev.reason);
  }

  // openRoom subscribes a room once its history is loaded, resuming after the last seq seen.
  function openRoom(ws, id) {
    const r = room(id);
    loadHistory(r).then(() => {
      if (state.ws !== ws || ws.readyState !== WebSocket.OPEN || !state.classes.has(id)) return;
      ws.send(JSON.stringify({ type: "subscribe", ref: nextRef(), room: id, since_seq: r.lastSeq }));
      // Unacknowledged publishes of this room go again, after the subscription.
      for (const f of state.outbox.values()) if (f.room === id) ws.send(JSON.stringify(f));
    }).catch((err) => toast(`Could not open ${id}: ${err.message}`));
  }

  // heartbeat pings the server; a socket that does not answer in time is dropped and replaced,
  // which finds dead connections (a laptop waking from sleep) long before TCP would.
  function heartbeat(ws) {
    clearInterval(state.pingTimer);
    state.pingTimer = setInterval(() => {
      if (state.ws !== ws) return;
      send({ type: "ping", ref: nextRef() });
      clearTimeout(state.pongTimer);
      state.pongTimer = setTimeout(() => {
        if (state.ws === ws) closed(ws, 4000, "no pong");
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  // backoff is the next reconnect delay: exponential, capped, with full jitter so that clients
  // cut off together do not come back together.
  function backoff() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** state.wsAttempt);
    state.wsAttempt = Math.min(state.wsAttempt + 1, 16);
    return 250 + Math.random() * ceiling;
  }

  function reconnectLater(ms, atLeast) {
    const delay = Math.max(ms, atLeast || 0);
    clearTimeout(state.wsTimer);
    setConn("offline", `offline: retrying in ${Math.ceil(delay / 1000)} s`);
    state.wsTimer = setTimeout(connect, delay);
  }

  // closed handles the end of a socket, whoever ended it.
  function closed(ws, code, reason) {
    if (state.ws !== ws) return;
    state.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
    for (const r of state.rooms.values()) { r.subscribed = false; r.typing.clear(); }
    render();
    if (code === CLOSE_SESSION_ENDED) {
      signOut("Your session has ended. Sign in again.");
    } else if (code === CLOSE_SERVICE_RESTART) {
      // A deploy: come back after the random delay the server suggests (or one of our own), so
      // that the clients of an instance do not all come back at once.
      const hint = /reconnect_after_ms=(\d+)/.exec(reason || "");
      state.wsAttempt = 0;
      reconnectLater(hint ? Number(hint[1]) : 1000 + Math.random() * 9000);
    } else if (state.token) {
      reconnectLater(backoff());
    }
    if (reason && code !== CLOSE_SESSION_ENDED) console.info("socket closed", code, reason);
  }

  function disconnect() {
    clearTimeout(state.wsTimer);
    state.wsTimer = 0;
    const ws = state.ws;
    if (!ws) return;
    state.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close(1000);
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
  }

  // Back online, or back to the tab: do not wait for the backoff.
  function reconnectNow() {
    if (state.token && !state.ws && state.wsTimer) {
      state.wsAttempt = 0;
      connect();
    }
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });

  function onFrame(f) {
    const r = f.room ? state.rooms.get(f.room) : null;
    switch (f.type) {
      case "subscribed":
        if (!r) return;
        r.subscribed = true;
        r.anonId = f.anon_id;
        // Below the anonymity threshold the server sends no exact count (online is null).
        r.online = typeof f.online === "number" ? f.online : null;
        r.fewerThan = f.anonymity_k || f.online_fewer_than;
        r.smallRoom = !!f.small_room;
        r.replayUntil = typeof f.last_seq === "number" ? f.last_seq : 0;
        if (r.replayUntil < r.lastSeq) setLastSeq(r, r.replayUntil);
        break;
      case "unsubscribed":
        if (r) r.subscribed = false;
        break;
      case "message": {
        if (!r) return;
        const m = f.message;
        // Resume sends every seq after the one asked for, then live ones: older seqs are repeats.
        if (m.seq <= r.lastSeq && r.messages.has(m.id)) return;
        // A replayed reply is already counted in the reply_count of a root loaded since.
        if (add(r, m, m.seq > r.replayUntil) && (f.room !== state.current || document.hidden)) r.unread++;
        if (m.seq > r.lastSeq) setLastSeq(r, m.seq);
        r.typing.delete(m.anon_id);
        if (f.room !== state.current) renderClasses();
        break;
      }
      case "ack": {
        const sent = state.outbox.get(f.ref);
        state.outbox.delete(f.ref);
        const target = r || (sent && state.rooms.get(sent.room));
        if (target && f.message) add(target, f.message, true);
        break;
      }
      case "message_hidden": {
        const m = r && r.messages.get(f.message_id);
        if (m) { m.hidden = true; m.content = null; }
        break;
      }
      case "message_erased": {
        const m = r && r.messages.get(f.message_id);
        if (m) { m.deleted = true; m.content = null; m.anon_id = null; }
        break;
      }
      case "message_restored":
        if (r && f.message) r.messages.set(f.message.id, f.message);
        break;
      case "presence":
        if (r) {
          r.online = typeof f.online === "number" ? f.online : null;
          if (f.online_fewer_than) r.fewerThan = f.online_fewer_than;
        }
        break;
      case "typing":
        if (r && f.anon_id !== r.anonId) r.typing.set(f.anon_id, Date.now() + TYPING_SHOWN_MS);
        break;
      case "pong":
        clearTimeout(state.pongTimer);
        return;
      case "error":
        onError(f);
        break;
      default:
        return; // frame types added later are ignored
    }
    render();
  }

  function onError(f) {
    const sent = f.ref && state.outbox.get(f.ref);
    if (sent && (f.code === "unavailable" || f.code === "rate_limited")) {
      // Retryable: send the same frame (same client_msg_id) again a little later.
      setTimeout(() => { if (state.outbox.has(f.ref)) send(sent); }, f.retry_after_ms || 2000);
      if (f.code === "rate_limited") toast("Slow down a little: your message will go out in a moment.");
      return;
    }
    if (sent) state.outbox.delete(f.ref);
    toast(f.message || f.code);
  }

  // ---- Start ---------------------------------------------------------------------------------

  const token = tokenFromFragment() || load(TOKEN_KEY);
  if (token) signIn(token);
  else signOut();
})();
