// Reply notifications in the app: the bell counts replies in the student's threads live, whatever
// room is open; the inbox opens a reply's thread and marks it read, or marks all read; threads
// and rooms are muted and unmuted. Web Push: "Turn on notifications" asks only on a click, and
// the service worker shows a push (delivered through the DevTools protocol) with the class's name.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./browser.mjs";
import { Env } from "./env.mjs";
import { check, joinClass, send, signIn, student, until } from "./students.mjs";

const env = new Env();
let browser;
let sys;
let ann; // writes the thread
let ben; // replies in it

before(async () => {
  [browser, sys] = await Promise.all([launch(), env.system()]);
});
after(async () => {
  await browser?.close();
  await env.close();
});


const bellCount = (page) => page.locator("#bell-count");

/** reply answers the thread of a root message, from the room's open page. */
async function reply(page, root, text) {
  const item = page.locator("#messages .msg", { has: page.locator(".body", { hasText: root }) });
  await item.locator(".msg-actions button").first().click();
  await page.getByLabel("Reply in the thread").fill(text);
  await page.getByLabel("Reply in the thread").press("Enter");
  await page.locator("#thread-messages .msg:not(.pending) .body", { hasText: text }).waitFor();
  await page.locator("#thread-close").click();
}

test("a reply rings the bell in another room; the inbox opens its thread and marks read", async () => {
  ann = await student(browser, sys, "na1a@virginia.edu");
  ben = await student(browser, sys, "nb2b@virginia.edu");
  await Promise.all([signIn(ann, sys), signIn(ben, sys)]);
  await joinClass(ann, "90002", "CS 1110 (101)");
  await joinClass(ann, "90001", "CS 1110 (001)");
  await joinClass(ben, "90001", "CS 1110 (001)");
  await send(ann.page, "Is the midterm open book?");
  assert.equal(await bellCount(ann.page).isVisible(), false);

  // Ann looks at the lab's room while Ben answers in the lecture's.
  await ann.page.goto("/#/rooms");
  await ann.page.locator("#room-list a", { hasText: "CS 1110 (101)" }).click();
  await ann.page.locator("#room-title", { hasText: "CS 1110 (101)" }).waitFor();
  await ben.page.locator("#messages .body", { hasText: "Is the midterm open book?" }).waitFor();
  await reply(ben.page, "Is the midterm open book?", "Yes, one page of notes, double-sided, handwritten or typed, as the syllabus says");
  // On a phone the room hides the tabs: its header shows the count, and leads to the inbox.
  await ann.page.getByRole("link", { name: "Inbox: 1 unread notification" }).waitFor();
  await check(ann.page, "room with a notification");
  assert.equal(await bellCount(ann.page).textContent(), "1");
  await ann.page.getByRole("link", { name: "Inbox: 1 unread notification" }).click();
  const first = ann.page.locator("#inbox .inbox-item").first();
  await first.filter({ hasText: "Yes, one page of notes, double-sided, handwritten or typed, as the syllabus says" }).waitFor();
  assert.match(await first.innerText(), /replied \(unread\)/);
  assert.match(await first.innerText(), /CS 1110 \(001\)/);
  await check(ann.page, "inbox");

  // Opening it opens the thread, and reads it.
  await first.click();
  await ann.page.locator("#thread[open]").waitFor();
  await ann.page.locator("#thread-messages .msg.root .body", { hasText: "Is the midterm open book?" }).waitFor();
  await ann.page.locator("#thread-messages .body", { hasText: "Yes, one page of notes, double-sided, handwritten or typed, as the syllabus says" }).waitFor();
  await bellCount(ann.page).waitFor({ state: "hidden" });
  await check(ann.page, "thread opened from a notification");
  await ann.page.locator("#thread-close").click();

  // Two more, newest first; "Mark all read" reads both.
  await reply(ben.page, "Is the midterm open book?", "Double-sided, I think");
  await until(async () => (await bellCount(ann.page).textContent()) === "1", "the bell counting 1");
  await reply(ben.page, "Is the midterm open book?", "The syllabus says so");
  await until(async () => (await bellCount(ann.page).textContent()) === "2", "the bell counting 2");
  await ann.page.goto("/#/inbox");
  await until(async () => (await ann.page.locator("#inbox .excerpt").allInnerTexts()).join("|")
    === "The syllabus says so|Double-sided, I think|Yes, one page of notes, double-sided, handwritten or typed, as the syllabus says", "the inbox, newest first");
  assert.equal(await ann.page.locator("#inbox .inbox-item.unread").count(), 2);
  await ann.page.getByRole("button", { name: "Mark all read" }).click();
  await bellCount(ann.page).waitFor({ state: "hidden" });
  await until(async () => (await ann.page.locator("#inbox .inbox-item.unread").count()) === 0 && (await ann.page.locator("#inbox .inbox-item").count()) === 3, "all read");
});

test("a muted thread rings nothing until it is unmuted; a room's mute is kept by the server", async () => {
  await ann.page.goto("/#/rooms");
  await ann.page.locator("#room-list a", { hasText: "CS 1110 (001)" }).click();
  const root = ann.page.locator("#messages .msg", { has: ann.page.locator(".body", { hasText: "Is the midterm open book?" }) });
  await root.getByRole("button", { name: /open the thread/ }).click();
  const mute = ann.page.locator("#thread-mute");
  await mute.click();
  await ann.page.locator("#thread-mute[aria-pressed=true]", { hasText: "Unmute thread" }).waitFor();
  await check(ann.page, "muted thread");
  await ann.page.locator("#thread-close").click();

  await reply(ben.page, "Is the midterm open book?", "Muted reply");
  await ann.page.locator("#messages .msg", { has: ann.page.locator(".body", { hasText: "Is the midterm open book?" }) })
    .getByRole("button", { name: "4 replies: open the thread" }).click();
  await ann.page.locator("#thread-messages .body", { hasText: "Muted reply" }).waitFor();
  await mute.click();
  await ann.page.locator("#thread-mute[aria-pressed=false]", { hasText: "Mute thread" }).waitFor();
  await ann.page.locator("#thread-close").click();
  await reply(ben.page, "Is the midterm open book?", "Heard again");
  await until(async () => (await bellCount(ann.page).textContent()) === "1", "the bell counting the unmuted reply");
  await ann.page.goto("/#/inbox");
  await until(async () => (await ann.page.locator("#inbox .excerpt").allInnerTexts())[0] === "Heard again", "the unmuted reply first");
  assert.ok(!(await ann.page.locator("#inbox .excerpt").allInnerTexts()).includes("Muted reply"), "no notification of a muted thread");

  await ann.page.goto("/#/rooms");
  await ann.page.locator("#room-list a", { hasText: "CS 1110 (001)" }).click();
  await ann.page.getByRole("button", { name: "Details" }).click();
  await ann.page.locator("#room-mute").click();
  await ann.page.locator("#room-mute[aria-pressed=true]", { hasText: "Unmute reply notifications" }).waitFor();
  await check(ann.page, "room details with a mute");
  await ann.page.reload();
  await ann.page.locator("#conn[data-state=online]").waitFor();
  await ann.page.getByRole("button", { name: "Details" }).click();
  await ann.page.locator("#room-mute[aria-pressed=true]").waitFor();
  await ann.page.locator("#room-mute").click();
  await ann.page.locator("#room-mute[aria-pressed=false]", { hasText: "Mute reply notifications" }).waitFor();
});

test("Turn on notifications asks only on the click; the service worker shows a push with the class's name", async () => {
  const { page, context } = ann;
  const asked = [];
  await page.exposeFunction("__permissionAsked", () => { asked.push(1); });
  await page.addInitScript(() => {
    const ask = Notification.requestPermission.bind(Notification);
    Notification.requestPermission = (...a) => { window.__permissionAsked(); return ask(...a); };
  });
  await page.goto("/#/inbox");
  await page.reload();
  await page.locator("#conn[data-state=online]").waitFor();
  await page.getByRole("button", { name: "Turn on notifications" }).waitFor();
  assert.equal(asked.length, 0, "no permission asked before the click");
  // Without the permission, nothing is subscribed and the student is told.
  await context.clearPermissions();
  await page.getByRole("button", { name: "Turn on notifications" }).click();
  await page.locator("#push-status", { hasText: "Notifications stay off" }).waitFor();
  assert.equal(asked.length, 1);
  await check(page, "inbox with the push control");

  // A push, as the push service would deliver it, shows with the name of the class.
  await context.grantPermissions(["notifications"]);
  const classId = (await page.locator("#room-list a", { hasText: "CS 1110 (001)" }).getAttribute("href")).split("/").pop();
  await until(() => page.evaluate(async (id) => {
    const hit = await (await caches.open("commongrounds-names-v1")).match("/names.json");
    return hit ? (await hit.json())[id] === "CS 1110 (001)" : false;
  }, classId), "the service worker's names of the classes");
  const cdp = await context.newCDPSession(page);
  const registration = new Promise((resolve) => cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
    const r = registrations.find((x) => x.scopeURL === sys.base + "/" && !x.isDeleted);
    if (r) resolve(r.registrationId);
  }));
  await cdp.send("ServiceWorker.enable");
  const registrationId = await registration;
  const push = { room: classId, thread_id: "11111111-1111-4111-8111-111111111111", message_id: "22222222-2222-4222-8222-222222222222",
    anon_id: "Quiet Otter", excerpt: "See you at office hours", created_at: new Date().toISOString() };
  await cdp.send("ServiceWorker.deliverPushMessage", { origin: sys.base, registrationId, data: JSON.stringify(push) });
  const shown = await until(() => page.evaluate(async () => {
    const ns = await (await navigator.serviceWorker.ready).getNotifications();
    return ns.length ? ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })) : null;
  }), "the notification of the push");
  assert.deepEqual(shown, [{ title: "Quiet Otter replied in CS 1110 (001)", body: "See you at office hours", tag: push.thread_id,
    data: { room: classId, thread_id: push.thread_id } }]);

  // A room the worker does not know gets a generic title.
  await cdp.send("ServiceWorker.deliverPushMessage", { origin: sys.base, registrationId,
    data: JSON.stringify({ ...push, room: "33333333-3333-4333-8333-333333333333", thread_id: "44444444-4444-4444-8444-444444444444" }) });
  await until(() => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
    .some((n) => n.title === "Quiet Otter replied in your thread")), "the generic notification");
  await cdp.detach();
});

test("Turn on notifications subscribes with the server's key and stores the subscription", async () => {
  const { page, context } = ann;
  // The browser's push service cannot be reached from here: its subscribe() is replaced by one
  // that records the key it was given and returns a subscription as the Push API shapes it.
  await page.addInitScript(() => {
    const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    PushManager.prototype.subscribe = async function (options) {
      window.__subscribedWith = options;
      const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
      const p256dh = b64(await crypto.subtle.exportKey("raw", pair.publicKey));
      const auth = b64(crypto.getRandomValues(new Uint8Array(16)));
      const endpoint = "https://fcm.googleapis.com/fcm/send/e2e-" + b64(crypto.getRandomValues(new Uint8Array(12)));
      return { endpoint, toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }) };
    };
  });
  await context.grantPermissions(["notifications"]);
  await page.reload();
  await page.locator("#conn[data-state=online]").waitFor();
  await page.getByRole("button", { name: "Turn on notifications" }).click();
  await page.locator("#push-status", { hasText: "Notifications are on for this browser." }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Turn on notifications" }).isVisible(), false);
  const { options, key, stored } = await page.evaluate(async () => {
    const auth = { headers: { authorization: "Bearer " + localStorage.getItem("commongrounds_token") } };
    return {
      options: window.__subscribedWith,
      key: (await (await fetch("/api/v1/push/key")).json()).public_key,
      stored: (await (await fetch("/api/v1/me/push-subscriptions", auth)).json()).subscriptions.map((x) => x.endpoint),
    };
  });
  assert.deepEqual(options, { userVisibleOnly: true, applicationServerKey: key });
  assert.equal(stored.length, 1);
  assert.match(stored[0], /^https:\/\/fcm\.googleapis\.com\/fcm\/send\/e2e-/);
});

test("without Web Push on the server, the control is not offered", async () => {
  const quiet = await env.system({ PUSH_ENABLED: "false" });
  const cy = await student(browser, quiet, "nc3c@virginia.edu");
  const refused = cy.page.waitForResponse((r) => r.url().endsWith("/api/v1/push/key") && r.status() === 404);
  await signIn(cy, quiet);
  await refused;
  await cy.page.goto("/#/inbox");
  await cy.page.getByText("No notifications yet").waitFor();
  assert.equal(await cy.page.locator("#push-on").count(), 1);
  assert.equal(await cy.page.locator("#push-on").isHidden(), true);
  await check(cy.page, "inbox, empty, without Web Push");
  await cy.context.close();
});

test("a notification's address opens the thread", async () => {
  const { page } = ann;
  const classId = (await page.locator("#room-list a", { hasText: "CS 1110 (001)" }).getAttribute("href")).split("/").pop();
  await page.goto(`/#/rooms/${classId}`);
  const root = page.locator("#messages .msg", { has: page.locator(".body", { hasText: "Is the midterm open book?" }) });
  const id = await root.getAttribute("data-id");
  await page.goto("/#/inbox");
  await page.goto(`/#/rooms/${classId}/thread/${id}`);
  await page.locator("#thread[open]").waitFor();
  await page.locator("#thread-messages .msg.root .body", { hasText: "Is the midterm open book?" }).waitFor();
  assert.equal(new URL(page.url()).hash, `#/rooms/${classId}`);
});
