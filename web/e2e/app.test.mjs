// The students' app in Chromium against a real server: three students sign in with links from
// the mail, find and join a class, talk live, reply in threads, flag, befriend, leave and delete
// their accounts; the server restarts mid-conversation; a burst passes the rate limit; every
// screen is checked at a phone's 390×844 for sideways scrolling and by axe-core.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./browser.mjs";
import { Env } from "./env.mjs";
import { DESKTOP, PHONE, bodies, check, openRoom, send, signIn, student, until } from "./students.mjs";

const env = new Env();
let browser;
let sys;
let alice; // on a phone
let bob; // on a desktop
let carol; // a moderator, on a phone

before(async () => {
  [browser, sys] = await Promise.all([launch(), env.system()]);
  await sys.command("grant-moderator", "cd3e@virginia.edu").catch(() => {}); // before the account exists: may fail
});
after(async () => {
  await browser?.close();
  await env.close();
});

test("sign-in by the mailed link lands in the app, signed in", async () => {
  alice = await student(browser, sys, "ab1c@virginia.edu");
  await alice.page.goto("/");
  await alice.page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.equal(await alice.page.locator("#link-note").isVisible(), false, "a server with a mail server says the link is in its output");
  await check(alice.page, "sign-in");
  await signIn(alice, sys);
  await alice.page.getByText("You have not joined a class yet").waitFor();
  await check(alice.page, "rooms, empty");

  bob = await student(browser, sys, "bc2d@virginia.edu", { viewport: DESKTOP });
  carol = await student(browser, sys, "cd3e@virginia.edu");
  await Promise.all([signIn(bob, sys), signIn(carol, sys)]);
});

test("class search finds a course with or without a space, a title, an instructor and a class number", async () => {
  const { page } = alice;
  await page.locator(".tabs").getByRole("link", { name: "Classes" }).click();
  const search = async (q) => {
    await page.getByLabel("Course, title, instructor or class number").fill(q);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.locator("#search-status", { hasNotText: "Searching" }).waitFor();
    await until(async () => !(await page.locator("#search-status").innerText()).startsWith("Searching"), "the search");
    return page.locator("#results h3").allInnerTexts();
  };
  for (const q of ["CS 2100", "cs2100"]) {
    const found = await search(q);
    assert.ok(found.length > 0 && found.every((t) => t.startsWith("CS 2100")), `${q}: ${found}`);
  }
  assert.ok((await search("calculus")).some((t) => /Calculus/.test(t)));
  const card = page.locator("#results li").first();
  await search("90001");
  assert.deepEqual(await page.locator("#results h3").allInnerTexts(), ["CS 1110 (001) · Introduction to Programming"]);
  const details = await card.innerText();
  assert.match(details, /Ada Example/);
  assert.match(details, /Mon, Wed, Fri · 9:00–9:50 am/);
  assert.match(details, /Sample term/);
  assert.ok((await search("Ada Example")).some((t) => t.startsWith("CS 1110")));
  await search("no such class anywhere");
  await page.getByText("No class matches “no such class anywhere”").waitFor();
  await search("CS 1110");
  await check(page, "classes");
});

test("students join a class and talk live, with a thread", async () => {
  for (const s of [alice, bob, carol]) {
    await s.page.goto("/#/classes");
    await s.page.getByLabel("Course, title, instructor or class number").fill("90001");
    await s.page.getByRole("button", { name: "Search", exact: true }).click();
    await s.page.getByRole("button", { name: "Join CS 1110 (001)" }).click();
    await s.page.locator("#room-title", { hasText: "CS 1110" }).waitFor();
    await s.page.locator("#room-meta", { hasText: "online" }).waitFor();
    if (s === alice) await alice.page.getByText("Fewer than 2 people are in this class").waitFor(); // alone, with K=2
  }
  // Once others joined, the warning goes.
  await alice.page.locator("#small-room").waitFor({ state: "hidden" });
  await check(alice.page, "room");

  await send(alice.page, "Hello from Alice: see https://example.edu/syllabus. And javascript:alert(1)");
  const link = bob.page.locator("#messages a", { hasText: "https://example.edu/syllabus" });
  await link.waitFor();
  assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
  assert.equal(await link.getAttribute("href"), "https://example.edu/syllabus");
  assert.equal(await bob.page.locator("#messages a").count(), 1, "only http(s) becomes a link");

  await send(bob.page, "<b>not bold</b> from Bob");
  await alice.page.locator("#messages .body", { hasText: "<b>not bold</b> from Bob" }).waitFor();
  assert.equal(await alice.page.locator("#messages b").count(), 0, "message text is never markup");

  // Bob opens a thread on Alice's message; focus goes in, Alice sees the count rise.
  await bob.page.locator("#messages li", { hasText: "Hello from Alice" }).getByRole("button", { name: "Reply in a thread" }).click();
  const reply = bob.page.getByLabel("Reply in the thread");
  await until(() => reply.evaluate((e) => e === document.activeElement), "focus in the thread");
  await reply.fill("A reply from Bob");
  await reply.press("Enter");
  await bob.page.locator("#thread-messages .msg:not(.pending)", { hasText: "A reply from Bob" }).waitFor();
  await alice.page.locator("#messages li", { hasText: "Hello from Alice" }).getByRole("button", { name: "1 reply: open the thread" }).waitFor();
  await alice.page.locator("#messages li", { hasText: "Hello from Alice" }).getByRole("button", { name: "1 reply: open the thread" }).click();
  await alice.page.locator("#thread-messages .body", { hasText: "A reply from Bob" }).waitFor();
  await check(alice.page, "thread");
  await alice.page.keyboard.press("Escape");
  await alice.page.locator("#thread").waitFor({ state: "hidden" });
  await bob.page.keyboard.press("Escape");

  // Grouping: Bob's two messages in a row show his pseudonym once.
  await send(bob.page, "and a second line from Bob");
  const heads = await alice.page.locator("#messages .msg.head .anon").allInnerTexts();
  assert.equal(heads.length, 2, `one head per run of one author: ${heads}`);
  assert.equal(await alice.page.locator("#messages .day").count(), 1, "one day separator");
});

test("the composer keeps text over the limit and says so", async () => {
  const { page } = alice;
  const box = page.getByLabel("Message to the class");
  const long = "x".repeat(9001); // pasted: nothing cuts it
  await box.fill(long);
  await page.locator("#counter", { hasText: "5001 characters over the limit" }).waitFor();
  await box.press("Enter");
  assert.equal(await box.inputValue(), long, "the text is still there");
  await box.fill("x".repeat(3990));
  await page.locator("#counter", { hasText: "10 characters left" }).waitFor();
  await box.fill("");
});

test("two flags hide a message live, and the flagger sees they flagged it", async () => {
  await send(bob.page, "Buy cheap essays at my site");
  for (const s of [alice, carol]) {
    const item = s.page.locator("#messages li", { hasText: "Buy cheap essays" });
    await item.getByRole("button", { name: "Flag" }).click();
    await s.page.getByRole("dialog", { name: "Flag this message" }).waitFor();
    if (s === alice) await check(s.page, "flag dialog");
    await s.page.getByLabel("Spam or advertising").check();
    await s.page.getByRole("dialog", { name: "Flag this message" }).getByRole("button", { name: "Flag", exact: true }).click();
    await s.page.getByRole("dialog", { name: "Flag this message" }).waitFor({ state: "hidden" });
  }
  await bob.page.locator("#messages .msg.gone .body", { hasText: "Hidden after reports." }).waitFor();
  assert.equal(await bob.page.locator("#messages .body", { hasText: "Buy cheap essays" }).count(), 0);
});

test("friends: request by computing id, accept, friends in the class, common classes", async () => {
  await alice.page.getByRole("link", { name: "‹ Rooms" }).click();
  await alice.page.locator(".tabs").getByRole("link", { name: "Friends" }).click();
  await alice.page.getByLabel("Add a friend by computing ID").fill(bob.computingId);
  await alice.page.getByRole("button", { name: "Send request" }).click();
  await alice.page.locator("#outgoing", { hasText: bob.computingId }).waitFor();
  await check(alice.page, "friends");

  await bob.page.locator(".tabs").getByRole("link", { name: /Friends/ }).click();
  await bob.page.locator("#incoming", { hasText: alice.computingId }).getByRole("button", { name: "Accept" }).click();
  await bob.page.locator("#friends", { hasText: alice.computingId }).waitFor();
  await bob.page.locator("#friends", { hasText: "Classes in common: CS 1110 (001)" }).waitFor();

  await alice.page.goto("/#/rooms");
  await openRoom(alice.page, "CS 1110");
  await alice.page.getByRole("button", { name: "Details" }).click();
  await alice.page.locator("#room-friends", { hasText: `Friends in this class: ${bob.computingId}` }).waitFor();
});

test("account: phone verification, and friends found in a contacts file", async () => {
  const { page } = alice;
  await page.goto("/#/account");
  await page.getByLabel("Your mobile number").fill("+1 434 555 0142");
  await page.getByRole("button", { name: "Text me a code" }).click();
  // Without SMS_WEBHOOK_URL the server logs the text it would have sent.
  const code = await until(() => {
    const line = sys.logs.findLast((l) => l.includes("text message not sent"));
    return line && /\b(\d{6})\b/.exec(JSON.parse(line).body)?.[1];
  }, "the texted code in the server's log");
  await page.getByLabel("The code we texted you").fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByText("Your number is verified: friends").waitFor();
  await check(page, "account");

  const vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice\r\nTEL;TYPE=CELL:(434) 555-0142\r\nEND:VCARD\r\n" +
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Nobody\r\nTEL:+1 434 555 0199\r\nEND:VCARD\r\n";
  await carol.page.goto("/#/account");
  await carol.page.getByLabel("Contacts file").setInputFiles({ name: "contacts.vcf", mimeType: "text/vcard", buffer: Buffer.from(vcard) });
  await carol.page.getByText("1 student found among your contacts.").waitFor();
  await carol.page.locator("#contacts li", { hasText: alice.computingId }).getByRole("button", { name: "Add friend" }).waitFor();
});

test("friends: decline, cancel, suggestions, block and unblock", async () => {
  // Carol asks Bob; Bob declines.
  await carol.page.goto("/#/friends");
  // Alice's verified number is in Carol's contacts: she is suggested.
  await carol.page.locator("#suggestions", { hasText: alice.computingId }).getByText("in your contacts").waitFor();
  await carol.page.getByLabel("Add a friend by computing ID").fill(bob.computingId);
  await carol.page.getByRole("button", { name: "Send request" }).click();
  await carol.page.locator("#outgoing", { hasText: bob.computingId }).waitFor();
  await bob.page.reload();
  await bob.page.locator("#incoming", { hasText: carol.computingId }).getByRole("button", { name: "Decline" }).click();
  await bob.page.locator("#incoming", { hasText: "No requests to you." }).waitFor();

  // Carol asks Alice, then takes it back.
  await carol.page.locator("#suggestions", { hasText: alice.computingId }).getByRole("button", { name: "Add friend" }).click();
  await carol.page.locator("#outgoing li", { hasText: alice.computingId }).getByRole("button", { name: "Cancel" }).click();
  await carol.page.locator("#outgoing li", { hasText: alice.computingId }).waitFor({ state: "detached" });

  // Bob blocks Alice, which ends their friendship, then unblocks her.
  const card = bob.page.locator("#friends li", { hasText: alice.computingId });
  await card.getByRole("button", { name: "Block" }).click();
  await bob.page.getByRole("dialog", { name: `Block ${alice.computingId}?` }).getByRole("button", { name: "Block" }).click();
  await bob.page.locator("#blocked", { hasText: alice.computingId }).waitFor();
  await bob.page.locator("#friends", { hasText: "No friends yet" }).waitFor();
  // The block is the server's: after a reload (as on another device) it is still listed.
  await bob.page.reload();
  await bob.page.locator("#blocked li", { hasText: alice.computingId }).getByRole("button", { name: "Unblock" }).click();
  await bob.page.locator("#blocked", { hasText: "Nobody blocked" }).waitFor();
});

test("a server restart mid-conversation loses and reorders nothing", async () => {
  await openRoom(alice.page, "CS 1110");
  await openRoom(bob.page, "CS 1110");
  await sys.stop();
  await alice.page.locator("#conn[data-state=offline]").waitFor();
  await alice.page.getByRole("button", { name: "Reconnect now" }).waitFor();
  assert.doesNotMatch(await alice.page.locator("#room-meta").innerText(), /\d+ online/, "presence is cleared while offline");
  // Written while the server is down: kept, shown as sending, sent in order when it is back.
  for (const t of ["offline one", "offline two", "offline three"]) {
    await alice.page.getByLabel("Message to the class").fill(t);
    await alice.page.getByLabel("Message to the class").press("Enter");
  }
  await alice.page.locator("#messages .msg.pending", { hasText: "offline three" }).waitFor();
  await sys.start();
  await alice.page.getByRole("button", { name: "Reconnect now" }).click();
  await bob.page.locator("#messages .body", { hasText: "offline three" }).waitFor({ timeout: 20_000 });
  const seen = (await bodies(bob.page)).filter((t) => t.startsWith("offline"));
  assert.deepEqual(seen, ["offline one", "offline two", "offline three"]);
});

test("a burst of 30 messages past the rate limit arrives in order", async () => {
  const { page } = alice;
  const box = page.getByLabel("Message to the class");
  for (let i = 1; i <= 30; i++) {
    await box.fill(`burst ${i}`);
    await box.press("Enter");
  }
  await bob.page.locator("#messages .body", { hasText: /^burst 30$/ }).waitFor({ timeout: 30_000 });
  await page.locator("#messages .msg:not(.pending) .body", { hasText: /^burst 30$/ }).waitFor({ timeout: 30_000 });
  const want = Array.from({ length: 30 }, (_, i) => `burst ${i + 1}`);
  for (const s of [alice, bob]) {
    const got = (await bodies(s.page)).filter((t) => t.startsWith("burst "));
    assert.deepEqual(got, want, `${s.email} sees the burst in order`);
  }
});

test("typing, unread counts, new messages ↓ and older messages on scrolling up", async () => {
  // Typing shows in the other's room. The app tells the room at most every 3 s and the server
  // passes on at most one a second, so Alice keeps typing until Bob sees it.
  const typing = bob.page.locator("#typing", { hasText: "is typing…" });
  await until(async () => {
    await alice.page.getByLabel("Message to the class").press("a");
    return typing.isVisible();
  }, "Bob to see Alice typing");
  await alice.page.getByLabel("Message to the class").fill("");

  // Away from the room, a new message counts as unread in the list, the tab bar and the title.
  await bob.page.locator(".tabs").getByRole("link", { name: "Classes" }).click();
  await send(alice.page, "are you there?");
  await until(async () => (await bob.page.title()) === "(1) Common Grounds", "the unread count in the title");
  await bob.page.locator("#unread-total", { hasText: "1" }).waitFor();
  await bob.page.locator(".tabs").getByRole("link", { name: /Rooms/ }).click();
  await bob.page.locator("#room-list a", { hasText: "CS 1110" }).click();
  await until(async () => (await bob.page.title()) === "Common Grounds", "the unread count cleared");

  // Scrolled up, new messages wait behind a button that brings them into view.
  await bob.page.locator("#scroller").evaluate((e) => { e.scrollTop = 0; });
  await send(alice.page, "one more thing");
  const jump = bob.page.getByRole("button", { name: "1 new message ↓" });
  await jump.waitFor();
  await jump.click();
  await jump.waitFor({ state: "hidden" });
  await until(() => bob.page.locator("#scroller").evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight < 80), "the room scrolled down");

  // More than a page of messages: a reload shows the last 50, scrolling up brings the rest.
  const box = alice.page.getByLabel("Message to the class");
  for (let i = 1; i <= 15; i++) {
    await box.fill(`filler ${i}`);
    await box.press("Enter");
  }
  await bob.page.locator("#messages .body", { hasText: /^filler 15$/ }).waitFor();
  await bob.page.reload();
  await bob.page.locator("#messages .body", { hasText: /^filler 15$/ }).waitFor();
  const firstPage = await bob.page.locator("#messages .msg").count();
  assert.equal(firstPage, 50, "one page of history after a reload");
  await bob.page.locator("#scroller").evaluate((e) => { e.scrollTop = 0; });
  await bob.page.locator("#messages .body", { hasText: "Hello from Alice" }).waitFor();
  await bob.page.getByText("This is the start of the room.").waitFor();
});

test("the keyboard reaches the rooms, and focus is visible", async () => {
  const { page } = bob;
  await page.goto("/#/rooms");
  await page.locator("#room-list a").first().waitFor();
  await page.locator("body").focus();
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.closest("#room-list") !== null);
  }
  assert.ok(reached, "Tab reaches the room list");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, "solid", "the focused link shows an outline");
  await page.keyboard.press("Enter");
  await page.locator("#room-title", { hasText: "CS 1110" }).waitFor();
});

test("a moderator sees the flagged queue, reveals with a reason, restores and hides", async () => {
  // carol became a moderator before her account existed only if the command allowed it; grant now.
  await sys.command("grant-moderator", carol.email);
  await carol.page.goto("/#/rooms");
  await carol.page.reload();
  await carol.page.locator(".tabs").getByRole("link", { name: "Moderation" }).click();
  // A hidden message's text is not sent, even to moderators: it is the one with two flags.
  const item = carol.page.locator("#flagged li", { hasText: "2 flags · hidden" });
  await item.waitFor();
  await check(carol.page, "moderation");
  await item.getByRole("button", { name: "Reveal author…" }).click();
  await carol.page.getByLabel("Reason (required)").fill("Spam report check");
  await carol.page.getByRole("button", { name: "Reveal", exact: true }).click();
  await item.getByText(`Written by ${bob.email}`).waitFor();
  await item.getByRole("button", { name: "Restore" }).click();
  await carol.page.locator("#flagged li", { hasText: "Buy cheap essays" }).getByRole("button", { name: "Hide" }).waitFor();
  await bob.page.locator("#messages .body", { hasText: "Buy cheap essays" }).waitFor();
  // Hidden again, by the moderator this time: the room is told which.
  await carol.page.locator("#flagged li", { hasText: "Buy cheap essays" }).getByRole("button", { name: "Hide" }).click();
  await bob.page.locator("#messages .msg.gone .body", { hasText: "Hidden by a moderator." }).waitFor();
});

test("every screen at 390×844 and at 1280×800 passes axe and does not scroll sideways", async () => {
  for (const s of [alice, bob]) {
    for (const hash of ["#/rooms", "#/classes", "#/friends", "#/account"]) {
      await s.page.goto("/" + hash);
      await s.page.locator(`.screen[data-screen=${hash.slice(2)}]`).waitFor();
      await check(s.page, `${hash} at ${s === alice ? "390" : "1280"}`);
    }
  }
  // Dark: the same screens, and a room, meet the contrast rules too.
  await alice.page.emulateMedia({ colorScheme: "dark" });
  try {
    for (const hash of ["#/classes", "#/friends", "#/account", "#/rooms"]) {
      await alice.page.goto("/" + hash);
      await alice.page.locator(`.screen[data-screen=${hash.slice(2)}]`).waitFor();
      await check(alice.page, `${hash} in dark`);
    }
    await openRoom(alice.page, "CS 1110");
    await check(alice.page, "room in dark");
  } finally {
    await alice.page.emulateMedia({ colorScheme: "light" });
  }

  await alice.page.goto("/#/account");
  await alice.page.getByRole("button", { name: "Delete my account…" }).click();
  await alice.page.getByRole("dialog", { name: "Delete your account?" }).waitFor();
  await check(alice.page, "delete dialog");
  await alice.page.getByRole("button", { name: "Cancel" }).click();

  const dark = await student(browser, sys, "de4f@virginia.edu", { colorScheme: "dark" });
  await dark.page.goto("/");
  await check(dark.page, "sign-in, dark");
  await dark.context.close();
});

test("the app opens offline from the service worker's copy and says so", async () => {
  const { page, context } = carol;
  await page.goto("/#/rooms");
  await page.evaluate(() => navigator.serviceWorker.ready);
  await until(() => page.evaluate(() => navigator.serviceWorker.controller !== null), "the service worker controls the page");
  await context.setOffline(true);
  try {
    await page.reload();
    await page.getByText("You are offline.").waitFor();
    await page.locator("#room-list", { hasText: "CS 1110" }).waitFor();
    await check(page, "offline");
  } finally {
    await context.setOffline(false);
  }
  await page.locator("#conn[data-state=online]").waitFor({ timeout: 20_000 });
  await page.locator("#offline-note").waitFor({ state: "hidden" });
});

test("a message the server refuses stays, with its text, to retry or discard", async () => {
  const { page } = carol;
  await openRoom(page, "CS 1110");
  // Dropped from the class elsewhere (another device), Carol still has the room open.
  const classId = new URL(page.url()).hash.split("/")[2];
  await page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/me/classes/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${localStorage.getItem("commongrounds_token")}` } });
    if (r.status !== 204) throw new Error(`drop: ${r.status}`);
  }, classId);
  await page.getByLabel("Message to the class").fill("written after leaving");
  await page.getByLabel("Message to the class").press("Enter");
  const failed = page.locator("#messages .msg.failed", { hasText: "written after leaving" });
  await failed.getByText("Not sent:").waitFor();
  await failed.getByRole("button", { name: "Retry" }).click();
  await failed.getByText("Not sent:").waitFor();
  await failed.getByRole("button", { name: "Discard" }).click();
  await failed.waitFor({ state: "detached" });
  assert.equal((await bodies(bob.page)).filter((t) => t === "written after leaving").length, 0);
});

test("leaving a class and deleting the account", async () => {
  await openRoom(bob.page, "CS 1110");
  await bob.page.getByRole("button", { name: "Details" }).click();
  await bob.page.getByRole("button", { name: "Leave this class" }).click();
  await bob.page.getByRole("dialog", { name: /Leave CS 1110/ }).getByRole("button", { name: "Leave" }).click();
  await bob.page.getByText("You have not joined a class yet").waitFor();

  await alice.page.goto("/#/account");
  await alice.page.getByRole("button", { name: "Delete my account…" }).click();
  await alice.page.getByLabel("Also erase my messages").check();
  await alice.page.getByRole("button", { name: "Delete my account", exact: true }).click();
  await alice.page.getByText("Your account was deleted.").waitFor();
  await alice.page.getByRole("heading", { name: "Sign in" }).waitFor();
});

test("a development server says the sign-in link is in its output", async () => {
  const dev = await env.system({ SMTP_URL: "" });
  const s = await student(browser, dev, "ef5g@virginia.edu");
  await s.page.goto("/");
  await s.page.getByText("your link appears in the server's output").waitFor();
  await s.context.close();
  await dev.stop();
});
