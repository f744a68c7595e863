// The library's HTTP side against api/openapi.yaml, the API's one description: a call for every
// route under /api/v1/, and data types with the document's fields and nullability.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { parse } from "yaml";

import { repoRoot } from "./harness.js";

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  allOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  $ref?: string;
}
interface Doc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>;
  components: { schemas: Record<string, Schema> };
}

const doc = parse(readFileSync(join(repoRoot, "api/openapi.yaml"), "utf8")) as Doc;
const src = (f: string) => readFileSync(join(repoRoot, "clients/js/src", f), "utf8");

test("the Api has a call for every route of openapi.yaml under /api/v1/", () => {
  const calls = new Set<string>();
  const http = src("http.ts");
  for (const m of http.matchAll(/request(?:<[^(]*>)?\("([A-Z]+)", [`"](\/[^`"?]*)/g)) {
    calls.add(m[1] + " " + m[2]!.replace(/\$\{enc\([^)]*\)\}/g, "{}").replace(/\$\{.*$/, ""));
  }
  for (const m of http.matchAll(/pages<\w+>\("(\/[^"]+)"/g)) calls.add("GET " + m[1]);
  const missing: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith("/api/v1/") || path === "/api/v1/openapi.yaml") continue;
    for (const method of Object.keys(item)) {
      const key = method.toUpperCase() + " " + path.replace(/\{[^}]+\}/g, "{}");
      if (!calls.has(key)) missing.push(key);
    }
  }
  assert.deepEqual(missing, []);
});

// resolve follows a $ref of the document.
function resolve(s: Schema): Schema {
  return s.$ref ? resolve(doc.components.schemas[s.$ref.replace("#/components/schemas/", "")]!) : s;
}

// A field's shape: whether it may be null, and whether it may be left out.
interface Shape {
  nullable: boolean;
  optional: boolean;
}

// fields flattens a schema (allOf included) to its properties and their shapes.
function fields(s: Schema): Map<string, Shape> {
  const out = new Map<string, Shape>();
  s = resolve(s);
  for (const part of s.allOf ?? []) for (const [k, v] of fields(part)) out.set(k, v);
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    const r = resolve(p);
    const nullable = (Array.isArray(r.type) && r.type.includes("null")) || (r.oneOf ?? []).some((o) => o.type === "null");
    out.set(k, { nullable, optional: !(s.required ?? []).includes(k) });
  }
  return out;
}

// tsFields reads an interface of types.ts (its extends included) the same way.
function tsFields(file: ts.SourceFile, name: string): Map<string, Shape> {
  const out = new Map<string, Shape>();
  const decl = file.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  assert.ok(decl, `interface ${name}`);
  for (const h of decl.heritageClauses ?? []) for (const t of h.types) for (const [k, v] of tsFields(file, t.expression.getText(file))) out.set(k, v);
  for (const m of decl.members) {
    if (!ts.isPropertySignature(m) || !m.type) continue;
    out.set(m.name.getText(file), { nullable: /\bnull\b/.test(m.type.getText(file)), optional: m.questionToken !== undefined });
  }
  return out;
}

test("the library's data types have the fields of openapi.yaml's schemas", () => {
  const file = ts.createSourceFile("types.ts", src("types.ts"), ts.ScriptTarget.ES2020, true);
  const reply = (path: string, method: string, status: string) =>
    doc.paths[path]![method]!.responses[status]!.content!["application/json"]!.schema;
  const pairs: [string, Schema][] = [
    ["User", { $ref: "#/components/schemas/User" }],
    ["PublicUser", { $ref: "#/components/schemas/PublicUser" }],
    ["Session", { $ref: "#/components/schemas/Session" }],
    ["Class", { $ref: "#/components/schemas/Class" }],
    ["ClassDetail", { $ref: "#/components/schemas/ClassDetail" }],
    ["Message", { $ref: "#/components/schemas/Message" }],
    ["FlaggedMessage", { $ref: "#/components/schemas/FlaggedMessage" }],
    ["FriendRequest", { $ref: "#/components/schemas/FriendRequest" }],
    ["Friend", { $ref: "#/components/schemas/Friend" }],
    ["Suggestion", { $ref: "#/components/schemas/Suggestion" }],
    ["ContactMatch", { $ref: "#/components/schemas/ContactMatch" }],
    ["Ticket", reply("/api/v1/auth/ws-ticket", "post", "200")],
    ["Thread", reply("/api/v1/classes/{id}/messages/{message_id}/thread", "get", "200")],
    ["ServerConfig", { $ref: "#/components/schemas/ClientConfig" }],
    ["FriendRequested", reply("/api/v1/friends/requests", "post", "202")],
    ["RoomUnread", { $ref: "#/components/schemas/RoomUnread" }],
    ["ReadMarker", { $ref: "#/components/schemas/ReadMarker" }],
    ["Notification", { $ref: "#/components/schemas/Notification" }],
    ["NotificationPage", reply("/api/v1/me/notifications", "get", "200")],
    ["Mute", { $ref: "#/components/schemas/Mute" }],
    ["PushSubscriptionInfo", { $ref: "#/components/schemas/PushSubscription" }],
  ];
  for (const [name, schema] of pairs) {
    assert.deepEqual(Object.fromEntries(tsFields(file, name)), Object.fromEntries(fields(schema)), name);
  }
});
