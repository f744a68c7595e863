// Edits and deletions in the app: the author edits and deletes their own messages; the others
// see both live, and a student who was away sees the final state when the app opens again. A
// server whose edit window has passed says so in the edit dialog.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launch } from "./browser.mjs";
import { Env } from "./env.mjs";
import { bodies, check, joinClass, send, signIn, student, until } from "./students.mjs";

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


const item = (page, text, list = "#messages") => page.locator(`${list} .msg`, { has: page.locator(".body", { hasText: text }) });

test("the author edits and deletes; others see both live, an absent student on return", async () => {
  const alice = await student(browser, sys, "ea1a@virginia.edu");
  const bob = await student(browser, sys, "eb2b@virginia.edu");
  const carol = await student(browser, sys, "ec3c@virginia.edu");
  await Promise.all([signIn(alice, sys), signIn(bob, sys), signIn(carol, sys)]);
  for (const s of [alice, bob, carol]) await joinClass(s, "90001", "CS 1110 (001)");

  await send(alice.page, "Problem set 3 is due Fridya");
  await send(alice.page, "Who wants to study on Sunday?");
  // Bob replies in the thread of the second message, so that its deletion keeps a thread.
  await item(bob.page, "Who wants to study on Sunday?").getByRole("button", { name: "Reply in a thread" }).click();
  await bob.page.getByLabel("Reply in the thread").fill("Me, at the library");
  await bob.page.getByLabel("Reply in the thread").press("Enter");
  await bob.page.locator("#thread-messages .msg:not(.pending) .body", { hasText: "Me, at the library" }).waitFor();
  await bob.page.locator("#thread-close").click();
  await item(carol.page, "Who wants to study on Sunday?").getByRole("button", { name: "1 reply: open the thread" }).waitFor();

  // Only the author has Edit and Delete.
  assert.equal(await item(bob.page, "Problem set 3").getByRole("button", { name: "Edit your message" }).count(), 0);
  assert.equal(await item(bob.page, "Problem set 3").getByRole("button", { name: "Delete your message" }).count(), 0);

  // Carol goes away: her page closes, her browser keeps where she was.
  await carol.page.close();

  const { page } = alice;
  await item(page, "Problem set 3").getByRole("button", { name: "Edit your message" }).click();
  await page.locator("#edit-dialog[open]").waitFor();
  assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "Problem set 3 is due Fridya");
  await check(page, "edit dialog");
  await page.getByLabel("Message", { exact: true }).fill("Problem set 3 is due Friday");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#edit-dialog").waitFor({ state: "hidden" });
  await item(page, "Problem set 3 is due Friday").locator(".edited", { hasText: "edited" }).waitFor();

  // Bob sees the edit live, with its label.
  await item(bob.page, "Problem set 3 is due Friday").locator(".edited", { hasText: "edited" }).waitFor();
  assert.deepEqual(await bodies(bob.page), ["Problem set 3 is due Friday", "Who wants to study on Sunday?"]);

  // Delete asks first; Cancel keeps the message.
  const del = () => item(page, "Who wants to study on Sunday?").getByRole("button", { name: "Delete your message" }).click();
  await del();
  await page.locator("#confirm-dialog[open]").waitFor();
  await page.getByRole("heading", { name: "Delete your message?" }).waitFor();
  await check(page, "delete confirmation");
  await page.locator("#confirm-dialog").getByRole("button", { name: "Cancel" }).click();
  await page.locator("#confirm-dialog").waitFor({ state: "hidden" });
  assert.equal(await item(page, "Who wants to study on Sunday?").count(), 1);
  await del();
  await page.locator("#confirm-dialog").getByRole("button", { name: "Delete" }).click();
  await item(page, "Message deleted").waitFor();
  assert.deepEqual(await bodies(page), ["Problem set 3 is due Friday", "Message deleted"], "it keeps its place");
  await check(page, "room with an edited and a deleted message");

  // Bob sees the deletion live, in its place, under its pseudonym, with its thread.
  await until(async () => (await bodies(bob.page)).join("|") === "Problem set 3 is due Friday|Message deleted", "Bob seeing the deletion");
  const tomb = item(bob.page, "Message deleted");
  assert.equal(await tomb.locator(".edited").count(), 0);
  assert.equal(await tomb.getByRole("button", { name: "Flag" }).count(), 0, "nothing to flag in a tombstone");
  await tomb.getByRole("button", { name: "1 reply: open the thread" }).click();
  await bob.page.locator("#thread-messages .msg.root .body", { hasText: "Message deleted" }).waitFor();
  await bob.page.locator("#thread-messages .body", { hasText: "Me, at the library" }).waitFor();
  await check(bob.page, "thread of a deleted message");
  await bob.page.locator("#thread-close").click();

  // Carol comes back: the library resumes after the last event she saw and replays the changes.
  carol.page = await carol.context.newPage();
  carol.page.errors = [];
  carol.page.on("pageerror", (err) => carol.page.errors.push(err));
  await carol.page.goto("/#/rooms");
  await carol.page.locator("#room-list a", { hasText: "CS 1110" }).first().click();
  await carol.page.locator("#room-meta", { hasText: "online" }).waitFor();
  await until(async () => (await bodies(carol.page)).join("|") === "Problem set 3 is due Friday|Message deleted", "Carol seeing the final state");
  await item(carol.page, "Problem set 3 is due Friday").locator(".edited").waitFor();
  await item(carol.page, "Message deleted").getByRole("button", { name: "1 reply: open the thread" }).waitFor();
  await check(carol.page, "room after reconnecting");

  for (const s of [alice, bob, carol]) await s.context.close();
});

test("an edit after the edit window says so and changes nothing", async () => {
  const strict = await env.system({ EDIT_WINDOW: "1ns" });
  const dan = await student(browser, strict, "ed4d@virginia.edu");
  await signIn(dan, strict);
  await joinClass(dan, "90001", "CS 1110 (001)");
  const { page } = dan;
  await send(page, "Lab moved to room 204");
  await item(page, "Lab moved to room 204").getByRole("button", { name: "Edit your message" }).click();
  await page.getByLabel("Message", { exact: true }).fill("Lab moved to room 205");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#edit-status", { hasText: "The time for editing this message has passed" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Save" }).isDisabled(), true);
  await check(page, "edit window passed");
  await page.locator("#edit-dialog").getByRole("button", { name: "Cancel" }).click();
  assert.deepEqual(await bodies(page), ["Lab moved to room 204"]);
  assert.equal(await item(page, "Lab moved to room 204").locator(".edited").count(), 0);
  await dan.context.close();
});
