// The library's frame checks against docs/protocol.schema.json, the protocol's one description.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { messageFields, notificationFields, serverFrameFields } from "../src/frames.js";
import { repoRoot } from "./harness.js";

interface Def {
  properties: Record<string, unknown>;
  required: string[];
  $ref?: string;
}

const schema = JSON.parse(readFileSync(join(repoRoot, "docs/protocol.schema.json"), "utf8")) as {
  $defs: Record<string, Def & { oneOf?: { $ref: string }[] }>;
};

test("the library reads every server frame of the schema, with the schema's fields", () => {
  const defs = schema.$defs;
  const names = defs["ServerFrame"]!.oneOf!.map((r) => r.$ref.replace("#/$defs/", ""));
  assert.deepEqual([...names].sort(), Object.keys(serverFrameFields).sort());
  for (const name of names) {
    const def = defs[name]!;
    const checks = serverFrameFields[name as keyof typeof serverFrameFields];
    assert.deepEqual(Object.keys(def.properties).sort(), Object.keys(checks).sort(), `fields of ${name}`);
    // A required field is one the library's check refuses when it is missing.
    for (const f of Object.keys(checks)) {
      assert.equal(checks[f]!(undefined), !def.required.includes(f), `${name}.${f} required`);
    }
  }
  const m = defs["Message"]!;
  assert.deepEqual(Object.keys(m.properties).sort(), Object.keys(messageFields).sort());
  for (const f of Object.keys(messageFields)) assert.equal(messageFields[f]!(undefined), false, `Message.${f} required`);
  assert.deepEqual([...m.required].sort(), Object.keys(messageFields).sort());
});

test("the library reads a notification with the schema's fields", () => {
  const n = schema.$defs["Notification"]!;
  assert.deepEqual(Object.keys(n.properties).sort(), Object.keys(notificationFields).sort());
  assert.deepEqual([...n.required].sort(), Object.keys(notificationFields).sort());
  for (const f of Object.keys(notificationFields)) assert.equal(notificationFields[f]!(undefined), false, `Notification.${f} required`);
});
