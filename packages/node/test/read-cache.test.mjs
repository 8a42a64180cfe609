// The store's read cache (src/read-cache.js), through the installed package: a session
// read again is answered on the caller's thread, and that answer must always be what the
// component's thread would have answered at that moment. Calls are made many at a time,
// none awaited before the next is made, in a seeded random order, and every read is
// checked against a model of the store as of the moment the read was made.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { SessionVaultStore } from "session-vault";
import { SessionVaultSessionStore } from "session-vault/express";

const SECRET = "node-package-test-secret-0123456789-abcdef";
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-read-cache-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(scratch, `store-${++dirs}`);

function manualClock(start = Date.UTC(2026, 11, 8)) {
  let now = start;
  const clock = () => now;
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

/** A small seeded generator (mulberry32): the same calls on every run of a seed. */
function generator(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { below: (n) => Math.floor(next() * n), chance: (p) => next() < p };
}

const USERS = ["alice", "bob"];

// With the cache, with one so small it keeps a session or two (evictions), and without it
// (the model must hold for the store itself, or its failures with the cache would prove
// nothing about the cache). The first calls are made before the store has opened.
//
// The same model holds a store on the redis backend with four component instances (no read
// cache there), against the server scripts/test starts. Its calls on different sessions
// run side by side, so there the clock moves only between rounds: a call made after the
// clock moved may run before one made earlier on another session, and, finding a session
// expired by its later time, remove it before the earlier call reads it.
const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);
const redisUrl = process.env.SESSION_VAULT_TEST_REDIS_URL;
const VARIANTS = [
  ["the read cache", { cacheBytes: undefined }],
  ["a tiny read cache", { cacheBytes: 800 }],
  ["no read cache", { cacheBytes: 0 }],
  ...(redisUrl ? [["redis, four instances", { backend: "redis", redisUrl, redisConcurrency: 4 }]] : []),
];
for (const [[name, variant], seed] of SEEDS.flatMap((seed) => VARIANTS.map((v) => [v, seed]))) {
  test(`reads agree with the store under any interleaving of its calls (${name}, seed ${seed})`, async () => {
    const random = generator(seed);
    const shared = variant.backend === "redis";
    // Redis drops a record at its expiry by the real clock: the store's clock runs ahead.
    const clock = manualClock(shared ? Date.now() + 86_400_000 : undefined);
    const express = new SessionVaultSessionStore({
      ...(shared ? { prefix: `model-${process.pid}-${seed}:` } : { storageDir: freshDir() }),
      encryptionKey: SECRET,
      durability: "relaxed",
      now: clock,
      userId: "user",
      ...variant,
    });
    const vault = express.vault;
    /** id → the stored document, as the model has it. */
    const model = new Map();
    // The ids in play. One whose session was removed is never stored again (the store
    // refuses that until the removed session's expiry): writes go to fresh ones.
    const ids = [];
    const removed = new Set();
    const remove = (id) => {
      if (model.delete(id)) removed.add(id);
    };
    const writable = () => {
      const open = ids.filter((id) => !removed.has(id));
      if (open.length < 3) {
        const id = `sess-${String(ids.length).padStart(20, "0")}`;
        ids.push(id);
        return id;
      }
      return open[random.below(open.length)];
    };
    const live = (id) => {
      const doc = model.get(id);
      return doc !== undefined && clock() < doc.expiresAt ? doc : undefined;
    };
    let version = 0;
    let advanceAfter = 0;
    try {
      for (let round = 0; round < 60; round++) {
        const checks = [];
        const calls = 1 + random.below(12);
        for (let i = 0; i < calls; i++) {
          const kind = random.below(10);
          const id = kind === 0 || ids.length === 0 ? writable() : ids[random.below(ids.length)];
          if (kind === 0) {
            const doc = {
              sessionId: id,
              expiresAt: clock() + 1 + random.below(5000),
              session: { v: ++version, user: USERS[random.below(USERS.length)] },
              userContext: { userId: USERS[random.below(USERS.length)] },
            };
            // Sometimes a document a touch stamps, which a cached copy would get wrong.
            if (random.chance(0.3)) {
              const at = clock();
              doc.security = { ipAddress: "127.0.0.1", userAgent: "test", createdAt: at, lastAccessedAt: at, accessCount: 0 };
            }
            doc.userContext.userId = doc.session.user;
            model.set(id, structuredClone(doc));
            checks.push(vault.set(doc));
          } else if (kind === 1) {
            const doc = live(id);
            const v = ++version;
            if (doc === undefined) {
              checks.push(vault.update(id, { session: { v } }).then(
                () => assert.fail(`update of ${id} (absent) succeeded`),
                (e) => assert.equal(e.code, "not-found"),
              ));
            } else {
              doc.session = { v, user: doc.session.user };
              checks.push(vault.update(id, { session: doc.session }));
            }
          } else if (kind === 2) {
            remove(id);
            checks.push(vault.delete(id));
          } else if (kind === 3) {
            // express-session's touch: moves the expiry, later or earlier.
            const until = clock() + random.below(6000) - 500;
            const doc = live(id);
            if (doc !== undefined) {
              if (until <= clock()) remove(id);
              else {
                doc.expiresAt = until;
                if (doc.security) {
                  doc.security.lastAccessedAt = clock();
                  doc.security.accessCount += 1;
                }
              }
            }
            const cookie = { expires: new Date(until).toISOString() };
            checks.push(express.touch(id, { cookie }));
          } else if (kind === 4 && random.chance(0.3)) {
            const user = USERS[random.below(USERS.length)];
            for (const [sid, doc] of [...model]) if (doc.userContext?.userId === user) remove(sid);
            checks.push(vault.revokeUser(user));
          } else if (kind === 5 && random.chance(0.1)) {
            for (const sid of [...model.keys()]) remove(sid);
            checks.push(vault.clearAll());
          } else if (kind === 6) {
            const ms = random.below(700);
            if (shared) advanceAfter += ms;
            else clock.advance(ms);
          } else if (kind === 7) {
            const want = live(id)?.session ?? null;
            const wantCopy = want === null ? null : structuredClone(want);
            checks.push(
              express.get(id).then((got) => {
                assert.deepEqual(got === null ? null : JSON.parse(JSON.stringify(got)), wantCopy, `express get ${id}, round ${round}`);
              }),
            );
          } else {
            const want = live(id);
            const wantCopy = want === undefined ? null : structuredClone(want);
            checks.push(
              vault.get(id).then((got) => assert.deepEqual(got, wantCopy, `get ${id}, round ${round}`)),
            );
          }
        }
        await Promise.all(checks);
        clock.advance(advanceAfter);
        advanceAfter = 0;
      }
    } finally {
      await express.close();
    }
  });
}

test("a read made before a change is not kept over it, however the answers interleave", async () => {
  const clock = manualClock();
  const vault = new SessionVaultStore({ storageDir: freshDir(), encryptionKey: SECRET, now: clock });
  const id = "sess-race-aaaaaaaaaaaaaaaa";
  const doc = (v) => ({ sessionId: id, expiresAt: clock() + 60_000, session: { v } });
  try {
    await vault.set(doc(1));
    // The first read goes to the thread; the write made before its answer comes back
    // must win over it: the next read, from memory or not, is the write's.
    const before = vault.get(id);
    const write = vault.set(doc(2));
    assert.equal((await before).session.v, 1);
    await write;
    assert.equal((await vault.get(id)).session.v, 2);
    assert.equal((await vault.get(id)).session.v, 2);
    // The same with a removal: the session read just before it stays removed.
    const read = vault.get(id);
    const removal = vault.delete(id);
    assert.equal((await read).session.v, 2);
    await removal;
    assert.equal(await vault.get(id), null);
  } finally {
    await vault.close();
  }
});

test("a session read from memory still expires by the store's clock, and after a touch that brings it forward", async () => {
  const clock = manualClock();
  const express = new SessionVaultSessionStore({ storageDir: freshDir(), encryptionKey: SECRET, now: clock });
  const id = "sess-expiry-aaaaaaaaaaaaaa";
  try {
    await express.vault.set({ sessionId: id, expiresAt: clock() + 10_000, session: { v: 1 } });
    assert.deepEqual(JSON.parse(JSON.stringify(await express.get(id))), { v: 1 });
    assert.deepEqual(JSON.parse(JSON.stringify(await express.get(id))), { v: 1 });
    await express.touch(id, { cookie: { expires: new Date(clock() + 2_000).toISOString() } });
    clock.advance(1_999);
    assert.deepEqual(JSON.parse(JSON.stringify(await express.get(id))), { v: 1 });
    clock.advance(1);
    assert.equal(await express.get(id), null, "expired at the touched time, not the stored one");
  } finally {
    await express.close();
  }
});

test("a store with a maximum lifetime keeps nothing in memory: a session ends at its cap", async () => {
  const clock = manualClock();
  const vault = new SessionVaultStore({ storageDir: freshDir(), encryptionKey: SECRET, now: clock, maxLifetimeMs: 1_000 });
  const id = "sess-capped-aaaaaaaaaaaaaa";
  try {
    // Its document says an hour; the store's cap says a second from its first write.
    await vault.set({ sessionId: id, expiresAt: clock() + 3_600_000, session: {} });
    assert.notEqual(await vault.get(id), null);
    assert.notEqual(await vault.get(id), null);
    clock.advance(1_000);
    assert.equal(await vault.get(id), null);
  } finally {
    await vault.close();
  }
});

test("a touch of a kept session that has expired does not bring it back", async () => {
  const clock = manualClock();
  const express = new SessionVaultSessionStore({ storageDir: freshDir(), encryptionKey: SECRET, now: clock });
  const id = "sess-expired-touch-aaaaaaa";
  try {
    await express.vault.set({ sessionId: id, expiresAt: clock() + 1_000, session: { v: 1 } });
    assert.notEqual(await express.vault.get(id), null, "read once: kept");
    clock.advance(2_000);
    // The touch finds nothing (the session expired); the read made while it is in flight
    // must not be the kept session with the touch's expiry.
    const touch = express.touch(id, { cookie: { expires: new Date(clock() + 60_000).toISOString() } });
    const read = express.vault.get(id);
    await touch;
    assert.equal(await read, null);
    assert.equal(await express.vault.get(id), null);
  } finally {
    await express.close();
  }
});

test("a read made while a touch that ends the session is in flight is no session", async () => {
  const clock = manualClock();
  const express = new SessionVaultSessionStore({ storageDir: freshDir(), encryptionKey: SECRET, now: clock });
  const id = "sess-touch-ends-aaaaaaaaaa";
  try {
    await express.vault.set({ sessionId: id, expiresAt: clock() + 60_000, session: { v: 1 } });
    assert.notEqual(await express.vault.get(id), null, "read once: kept");
    // A cookie that has already expired: the touch makes the session absent from now on.
    const touch = express.touch(id, { cookie: { expires: new Date(clock() - 1).toISOString() } });
    const read = express.vault.get(id);
    await touch;
    assert.equal(await read, null, "the touch was made first");
    assert.equal(await express.vault.get(id), null);
  } finally {
    await express.close();
  }
});

test("a call made when the store opens (ready, or the express store's connect) does not overtake one made before", async () => {
  const dir = freshDir();
  const id = "sess-opening-race-aaaaaaaa";
  const doc = (v) => ({ sessionId: id, expiresAt: Date.now() + 60_000, session: { v } });
  const first = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET });
  await first.set(doc(1));
  await first.close();

  const vault = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET });
  let inReaction;
  vault.ready.then(() => {
    inReaction = vault.get(id);
  });
  await vault.set(doc(2));
  assert.equal((await inReaction).session.v, 2, "the read made once open comes after the set made before");
  assert.equal((await vault.get(id)).session.v, 2);
  await vault.close();

  const express = new SessionVaultSessionStore({ storageDir: dir, encryptionKey: SECRET });
  let onConnect;
  express.on("connect", () => {
    onConnect = express.get(id);
  });
  await express.destroy(id);
  assert.equal(await onConnect, null, "the read on connect comes after the destroy made before");
  assert.equal(await express.get(id), null, "and nothing destroyed is kept");
  await express.close();
});

test("a session stored through toJSON is forgotten under the id it is stored under", async () => {
  const vault = new SessionVaultStore({ storageDir: freshDir(), encryptionKey: SECRET });
  const id = "sess-to-json-aaaaaaaaaaaaa";
  const expiresAt = Date.now() + 60_000;
  try {
    await vault.set({ sessionId: id, expiresAt, session: { v: 1 } });
    assert.equal((await vault.get(id)).session.v, 1);
    await vault.set({ sessionId: "sess-another-aaaaaaaaaaaa", toJSON: () => ({ sessionId: id, expiresAt, session: { v: 2 } }) });
    assert.equal((await vault.get(id)).session.v, 2);
  } finally {
    await vault.close();
  }
});
