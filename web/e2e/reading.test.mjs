// Unread counts from the server's read markers: the room list's badges and the tab's title count
// what others wrote after the marker; looking at a room moves the marker, and the student's other
// devices clear their badges when they hear of it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./browser.mjs";
import { Env } from "./env.mjs";
import { check, joinClass, send, signIn, student, until } from "./students.mjs";

const env = new Env();
let browser;
let sys;

before(async () => {
  [browser, sys] = await Promise.all([launch(), env.system()]);
});
after(async () => {
  await browser?.close();
  await env.close();
});


const badge = (page) => page.locator("#room-list a", { hasText: "CS 1110" }).locator(".badge");

test("unread counts come from the read marker, and reading on one device clears the others", async () => {
  const phone = await student(browser, sys, "ra1a@virginia.edu");
  const bob = await student(browser, sys, "rb2b@virginia.edu");
  await Promise.all([signIn(phone, sys), signIn(bob, sys)]);
  await joinClass(phone, "90001", "CS 1110 (001)");
  await joinClass(bob, "90001", "CS 1110 (001)");
  await phone.page.goto("/#/rooms"); // the list, no room open
  await phone.page.locator("#room-list a", { hasText: "CS 1110" }).waitFor();

  await send(bob.page, "Anyone have the lecture notes?");
  await send(bob.page, "From Tuesday");
  // Counted live on the phone, which is online and not looking at the room.
  await badge(phone.page).filter({ hasText: /^2$/ }).waitFor();
  await until(async () => (await phone.page.title()) === "(2) Common Grounds", "the phone's title counting 2");
  await check(phone.page, "room list with unread messages");

  // The same student signs in on a laptop after the messages: the server counts them.
  const laptop = await student(browser, sys, "ra1a@virginia.edu");
  await signIn(laptop, sys);
  await badge(laptop.page).filter({ hasText: /^2$/ }).waitFor();
  assert.equal(await badge(laptop.page).getAttribute("aria-label"), "2 unread messages");
  assert.equal(await laptop.page.title(), "(2) Common Grounds");

  // Reading on the phone clears the laptop's badge, live.
  await phone.page.locator("#room-list a", { hasText: "CS 1110" }).click();
  await phone.page.locator("#messages .body", { hasText: "From Tuesday" }).waitFor();
  await badge(laptop.page).waitFor({ state: "detached" });
  assert.equal(await laptop.page.title(), "Common Grounds");
  assert.equal(await phone.page.locator("#unread-total").isVisible(), false);
  assert.equal(await phone.page.title(), "Common Grounds");

  // While the phone shows the room, what arrives is read at once, on both.
  await send(bob.page, "Never mind, found them");
  await phone.page.locator("#messages .body", { hasText: "Never mind, found them" }).waitFor();
  await until(async () => (await badge(laptop.page).count()) === 0 && (await laptop.page.title()) === "Common Grounds",
    "the laptop hearing that the phone read the new message");

  // The server keeps the marker: the laptop reloaded counts nothing, and one more message counts 1.
  await laptop.page.reload();
  await laptop.page.locator("#conn[data-state=online]").waitFor();
  await laptop.page.locator("#room-list a", { hasText: "CS 1110" }).waitFor();
  await phone.page.goto("/#/rooms");
  await send(bob.page, "See you in class");
  await badge(laptop.page).filter({ hasText: /^1$/ }).waitFor();
  await badge(phone.page).filter({ hasText: /^1$/ }).waitFor();
  assert.equal(await badge(laptop.page).getAttribute("aria-label"), "1 unread message");

  for (const s of [phone, laptop, bob]) await s.context.close();
});
