// The installed package (`import "session-vault"`, from the tarball `npm pack` made),
// driven the way the original's users drive FileSessionStore. scripts/test.mjs installs
// the package into a scratch project and runs this file there:
//
//   npm test                      (in packages/node; needs the Rust CLI built, see below)
//
// SESSION_VAULT_CLI is the Rust CLI (default: ../../target/debug/session-vault from the
// package's source); SESSION_VAULT_FIXTURES the repository's tests/fixtures.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import {
  AlreadyExistsError,
  InvalidIdError,
  InvalidInputError,
  LOCK_FILE,
  LockedError,
  NotFoundError,
  RemovedError,
  SessionVaultError,
  SessionVaultStore,
  TooLargeError,
  WrongKeyError,
} from "session-vault";

const cli = process.env.SESSION_VAULT_CLI;
const fixtures = process.env.SESSION_VAULT_FIXTURES;
assert.ok(cli && existsSync(cli), `SESSION_VAULT_CLI (${cli}) is the built Rust CLI`);
assert.ok(fixtures && existsSync(fixtures), `SESSION_VAULT_FIXTURES (${fixtures})`);

const SECRET = "node-package-test-secret-0123456789-abcdef";
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-npm-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(scratch, `store-${++dirs}`);

/** A clock the tests move by hand: expiry without sleeping. */
function manualClock(start = Date.UTC(2026, 11, 7)) {
  let now = start;
  const clock = () => now;
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

function session(id, userId, now, { ttl = 3_600_000, ...rest } = {}) {
  return {
    sessionId: id,
    sessionToken: randomBytes(16).toString("hex"),
    userContext: { userId, email: `${userId}@example.com`, name: "Zoë Ångström", roles: ["user"] },
    tokenMetadata: { accessToken: "at", refreshToken: "rt", expiresAt: now + ttl, scopes: ["openid"] },
    security: {
      ipAddress: "203.0.113.7",
      userAgent: "test",
      createdAt: now,
      lastAccessedAt: now,
      accessCount: 0,
    },
    expiresAt: now + ttl,
    createdAt: now,
    ...rest,
  };
}

function open(storageDir, options = {}) {
  return new SessionVaultStore({ storageDir, encryptionKey: SECRET, ...options });
}

function runCli(dir, args, { stdin, secret = SECRET } = {}) {
  const result = spawnSync(cli, ["--dir", dir, ...args], {
    input: stdin,
    encoding: "utf8",
    env: { ...process.env, SESSION_VAULT_SECRET: secret },
  });
  if (result.error) throw result.error;
  const code = /error\[([a-z-]+)\]/.exec(result.stderr)?.[1];
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, code };
}

// A session layer shaped like the original's SessionManager: what its users' servers do.
class SessionManager {
  constructor(store, clock, maxPerUser = 3) {
    this.store = store;
    this.clock = clock;
    this.maxPerUser = maxPerUser;
  }
  async createSession(userId) {
    const existing = await this.store.getUserSessions(userId);
    if (existing.length >= this.maxPerUser) {
      existing.sort((a, b) => a.createdAt - b.createdAt);
      for (const old of existing.slice(0, existing.length - this.maxPerUser + 1)) {
        await this.store.delete(old.sessionId);
      }
    }
    const id = randomBytes(24).toString("base64url");
    return this.store.create(session(id, userId, this.clock()));
  }
  async validateSession(id) {
    const current = await this.store.get(id);
    if (!current) return null;
    await this.store.update(id, {
      security: { lastAccessedAt: this.clock(), accessCount: current.security.accessCount + 1 },
    });
    return current;
  }
  async regenerateSession(id) {
    const current = await this.store.get(id);
    if (!current) return null;
    const next = randomBytes(24).toString("base64url");
    await this.store.create({ ...current, sessionId: next, sessionToken: randomBytes(16).toString("hex") });
    await this.store.delete(id);
    return next;
  }
  async terminateSession(id) {
    const current = await this.store.get(id);
    if (!current) return false;
    await this.store.delete(id);
    return true;
  }
}

test("a SessionManager's whole flow, with cleanup on a timer and a restart", async () => {
  const dir = freshDir();
  const clock = manualClock();
  const store = open(dir, { now: clock });
  await store.ready;
  const manager = new SessionManager(store, clock);

  // A per-user limit: the fourth login of a user removes the oldest session.
  const ids = [];
  for (let i = 0; i < 4; i++) {
    ids.push(await manager.createSession("alice"));
    clock.advance(1000);
  }
  const alice = (await store.getUserSessions("alice")).map((s) => s.sessionId).sort();
  assert.deepEqual(alice, ids.slice(1).sort());
  assert.equal(await store.get(ids[0]), null);

  // Validate on every request: get, then update of security.
  const validated = await manager.validateSession(ids[1]);
  assert.equal(validated.security.accessCount, 0);
  const after = await store.get(ids[1]);
  assert.equal(after.security.accessCount, 1);
  assert.equal(after.security.lastAccessedAt, clock());
  assert.equal(after.security.userAgent, "test", "security merges member by member");
  assert.equal(after.userContext.name, "Zoë Ångström");

  // Regenerate: a new id with the same content, the old one gone.
  const regenerated = await manager.regenerateSession(ids[2]);
  assert.equal(await store.get(ids[2]), null);
  assert.equal((await store.get(regenerated)).userContext.userId, "alice");

  // Terminate.
  assert.equal(await manager.terminateSession(ids[3]), true);
  assert.equal(await manager.terminateSession(ids[3]), false);

  // Many users, requests in flight while cleanup runs on a timer.
  const bob = [];
  for (let i = 0; i < 30; i++) {
    const id = randomBytes(24).toString("base64url");
    await store.create(session(id, `user-${i % 5}`, clock(), { ttl: i % 2 ? 60_000 : 3_600_000 }));
    bob.push(id);
  }
  clock.advance(120_000); // the odd ones have expired
  let sweeps = 0;
  let removed = 0;
  const timer = setInterval(() => {
    sweeps++;
    store.cleanup().then((n) => {
      removed += n;
    });
  }, 1);
  // The manager reads then updates (two calls, as the original's did), so each session's
  // requests run one round at a time; the 30 sessions' requests overlap, and the sweeps
  // run between them.
  const results = [];
  for (let round = 0; round < 20; round++) {
    results.push(await Promise.all(bob.map((id) => manager.validateSession(id))));
  }
  clearInterval(timer);
  await store.cleanup().then((n) => {
    removed += n;
  });
  assert.ok(sweeps > 0, "the timer ran while requests were in flight");
  // A read of an expired session may remove it first; either way each goes once.
  assert.ok(removed <= 15, `${removed} removed`);
  const report = await store.check();
  assert.equal(report.expired, 0, "no expired session is left on disk");
  assert.equal(report.live, 2 + 15);
  for (const round of results) {
    round.forEach((s, i) => assert.equal(s === null, i % 2 === 1, bob[i]));
  }
  const live = bob.filter((_, i) => i % 2 === 0);
  for (const id of live) {
    assert.equal((await store.get(id)).security.accessCount, 20, "no update lost");
  }
  const count = await store.getSessionCount();
  assert.equal(count, 2 + 15);

  // A restart: a new store on the same directory finds everything.
  const before = await Promise.all([...live, ids[1], regenerated].map((id) => store.get(id)));
  await store.close();
  await assert.rejects(store.get(ids[1]), /closed/);
  const restarted = open(dir, { now: clock });
  assert.equal(await restarted.getSessionCount(), count);
  const again = await Promise.all([...live, ids[1], regenerated].map((id) => restarted.get(id)));
  assert.deepEqual(again, before);
  await restarted.clearAll();
  assert.equal(await restarted.getSessionCount(), 0);
  await restarted.close();
});

test("the original's behaviours its users rely on", async () => {
  const clock = manualClock();
  const store = open(freshDir(), { now: clock, durability: "relaxed", backend: "files" });
  const doc = session("keep-1", "u1", clock(), {
    custom: { nested: [1, "two", null] },
  });
  doc.userContext.department = "ops";
  assert.equal(await store.create(doc), "keep-1");
  assert.deepEqual(await store.get("keep-1"), doc, "extra members at every level survive");
  // Top-level members replace; nested ones merge; null removes an optional member.
  await store.update("keep-1", {
    sessionToken: "new",
    userContext: { email: null, tenantId: "t1" },
    tokenMetadata: { scopes: ["a", "b"] },
    custom: "replaced",
  });
  const updated = await store.get("keep-1");
  assert.equal(updated.sessionToken, "new");
  assert.deepEqual(updated.userContext, {
    userId: "u1",
    name: "Zoë Ångström",
    tenantId: "t1",
    roles: ["user"],
    department: "ops",
  });
  assert.deepEqual(updated.tokenMetadata.scopes, ["a", "b"]);
  assert.equal(updated.tokenMetadata.refreshToken, "rt");
  assert.equal(updated.custom, "replaced");
  // A nested object given as null is left as it is, as the original's spread left it.
  await store.update("keep-1", { security: null, userContext: undefined });
  assert.deepEqual((await store.get("keep-1")).security, updated.security);
  // Moving a session to another user moves it between users' lists.
  await store.update("keep-1", { userContext: { userId: "u2" } });
  assert.deepEqual(await store.getUserSessions("u1"), []);
  assert.equal((await store.getUserSessions("u2")).length, 1);
  // Expiry: absent from get, count and user lists at once; removed by cleanup.
  await store.create(session("keep-2", "u2", clock()));
  clock.advance(3_600_000);
  assert.equal(await store.getSessionCount(), 0);
  assert.equal(await store.cleanup(), 2);
  assert.equal(await store.cleanup(), 0);
  assert.equal(await store.get("keep-1"), null);
  assert.deepEqual(await store.getUserSessions("u2"), []);
  await assert.rejects(store.update("keep-1", {}), NotFoundError);
  // delete of an absent id resolves.
  await store.delete("never-was");
  // touch: one access recorded with a small write.
  await store.create(session("t", "u1", clock()));
  clock.advance(5);
  assert.equal((await store.touch("t")).security.accessCount, 1);
  assert.equal((await store.get("t")).security.lastAccessedAt, clock());
  assert.equal(await store.touch("nobody"), null);
  assert.equal(await store.revokeUser("u1"), 1);
  await store.close();
  await store.close();
});

test("a second process gets LockedError, or waits as configured; a SIGKILLed holder does not block", async (t) => {
  const dir = freshDir();
  const children = [];
  t.after(() => children.forEach((child) => child.kill("SIGKILL")));
  // The holder: another Node process with the installed package.
  const holder = (extra = "") =>
    new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { SessionVaultStore } from "session-vault";
           const store = new SessionVaultStore({ storageDir: ${JSON.stringify(dir)}, encryptionKey: ${JSON.stringify(SECRET)} });
           await store.ready;
           ${extra}
           process.stdout.write("ready\\n");
           setInterval(() => {}, 1000);`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      children.push(child);
      child.stdout.once("data", () => resolve(child));
      child.once("exit", (code) => reject(new Error(`holder exited with ${code}`)));
    });

  let child = await holder();
  const second = open(dir);
  await assert.rejects(second.ready, (e) => e instanceof LockedError && e.code === "locked");
  await assert.rejects(second.get("x"), LockedError, "every call reports it");
  // The Rust CLI sees the package's lock too.
  assert.equal(runCli(dir, ["count"]).code, "locked");

  // A waiting opener gets the store once the holder lets go.
  child.kill("SIGTERM");
  const waiting = open(dir, { lockTimeoutMs: 10_000 });
  await new Promise((resolve) => child.once("exit", resolve));
  // SIGTERM did not run close(): the lock file is left, naming a process that is gone.
  await waiting.ready;
  await waiting.create(session("after-wait", "u", Date.now()));
  await waiting.close();
  assert.ok(!existsSync(path.join(dir, LOCK_FILE)), "close removes the lock file");

  // SIGKILL: nothing runs at all; the next start takes the lock over.
  child = await holder();
  assert.ok(existsSync(path.join(dir, LOCK_FILE)));
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  const next = open(dir);
  await next.ready;
  assert.equal(await next.getSessionCount(), 1);
  const record = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8"));
  assert.equal(record.pid, process.pid);
  await next.close();
});

test("stores cross between the package and the Rust CLI both ways", async () => {
  const dir = freshDir();
  const now = Date.now();
  const store = open(dir);
  const doc = session("from-node", "u1", now, { extra: { a: [1, 2] } });
  await store.create(doc);
  await store.close();
  const read = runCli(dir, ["get", "from-node"]);
  assert.equal(read.status, 0, read.stderr);
  assert.deepEqual(JSON.parse(read.stdout), doc);
  const fromCli = session("from-cli", "u1", now);
  const written = runCli(dir, ["create"], { stdin: JSON.stringify(fromCli) });
  assert.equal(written.status, 0, written.stderr);
  const back = open(dir);
  assert.deepEqual(await back.get("from-cli"), fromCli);
  assert.equal((await back.getUserSessions("u1")).length, 2);
  await back.close();
});

test("any JSON object with sessionId and expiresAt is a session, read back exactly", async () => {
  const dir = freshDir();
  const now = Date.now();
  const store = open(dir);
  const express = {
    cookie: { originalMaxAge: 86_400_000, expires: new Date(now + 86_400_000), httpOnly: true, path: "/" },
    passport: { user: "zoë 😀" },
    cart: [{ sku: "A-1", qty: 2, price: 19.99 }, null, [[]]],
    ignored: undefined,
    sessionId: "e1",
    expiresAt: now + 60_000,
  };
  assert.equal(await store.set(express), "e1");
  const expected = JSON.parse(JSON.stringify(express));
  const back = await store.get("e1");
  assert.deepEqual(back, expected);
  assert.equal(JSON.stringify(back), JSON.stringify(expected), "same members, same order");
  assert.deepEqual(await store.touch("e1"), expected, "no access tracking is added");
  const rolled = await store.touch("e1", now + 90_000);
  assert.deepEqual(rolled, { ...expected, expiresAt: now + 90_000 }, "a rolling expiry");
  assert.deepEqual(await store.get("e1"), rolled);
  await assert.rejects(store.touch("e1", -5), (e) => e.code === "invalid-input");
  const replaced = { sessionId: "e1", expiresAt: now + 120_000, only: true };
  await store.set(replaced);
  assert.deepEqual(await store.get("e1"), replaced, "replaced whole");
  await assert.rejects(store.create(replaced), (e) => e.code === "already-exists");
  assert.equal(await store.getSessionCount(), 1);
  for (const id of ["e3", "e0", "e2"]) await store.set({ sessionId: id, expiresAt: now + 60_000 });
  const first = await store.listIds({ limit: 2 });
  assert.deepEqual(first, { ids: ["e0", "e1"], next: "e1" });
  const rest = await store.list({ after: first.next, limit: 2 });
  assert.deepEqual(rest.sessions.map((s) => s.sessionId), ["e2", "e3"]);
  assert.equal(rest.next, null);
  await assert.rejects(store.listIds({ limit: 0 }), (e) => e.code === "invalid-input");
  // A request in flight at a logout does not bring the session back.
  await store.delete("e2");
  await assert.rejects(store.set({ sessionId: "e2", expiresAt: now + 60_000 }), RemovedError);
  assert.equal(await store.get("e2"), null);
  await assert.rejects(store.list({ after: "../x" }), (e) => e.code === "invalid-id");
  await store.close();
});

test("the bad inputs of docs/RELIABILITY.md give the CLI's error cases", async () => {
  const dir = freshDir();
  const now = Date.now();
  const store = open(dir);
  await store.create(session("s1", "u1", now));
  const ids = ["", "../x", "a/b", "a\\b", "..", "a b", "é", "x".repeat(129)];
  for (const id of ids) {
    await assert.rejects(store.get(id), InvalidIdError, JSON.stringify(id));
  }
  const withField = (edit) => {
    const doc = session("s2", "u1", now);
    edit(doc);
    return doc;
  };
  const documents = [
    ["expiresAt missing", withField((d) => delete d.expiresAt), "invalid-input"],
    ["userContext without userId", withField((d) => delete d.userContext.userId), "invalid-input"],
    ["expiresAt a date string", withField((d) => (d.expiresAt = new Date(now))), "invalid-input"],
    ["a bigint past 2^53", withField((d) => (d.counter = 2n ** 60n)), "invalid-input"],
    ["an array", [session("s3", "u1", now)], "invalid-input"],
    ["roles a string", withField((d) => (d.userContext.roles = "admin")), "invalid-input"],
    ["expiresAt -1", withField((d) => (d.expiresAt = -1)), "invalid-input"],
    ["accessCount 1.5", withField((d) => (d.security.accessCount = 1.5)), "invalid-input"],
    ["expiresAt 1e30", withField((d) => (d.expiresAt = 1e30)), "invalid-input"],
    ["createdAt 2^64", withField((d) => (d.createdAt = 2 ** 64)), "invalid-input"],
    ["userContext null", withField((d) => (d.userContext = null)), "invalid-input"],
    ["NUL inside sessionId", withField((d) => (d.sessionId = "a\u0000b")), "invalid-id"],
    ["over 64 KiB", withField((d) => (d.big = "x".repeat(70_000))), "too-large"],
    ["a live id again", session("s1", "u1", now), "already-exists"],
  ];
  for (const [name, doc, code] of documents) {
    const error = await store.create(doc).then(
      () => assert.fail(`${name}: accepted`),
      (e) => e,
    );
    assert.ok(error instanceof SessionVaultError, `${name}: ${error}`);
    assert.equal(error.code, code, `${name}: ${error.message}`);
  }
  const patches = [
    ["changes sessionId", "s1", { sessionId: "other" }, "invalid-input"],
    ["expiresAt null", "s1", { expiresAt: null }, "invalid-input"],
    ["accessCount a string", "s1", { security: { accessCount: "3" } }, "invalid-input"],
    ["an absent session", "nobody", {}, "not-found"],
  ];
  for (const [name, id, patch, code] of patches) {
    await assert.rejects(store.update(id, patch), (e) => e.code === code, name);
  }
  assert.equal((await store.get("s1")).sessionToken.length, 32, "s1 is unchanged");
  await store.close();
  // The same documents and patches through the CLI on the same store.
  for (const [name, doc, code] of documents) {
    if (name === "createdAt 2^64") continue; // JSON.stringify writes 18446744073709552000
    if (name === "a bigint past 2^53") continue; // JSON.stringify cannot write it at all
    assert.equal(runCli(dir, ["create"], { stdin: JSON.stringify(doc) }).code, code, `CLI: ${name}`);
  }
  for (const [name, id, patch, code] of patches) {
    assert.equal(runCli(dir, ["update", id], { stdin: JSON.stringify(patch) }).code, code, `CLI: ${name}`);
  }

  // Configuration.
  assert.throws(() => open(freshDir(), { encryptionKey: "short" }), InvalidInputError);
  assert.throws(() => open(freshDir(), { encryptionKey: "" }), InvalidInputError);
  assert.throws(() => open(freshDir(), { encryptionKey: undefined, rawKey: new Uint8Array(2) }), InvalidInputError);
  assert.throws(() => open(freshDir(), { idleTimeoutMs: 0 }), InvalidInputError);
  await assert.rejects(open(freshDir(), { maxSessionBytes: 10 }).ready, InvalidInputError);
  await assert.rejects(open(dir, { encryptionKey: `${SECRET}-wrong` }).ready, WrongKeyError);
  assert.equal(runCli(dir, ["count"], { secret: `${SECRET}-wrong` }).code, "wrong-key");
  // Metadata missing beside sessions: refused, not a new store over them.
  const files = freshDir();
  const filesStore = open(files);
  await filesStore.create(session("s1", "u1", now));
  await filesStore.close();
  rmSync(path.join(files, "session-vault.json"));
  await assert.rejects(open(files).ready, (e) => e.code === "corrupted");
  assert.equal(runCli(files, ["count"]).code, "corrupted");
  // storageDir is a regular file.
  const file = path.join(scratch, "a-file");
  writeFileSync(file, "x");
  await assert.rejects(open(file).ready, (e) => e.code === "io");
  assert.equal(runCli(file, ["count"]).code, "io");
  // A link planted in the store directory does not take the store elsewhere.
  const planted = freshDir();
  const plantedStore = open(planted);
  await plantedStore.create(session("s1", "u1", now));
  await plantedStore.close();
  const outside = path.join(scratch, "outside");
  renameSync(path.join(planted, "log"), outside);
  symlinkSync(outside, path.join(planted, "log"));
  await assert.rejects(open(planted).ready, (e) => e.code === "io");
  assert.equal(runCli(planted, ["count"]).code, "io");
  assert.deepEqual(readdirSync(outside), ["0000000000000001.seg"]);
  // Sizes: the component's limit is the one the CLI has.
  const small = open(freshDir(), { maxSessionBytes: 2048 });
  await assert.rejects(small.create(session("big", "u", now, { pad: "x".repeat(4096) })), TooLargeError);
  await small.close();
});

test("importLegacy moves a store the original wrote", async () => {
  const legacy = path.join(fixtures, "legacy-ts");
  const expected = JSON.parse(readFileSync(path.join(legacy, "expected.json"), "utf8"));
  const dir = freshDir();
  const store = new SessionVaultStore({
    storageDir: dir,
    encryptionKey: "legacy-fixture-secret-0123456789-abcdefghij",
  });
  const report = await store.importLegacy(path.join(legacy, "store"));
  const live = expected.filter((d) => d.expiresAt > Date.now());
  assert.equal(report.imported.length, live.length);
  assert.equal(report.expired.length, expected.length - live.length);
  assert.deepEqual(report.failed, []);
  for (const doc of live) assert.deepEqual(await store.get(doc.sessionId), doc);
  assert.equal(await store.getSessionCount(), live.length);
  // Calls made while an import runs (its thread busy across turns of its event loop)
  // run after it, in the order made: each save of one id replaces the one before.
  const saves = [];
  const importing = store.importLegacy(path.join(legacy, "store"));
  for (let v = 1; v <= 40; v++) {
    saves.push(store.set({ sessionId: "ordered", expiresAt: Date.now() + 60_000, v }));
    // Sent over many turns: some reach the thread while it is still importing.
    if (v % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
  }
  await Promise.all([importing, ...saves]);
  assert.equal((await store.get("ordered")).v, 40, "the save made last ran last");
  // Run again: everything is already there.
  const again = await store.importLegacy(path.join(legacy, "store"));
  assert.equal(again.alreadyPresent.length, live.length);
  assert.equal(again.imported.length, 0);
  // The original's directory is read, never written.
  assert.equal(readdirSync(path.join(legacy, "store")).length, expected.length);
  await store.close();
  // Key rotation, through the package.
  const rotated = open(freshDir());
  await rotated.create(session("r1", "u", Date.now()));
  const id = await rotated.addKey("a-second-secret-for-rotation-0123456789");
  assert.equal(await rotated.rekey(), 1);
  const [first] = (await rotated.keys()).filter((k) => !k.current);
  await rotated.retireKey(first.id);
  assert.equal((await rotated.keys()).find((k) => k.current).id, id);
  assert.equal((await rotated.check()).live, 1);
  await rotated.close();
});

test("hostile values: __proto__ members, lone surrogates, odd key ids and raw keys", async () => {
  const store = open(freshDir());
  // As JSON.parse leaves it: an own member named __proto__, at the top and nested.
  const text = JSON.stringify(session("proto", "u", Date.now()));
  const doc = JSON.parse(
    `${text.slice(0, -1)},"__proto__":{"isAdmin":true}}`.replace(
      '"userContext":{',
      '"userContext":{"__proto__":{"isAdmin":true},',
    ),
  );
  await store.create(doc);
  const back = await store.get("proto");
  assert.ok(Object.hasOwn(back, "__proto__"), "kept as a member");
  assert.equal(back.isAdmin, undefined, "not a prototype");
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.ok(Object.hasOwn(back.userContext, "__proto__"));
  assert.equal(back.userContext.isAdmin, undefined);
  await assert.rejects(store.create(session("s", "u\uD800", Date.now())), InvalidInputError);
  await assert.rejects(store.retireKey(undefined), InvalidInputError);
  await assert.rejects(store.retireKey(-1), InvalidInputError);
  await store.close();
  assert.throws(
    () => new SessionVaultStore({ storageDir: freshDir(), rawKey: "ab".repeat(32) + "zz" }),
    InvalidInputError,
  );
  assert.throws(() => open(freshDir(), { now: () => Number.NaN }), InvalidInputError);
});

test("a lock and a takeover guard left by processes that are gone do not block", async () => {
  const dir = freshDir();
  const first = open(dir);
  await first.create(session("kept", "u", Date.now()));
  await first.close();
  // A pid that has exited, on this host.
  const gone = spawnSync(process.execPath, ["-e", ""]).pid;
  const record = (token) =>
    JSON.stringify({ host: os.hostname(), pid: gone, started: null, token });
  writeFileSync(path.join(dir, LOCK_FILE), record("a"));
  writeFileSync(path.join(dir, `${LOCK_FILE}.takeover`), record("b"));
  const next = open(dir, { lockTimeoutMs: 5_000 });
  assert.equal(await next.getSessionCount(), 1);
  assert.ok(!existsSync(path.join(dir, `${LOCK_FILE}.takeover`)));
  assert.deepEqual((await next.check()).foreign, 0);
  await next.close();
});

test("errors are Error subclasses with the WIT case as code", async () => {
  const store = open(freshDir());
  await store.create(session("dup", "u", Date.now()));
  const error = await store.create(session("dup", "u", Date.now())).catch((e) => e);
  assert.ok(error instanceof AlreadyExistsError);
  assert.ok(error instanceof SessionVaultError);
  assert.ok(error instanceof Error);
  assert.equal(error.code, "already-exists");
  assert.equal(error.name, "AlreadyExistsError");
  await store.close();
});
