// What the component's own thread costs a call: `get` and `touch` of one session through
// SessionVaultStore (a message to the thread and back) beside the same calls made straight
// into a component instance on the caller's thread, as the package made them before.
// Awaited one at a time (a request's latency) and all sent at once (the caller's CPU).
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

const store = new SessionVaultStore({ storageDir: path.join(scratch, "thread"), encryptionKey: SECRET, durability: "relaxed" });
await store.set(doc);
const threaded = {};
let start = performance.now();
for (let i = 0; i < CALLS; i++) await store.get(doc.sessionId);
threaded.get = perCall(start);
start = performance.now();
await Promise.all(Array.from({ length: CALLS }, () => store.get(doc.sessionId)));
threaded.getOverlapped = perCall(start);
start = performance.now();
for (let i = 0; i < CALLS; i++) await store.touch(doc.sessionId, expiresAt);
threaded.touch = perCall(start);
await store.close();

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
console.log(`| get | ${f(main.get)} | ${f(threaded.get)} | ${f(threaded.getOverlapped)} |`);
console.log(`| touch | ${f(main.touch)} | ${f(threaded.touch)} | |`);
