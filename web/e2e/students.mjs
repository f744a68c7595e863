// Students in Chromium: each a browser context of its own (its own storage, as separate devices
// are), signed in through the link the server mails, with the checks every screen must pass.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** student opens a new context and page for one student at a viewport. */
export async function student(browser, sys, email, { viewport = PHONE, colorScheme = "light" } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, baseURL: sys.base });
  const page = await context.newPage();
  page.on("pageerror", (err) => { page.errors.push(err); });
  page.errors = [];
  return { email, context, page, computingId: email.split("@")[0] };
}

/** signIn asks for a sign-in link, reads it from the SMTP sink's mail, and opens it. */
export async function signIn(s, sys) {
  const { page } = s;
  await page.goto("/");
  await page.getByLabel("University e-mail").fill(s.email);
  await page.getByRole("button", { name: "Send me a sign-in link" }).click();
  await page.getByText(`We sent a sign-in link to ${s.email}`).waitFor();
  const link = await sys.smtp.link(s.email);
  await page.goto(link);
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator("#conn[data-state=online]").waitFor();
  assert.equal(new URL(page.url()).hash, "#/rooms", "the token left the address bar");
  const text = await page.locator("body").innerText();
  assert.doesNotMatch(text, /eyJ[\w-]+\./, "a token is shown");
}

/** check asserts that nothing scrolls sideways and that axe-core finds no serious or critical violation. */
export async function check(page, screen) {
  const overflow = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
    // What sticks out, to say where to look.
    wide: [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible"))
      .slice(-3).map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className} (${e.textContent.slice(0, 40)})`)
      .concat((() => {
        const out = [];
        const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = w.nextNode(); n; n = w.nextNode()) {
          const r = document.createRange();
          r.selectNodeContents(n);
          if (r.getBoundingClientRect().right > window.innerWidth + 0.5) out.push(`text "${n.textContent.slice(0, 40)}" in ${n.parentElement.tagName}`);
        }
        return out.slice(0, 3);
      })()),
  }));
  assert.ok(overflow.scroll <= overflow.inner,
    `${screen}: the page is ${overflow.scroll}px wide in a ${overflow.inner}px window: ${overflow.wide.join("; ")}`);
  const result = await page.evaluate(`${axeSource}
    ;axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => v.id + " (" + v.impact + "): " + v.help + " — " + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")))`);
  assert.deepEqual(result, [], `${screen}: axe-core violations`);
  assert.deepEqual(page.errors.map(String), [], `${screen}: errors in the page`);
}

/** until polls an async condition until it holds (every 50 ms, for at most timeoutMs). */
export async function until(cond, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await cond();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** bodies lists the texts of a room's messages in the order shown. */
export function bodies(page, list = "#messages") {
  return page.locator(`${list} .msg .body`).allInnerTexts();
}

/** openRoom opens a class's room from the room list. */
export async function openRoom(page, course) {
  if (!(await page.locator("#room").isVisible()) || !(await page.locator("#room-title").innerText()).startsWith(course)) {
    await page.goto("/#/rooms");
    await page.locator("#room-list a", { hasText: course }).first().click();
  }
  await page.locator("#room-title", { hasText: course }).waitFor();
  await page.locator("#room-meta", { hasText: "online" }).waitFor();
}

/** send writes a message in the open room's composer and waits until the server acknowledged it. */
export async function send(page, text) {
  await page.getByLabel("Message to the class").fill(text);
  await page.getByLabel("Message to the class").press("Enter");
  await page.locator("#messages .msg:not(.pending) .body", { hasText: text }).first().waitFor();
}

/** joinClass enrolls a signed-in student in a class found by its class number, and waits until its room is live. */
export async function joinClass(s, number, name) {
  const { page } = s;
  await page.goto("/#/classes");
  await page.getByLabel("Course, title, instructor or class number").fill(number);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.getByRole("button", { name: `Join ${name}` }).click();
  await page.locator("#room-title", { hasText: name }).waitFor();
  await page.locator("#room-meta", { hasText: "online" }).waitFor();
}
