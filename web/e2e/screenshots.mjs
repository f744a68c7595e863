// Regenerates docs/screenshots/: every screen of the app at a phone's 390×844 and a desktop's
// 1280×800, with three students talking in a class of the sample catalogue. Run it with
// `npm run screenshots` in web/e2e (it builds the server unless CG_SERVER_BIN names one), and
// commit the pictures.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { launch } from "./browser.mjs";
import { Env, repoRoot } from "./env.mjs";
import { DESKTOP, PHONE, openRoom, send, signIn, student } from "./students.mjs";

const out = join(repoRoot, "docs", "screenshots");
mkdirSync(out, { recursive: true });

const env = new Env();
const browser = await launch();
try {
  const dev = await env.system({ SMTP_URL: "" });
  const sys = await env.system();
  const shoot = async (s, name) => {
    await s.page.evaluate(() => document.fonts.ready);
    const size = s.page.viewportSize().width < 600 ? "phone" : "desktop";
    await s.page.screenshot({ path: join(out, `${name}-${size}.png`) });
  };

  for (const viewport of [PHONE, DESKTOP]) {
    const s = await student(browser, dev, "first1a@virginia.edu", { viewport });
    await s.page.goto("/");
    await s.page.getByText("your link appears in the server's output").waitFor();
    await shoot(s, "sign-in");
    if (viewport === DESKTOP) await s.page.screenshot({ path: join(out, "first-screen.png") });
    await s.context.close();
  }

  const ana = await student(browser, sys, "an1a@virginia.edu");
  const ben = await student(browser, sys, "bn2b@virginia.edu", { viewport: DESKTOP });
  const cy = await student(browser, sys, "cy3c@virginia.edu");
  await Promise.all([signIn(ana, sys), signIn(ben, sys), signIn(cy, sys)]);
  await sys.command("grant-moderator", ben.email);
  for (const s of [ana, ben]) {
    await s.page.goto("/#/rooms");
    await s.page.locator("#app").waitFor();
    await shoot(s, "rooms-empty");
  }
  for (const s of [ana, ben, cy]) {
    await s.page.goto("/#/classes");
    await s.page.getByLabel("Course, title, instructor or class number").fill("CS 2100");
    await s.page.getByRole("button", { name: "Search", exact: true }).click();
    await s.page.locator("#results li").first().waitFor();
    if (s !== cy) await shoot(s, "classes");
    await s.page.locator("#results li").first().getByRole("button", { name: /^Join/ }).click();
    await s.page.locator("#room-meta", { hasText: "online" }).waitFor();
  }
  await send(ana.page, "Has anyone started problem set 3? The recursion question confuses me.");
  await send(cy.page, "Yes! Lecture 7 explains it: https://example.edu/cs2100/lecture-7");
  await send(cy.page, "Look at the slide on base cases.");
  await send(ben.page, "Office hours are on Thursday at 4, in the usual room.");
  await send(ana.page, "Thanks, both of you.");
  await cy.page.locator("#messages li", { hasText: "Office hours" }).getByRole("button", { name: "Reply in a thread" }).click();
  await cy.page.getByLabel("Reply in the thread").fill("Is that in Rice Hall?");
  await cy.page.getByLabel("Reply in the thread").press("Enter");
  await cy.page.locator("#thread-messages .msg:not(.pending)", { hasText: "Rice Hall" }).waitFor();
  await cy.page.keyboard.press("Escape");
  await send(cy.page, "Spam spam spam, buy my notes");

  for (const s of [ana, ben]) {
    await openRoom(s.page, "CS 2100");
    await s.page.locator("#messages .body", { hasText: "Spam spam" }).waitFor();
    await s.page.locator("#messages li", { hasText: "Office hours" }).getByRole("button", { name: /1 reply/ }).waitFor();
    await shoot(s, "room");
    await s.page.locator("#messages li", { hasText: "Office hours" }).getByRole("button", { name: /1 reply/ }).click();
    await s.page.locator("#thread-messages .body", { hasText: "Rice Hall" }).waitFor();
    await shoot(s, "thread");
    await s.page.keyboard.press("Escape");
    await s.page.locator("#messages li", { hasText: "Spam spam" }).getByRole("button", { name: "Flag" }).click();
    await s.page.getByLabel("Spam or advertising").check();
    await shoot(s, "flag");
    await s.page.getByRole("dialog", { name: "Flag this message" }).getByRole("button", { name: "Flag", exact: true }).click();
  }

  for (const [s, own] of [[ana, "Thanks, both of you."], [ben, "Office hours are on Thursday"]]) {
    await s.page.locator("#messages li", { hasText: own }).getByRole("button", { name: "Edit your message" }).click();
    await s.page.locator("#edit-dialog[open]").waitFor();
    await shoot(s, "edit");
    await s.page.locator("#edit-dialog").getByRole("button", { name: "Cancel" }).click();
  }

  // Replies in Ana's and Ben's threads reach their inboxes.
  await openRoom(cy.page, "CS 2100");
  await cy.page.locator("#messages li", { hasText: "Has anyone started" }).getByRole("button", { name: "Reply in a thread" }).click();
  await cy.page.getByLabel("Reply in the thread").fill("Start from the base case, then trust the recursion.");
  await cy.page.getByLabel("Reply in the thread").press("Enter");
  await cy.page.locator("#thread-messages .msg:not(.pending)", { hasText: "base case, then" }).waitFor();
  await cy.page.keyboard.press("Escape");
  for (const s of [ana, ben]) {
    await s.page.goto("/#/inbox");
    await s.page.locator("#inbox .inbox-item").first().waitFor();
    await shoot(s, "inbox");
  }

  await ana.page.goto("/#/friends");
  await ana.page.getByLabel("Add a friend by computing ID").fill("bn2b");
  await ana.page.getByRole("button", { name: "Send request" }).click();
  await ana.page.locator("#outgoing", { hasText: "bn2b" }).waitFor();
  await cy.page.goto("/#/friends");
  await cy.page.getByLabel("Add a friend by computing ID").fill("an1a");
  await cy.page.getByRole("button", { name: "Send request" }).click();
  await ana.page.reload();
  await ana.page.locator("#incoming", { hasText: "cy3c" }).waitFor();
  await shoot(ana, "friends");
  await ben.page.goto("/#/friends");
  await ben.page.locator("#incoming", { hasText: "an1a" }).getByRole("button", { name: "Accept" }).click();
  await ben.page.locator("#friends", { hasText: "Classes in common" }).waitFor();
  await shoot(ben, "friends");

  for (const s of [ana, ben]) {
    await s.page.goto("/#/account");
    await s.page.locator("#account-email").waitFor();
    await shoot(s, "account");
    await s.page.getByRole("button", { name: "Delete my account…" }).click();
    await shoot(s, "delete-account");
    await s.page.getByRole("button", { name: "Cancel" }).click();
  }

  await ben.page.reload();
  await ben.page.goto("/#/mod");
  await ben.page.locator("#flagged li").first().waitFor();
  await shoot(ben, "moderation");
  const benPhone = await student(browser, sys, ben.email);
  await signIn(benPhone, sys);
  await benPhone.page.goto("/#/mod");
  await benPhone.page.locator("#flagged li").first().waitFor();
  await shoot(benPhone, "moderation");

  // Offline: the service worker's copy of the app opens without the server.
  await ana.page.goto("/#/rooms");
  await ana.page.evaluate(() => navigator.serviceWorker.ready);
  await ana.context.setOffline(true);
  await ana.page.reload();
  await ana.page.locator("#offline-note").waitFor();
  await shoot(ana, "offline");
  console.log(`screenshots written to ${out}`);
} finally {
  await browser.close();
  await env.close();
}
