// The three-way merge a save of the express store makes (src/merge.js): what a request
// changed, over what others saved meanwhile.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";

// Not in the package's exports: loaded from the installed package's files.
const root = path.dirname(createRequire(import.meta.url).resolve("session-vault/package.json"));
const { mergeChanges, same } = await import(pathToFileURL(path.join(root, "src/merge.js")).href);

test("members this request changed win; members it left alone keep the stored value", () => {
  const base = { cookie: { path: "/" }, user: "a", cart: [1], theme: "dark" };
  const mine = { cookie: { path: "/" }, user: "a", cart: [1, 2], theme: "dark" };
  const theirs = { cookie: { path: "/" }, user: "a", cart: [1], theme: "light", locale: "fr" };
  assert.deepEqual(mergeChanges(base, mine, theirs), {
    cookie: { path: "/" },
    user: "a",
    cart: [1, 2],
    theme: "light",
    locale: "fr",
  });
});

test("removals stand on either side; nested objects merge member by member", () => {
  const base = { a: 1, b: 2, nested: { x: 1, y: 1 } };
  const mine = { a: 1, nested: { x: 2, y: 1 } }; // removed b, changed nested.x
  const theirs = { b: 2, nested: { x: 1, y: 3 } }; // removed a, changed nested.y
  assert.deepEqual(mergeChanges(base, mine, theirs), { nested: { x: 2, y: 3 } });
  // Both changed the same member: this save's value.
  assert.deepEqual(mergeChanges({ t: 1 }, { t: 2 }, { t: 3 }), { t: 2 });
  // An object replaced by a value on one side is a plain change.
  assert.deepEqual(mergeChanges({ o: { a: 1 } }, { o: "gone" }, { o: { a: 2 } }), { o: "gone" });
});

test("member names that JavaScript treats specially are data, never a prototype", () => {
  const base = JSON.parse('{"x":1}');
  const mine = JSON.parse('{"x":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"p":1}}}');
  const merged = mergeChanges(base, mine, JSON.parse('{"x":2}'));
  assert.equal(Object.getPrototypeOf(merged), Object.prototype);
  assert.equal({}.polluted, undefined);
  assert.deepEqual(Object.keys(merged).sort(), ["__proto__", "constructor", "x"]);
  assert.equal(JSON.stringify(merged), '{"x":2,"__proto__":{"polluted":true},"constructor":{"prototype":{"p":1}}}');
});

test("same compares JSON values member for member", () => {
  assert.ok(same({ a: [1, { b: null }] }, { a: [1, { b: null }] }));
  assert.ok(!same({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!same([1, 2], [2, 1]));
  assert.ok(!same({ a: 1 }, [1]));
});
