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

// Web Push: the `push` listener (showing a notification) and the `notificationclick` listener
// (focusing or opening the app) belong here, below the shell cache.
