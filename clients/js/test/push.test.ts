// Web Push subscriptions through the library against the built server: the key to subscribe
// with, a browser's subscription stored, listed without its keys and deleted, the server's
// refusals as CGErrors, and push_disabled from a server without Web Push.
import assert from "node:assert/strict";
import { createECDH, randomBytes } from "node:crypto";
import { test } from "node:test";

import { CGError, type BrowserPushSubscription } from "../src/index.js";
import { client, system } from "./harness.js";

// browserSub is a subscription as a browser's PushSubscription.toJSON() gives it.
function browserSub(endpoint: string): BrowserPushSubscription {
  const ecdh = createECDH("prime256v1");
  return {
    endpoint,
    expirationTime: null,
    keys: { p256dh: ecdh.generateKeys().toString("base64url"), auth: randomBytes(16).toString("base64url") },
  };
}

const isCode = (code: string, status: number) => (e: unknown) => e instanceof CGError && e.code === code && e.status === status;

test("a browser's subscription is stored, listed without keys, refused when bad, and deleted", async () => {
  const sys = await system();
  const srv = await sys.start();
  const seed = await sys.seed(1, 1);
  const { api } = client(srv.base, seed.users[0]!.token);

  const key = await api.pushKey();
  assert.match(key, /^B[A-Za-z0-9_-]{86}$/); // base64url of an uncompressed P-256 point

  const endpoint = "https://fcm.googleapis.com/fcm/send/js-test:APA91b";
  const saved = await api.savePushSubscription(browserSub(endpoint));
  assert.equal(saved.endpoint, endpoint);
  assert.equal(saved.expiration_time, null);
  await api.savePushSubscription(browserSub(endpoint)); // again: replaced, not added
  const list = await api.pushSubscriptions();
  assert.deepEqual(list.map((s) => Object.keys(s).sort()), [["created_at", "endpoint", "expiration_time"]]);

  await assert.rejects(api.savePushSubscription(browserSub("http://fcm.googleapis.com/x")), isCode("invalid_endpoint", 400));
  await assert.rejects(api.savePushSubscription(browserSub("https://127.0.0.1/x")), isCode("endpoint_not_allowed", 400));
  await assert.rejects(
    api.savePushSubscription({ endpoint, keys: { p256dh: "AAAA", auth: randomBytes(16).toString("base64url") } }),
    isCode("invalid_push_key", 400),
  );

  await api.deletePushSubscription(endpoint);
  assert.deepEqual(await api.pushSubscriptions(), []);
  await assert.rejects(api.deletePushSubscription(endpoint), isCode("not_found", 404));
});

test("a server without Web Push says push_disabled", async () => {
  const sys = await system({ PUSH_ENABLED: "false" });
  const srv = await sys.start();
  const seed = await sys.seed(1, 1);
  const { api } = client(srv.base, seed.users[0]!.token);
  await assert.rejects(api.pushKey(), isCode("push_disabled", 404));
  await assert.rejects(api.savePushSubscription(browserSub("https://fcm.googleapis.com/fcm/send/x")), isCode("push_disabled", 404));
});
