// The service worker of Common Grounds. It keeps a copy of the app shell (the page, its script,
// style and icons) so that the app opens without a network and says it is offline. Everything
// else, the API and the WebSocket, always goes to the network: messages are never cached here.
//
// Shell files are fetched from the network first (a new release reaches students at once) and
// served from the cache only when the network fails.
const CACHE = "commongrounds-shell-v1";
const SHELL = [
  "/",
  "/static/app.js",
  "/static/format.js",
  "/static/cg.js",
  "/static/style.css",
  "/static/manifest.webmanifest",
  "/static/icon.svg",
  "/static/icon-192.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  // The page itself (any navigation to "/", whatever its fragment) or one of its files.
  const key = req.mode === "navigate" ? (url.pathname === "/" ? "/" : null) : SHELL.includes(url.pathname) ? url.pathname : null;
  if (key === null) return;
  event.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          event.waitUntil(caches.open(CACHE).then((c) => c.put(key, copy)));
        }
        return res;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});

// Web Push. A push carries the fields of a notification (room, thread_id, message_id, anon_id,
// excerpt, created_at) and no names: the worker cannot ask the server without the student's
// session, so the app tells it the course of each of the student's classes (a "classes"
// message), which it keeps in a cache of its own, and the title falls back to a generic one.
const NAMES = "commongrounds-names-v1";
const NAMES_KEY = "/names.json"; // a key in the cache, never fetched

self.addEventListener("message", (event) => {
  const m = event.data;
  if (!m || m.type !== "classes" || typeof m.names !== "object") return;
  event.waitUntil(caches.open(NAMES).then((c) => c.put(NAMES_KEY, new Response(JSON.stringify(m.names), {
    headers: { "Content-Type": "application/json" },
  }))));
});

async function className(room) {
  try {
    const hit = await (await caches.open(NAMES)).match(NAMES_KEY);
    const names = hit ? await hit.json() : {};
    return typeof names[room] === "string" ? names[room] : null;
  } catch (_) {
    return null;
  }
}

self.addEventListener("push", (event) => {
  let n = {};
  try { n = event.data ? event.data.json() : {}; } catch (_) { /* not JSON: a generic notification */ }
  event.waitUntil((async () => {
    const course = n.room ? await className(n.room) : null;
    const who = n.anon_id || "Someone";
    const title = course ? `${who} replied in ${course}` : `${who} replied in your thread`;
    await self.registration.showNotification(title, {
      body: n.excerpt || "Open Common Grounds to read the reply.",
      icon: "/static/icon-192.png",
      tag: n.thread_id || "commongrounds", // one notification a thread
      data: { room: n.room || null, thread_id: n.thread_id || null },
    });
  })());
});

// The app's address of a thread: its room, with the thread open.
function threadURL(d) {
  const u = new URL("/", self.location.origin);
  if (d && d.room) u.hash = d.thread_id ? `#/rooms/${d.room}/thread/${d.thread_id}` : `#/rooms/${d.room}`;
  else u.hash = "#/inbox";
  return u.href;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = threadURL(event.notification.data);
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
    if (win) {
      // The open app goes to the thread itself, without loading again.
      win.postMessage({ type: "open", hash: new URL(url).hash });
      return win.focus();
    }
    return self.clients.openWindow(url);
  })());
});
