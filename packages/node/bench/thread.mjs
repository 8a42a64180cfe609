// What the component's own thread costs a call: `get` and `touch` of one session through
// SessionVaultStore (a message to the thread and back) beside the same calls made straight
// into a component instance on the caller's thread, as the package made them before.
// Awaited one at a time (a request's latency) and all sent at once (the caller's CPU).
// `get` twice: from the read cache on the caller's thread (a session read again), and
// with `cacheBytes: 0` (no cache on either thread), where every get crosses.
//
//   node bench/thread.mjs [CALLS]     (default 20000; part of npm run bench)

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { instantiate } from "../src/component.js";
import { SessionVaultStore } from "../src/index.js";

const CALLS = Number(process.argv[2] ?? 20000);
const SECRET = "benchmark-secret-of-at-least-32-characters";
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-thread-bench-"));
const expiresAt = Date.now() + 3_600_000;
const doc = { sessionId: "benchmark-session", expiresAt, session: { cookie: { path: "/" }, user: "x".repeat(600) } };
const perCall = (start) => ((performance.now() - start) * 1000) / CALLS;

async function gets(store) {
  let start = performance.now();
  for (let i = 0; i < CALLS; i++) await store.get(doc.sessionId);
  const awaited = perCall(start);
  start = performance.now();
  await Promise.all(Array.from({ length: CALLS }, () => store.get(doc.sessionId)));
  return { awaited, overlapped: perCall(start) };
}

const store = new SessionVaultStore({ storageDir: path.join(scratch, "thread"), encryptionKey: SECRET, durability: "relaxed" });
await store.set(doc);
const threaded = {};
threaded.cached = await gets(store);
let start = performance.now();
for (let i = 0; i < CALLS; i++) await store.touch(doc.sessionId, expiresAt);
threaded.touch = perCall(start);
await store.close();
const uncachedStore = new SessionVaultStore({
  storageDir: path.join(scratch, "uncached"),
  encryptionKey: SECRET,
  durability: "relaxed",
  cacheBytes: 0,
});
await uncachedStore.set(doc);
threaded.uncached = await gets(uncachedStore);
await uncachedStore.close();

mkdirSync(path.join(scratch, "main"));
const { sessions, close } = await instantiate({ "/store": path.join(scratch, "main") }, Date.now);
const direct = sessions.Store.open({ secret: { tag: "passphrase", val: SECRET }, directory: "/store", durability: "relaxed" });
direct.set(JSON.stringify(doc));
const main = {};
start = performance.now();
for (let i = 0; i < CALLS; i++) {
  JSON.parse(direct.get(doc.sessionId));
  await null;
}
main.get = perCall(start);
mkdirSync(path.join(scratch, "main-uncached"));
const bare = await instantiate({ "/store": path.join(scratch, "main-uncached") }, Date.now);
const uncached = bare.sessions.Store.open({
  secret: { tag: "passphrase", val: SECRET },
  directory: "/store",
  durability: "relaxed",
  cacheBytes: 0n,
});
uncached.set(JSON.stringify(doc));
start = performance.now();
for (let i = 0; i < CALLS; i++) {
  JSON.parse(uncached.get(doc.sessionId));
  await null;
}
main.getUncached = perCall(start);
bare.close();
start = performance.now();
for (let i = 0; i < CALLS; i++) {
  JSON.parse(direct.touch(doc.sessionId, BigInt(expiresAt)));
  await null;
}
main.touch = perCall(start);
close();
rmSync(scratch, { recursive: true, force: true });

const f = (us) => us.toFixed(1);
console.log(`\n# a call through the component's thread, ${CALLS} calls of a ${JSON.stringify(doc).length}-byte session, relaxed`);
console.log("| call | on the caller's thread µs | through the thread, awaited µs | through the thread, overlapped µs |");
console.log("|---|---:|---:|---:|");
console.log(`| get, read again (read cache) | ${f(main.get)} | ${f(threaded.cached.awaited)} | ${f(threaded.cached.overlapped)} |`);
console.log(`| get, \`cacheBytes: 0\` | ${f(main.getUncached)} | ${f(threaded.uncached.awaited)} | ${f(threaded.uncached.overlapped)} |`);
console.log(`| touch | ${f(main.touch)} | ${f(threaded.touch)} | |`);
