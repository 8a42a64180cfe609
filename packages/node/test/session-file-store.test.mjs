// Moving from session-file-store (from the registry) to session-vault: sessions written by
// a real express app on session-file-store, with and without its `secret`, imported, and
// the same browsers still logged in on an app on session-vault.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import express from "express";
import session from "express-session";
import sessionFileStore from "session-file-store";
import { SessionVaultSessionStore } from "session-vault/express";

import { browser, closeServers, listen } from "./http.mjs";

const FileStore = sessionFileStore(session);
const STORE_SECRET = "vault-secret-0123456789-abcdefghijklmnopq";
const FILE_STORE_SECRET = "the file store's secret";
const root = mkdtempSync(path.join(os.tmpdir(), "session-vault-sfs-"));
after(() => {
  closeServers();
  rmSync(root, { recursive: true, force: true });
});

/** The same app (same cookie-signing secret) on any store. */
function serve(store) {
  const app = express();
  app.use(express.json());
  app.use(
    session({ secret: "cookie-signing-secret", resave: false, saveUninitialized: false, store, cookie: { maxAge: 3_600_000 } }),
  );
  app.post("/login", (req, res) => {
    req.session.user = req.body.user;
    if (req.body.maxAge) req.session.cookie.maxAge = req.body.maxAge;
    res.json({ ok: true });
  });
  app.get("/me", (req, res) => res.json({ user: req.session.user ?? null }));
  return listen(app);
}

const sid = (cookie) => decodeURIComponent(cookie.split("=")[1]).slice(2).split(".")[0];

/** Logs alice, bob and (with a session that expires at once) carol in on session-file-store. */
async function loggedIn(dir, secret) {
  const files = new FileStore({ path: dir, secret, logFn: () => {}, reapInterval: -1 });
  const server = await serve(files);
  const people = {};
  for (const user of ["alice", "bob", "carol"]) {
    people[user] = browser(server.base);
    await people[user].request("POST", "/login", { user, maxAge: user === "carol" ? 1 : undefined });
    assert.equal((await people[user].request("GET", "/me")).body.user, user === "carol" ? null : user);
  }
  await server.close();
  return people;
}

for (const secret of [FILE_STORE_SECRET, undefined]) {
  test(`session-file-store ${secret ? "with" : "without"} its secret: imported, everyone still logged in`, async () => {
    const dir = path.join(root, secret ? "encrypted" : "plain");
    const people = await loggedIn(dir, secret);
    const written = readdirSync(dir).filter((name) => name.endsWith(".json"));
    if (secret) {
      const file = readFileSync(path.join(dir, `${sid(people.alice.cookie)}.json`), "utf8");
      assert.doesNotMatch(file, /alice/, "session-file-store encrypted it");
    }
    const vault = new SessionVaultSessionStore({ storageDir: path.join(root, `vault-${written.length}-${!!secret}`), encryptionKey: STORE_SECRET, userId: "user" });
    const report = await vault.importSessionFileStore(dir, { secret });
    assert.deepEqual(report.imported.sort(), [sid(people.alice.cookie), sid(people.bob.cookie)].sort());
    assert.deepEqual(report.failed, []);
    // carol's session, expired by session-file-store's rule, is not brought over.
    assert.deepEqual(report.expired, [sid(people.carol.cookie)]);
    assert.equal(written.length, 3);
    const server = await serve(vault);
    for (const user of ["alice", "bob"]) {
      people[user].withBase(server.base);
      assert.equal((await people[user].request("GET", "/me")).body.user, user, `${user} is still logged in`);
    }
    const [stored] = await vault.userSessions("alice");
    assert.equal(stored.__lastAccess, undefined, "session-file-store's own member is left behind");
    // Again: nothing is overwritten.
    const again = await vault.importSessionFileStore(dir, { secret });
    assert.deepEqual(again.alreadyPresent.sort(), report.imported.sort());
    await server.close();
    await vault.close();
  });
}

test("session-file-store files that cannot be opened are reported, never imported", async () => {
  const dir = path.join(root, "damaged");
  const people = await loggedIn(dir, FILE_STORE_SECRET);
  const alice = path.join(dir, `${sid(people.alice.cookie)}.json`);
  const envelope = JSON.parse(readFileSync(alice, "utf8"));
  envelope.ct = envelope.ct.slice(0, -1) + String.fromCharCode(envelope.ct.charCodeAt(envelope.ct.length - 1) ^ 1);
  writeFileSync(alice, JSON.stringify(envelope));
  writeFileSync(path.join(dir, "torn.json"), '{"hmac":');
  const vault = new SessionVaultSessionStore({ storageDir: path.join(root, "vault-damaged"), encryptionKey: STORE_SECRET });
  const wrong = await vault.importSessionFileStore(dir, { secret: "not the secret" });
  assert.deepEqual(wrong.imported, []);
  assert.ok(wrong.failed.some((f) => /does not open it/.test(f.reason)));
  const missing = await vault.importSessionFileStore(dir);
  assert.deepEqual(missing.imported, []);
  assert.ok(missing.failed.some((f) => /encrypted: pass session-file-store's secret/.test(f.reason)));
  const report = await vault.importSessionFileStore(dir, { secret: FILE_STORE_SECRET });
  assert.deepEqual(report.imported, [sid(people.bob.cookie)]);
  const reasons = Object.fromEntries(report.failed.map((f) => [path.basename(f.file), f.reason]));
  assert.match(reasons[path.basename(alice)], /altered \(HMAC mismatch\)/);
  assert.match(reasons["torn.json"], /not JSON/);
  await assert.rejects(vault.importSessionFileStore(path.join(root, "no-such-dir")), /ENOENT/);
  await vault.close();
});
