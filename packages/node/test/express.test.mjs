// session-vault/express in a real express app with express-session (from the registry),
// listening on 127.0.0.1 and driven over HTTP with cookies, as a user runs it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, mock, test } from "node:test";

import express from "express";
import session from "express-session";
import { SessionVaultSessionStore } from "session-vault/express";

import { browser, closeServers, inFlightGate, listen } from "./http.mjs";

const SECRET = "express-test-secret-0123456789-abcdefghijklmnop";
const dirs = [];
// Whatever a failing test left open is closed here, so a failure never hangs the run.
const stores = [];
after(async () => {
  closeServers();
  for (const open of stores) await open.close().catch(() => {});
  for (const dir of dirs) rmSync(path.dirname(dir), { recursive: true, force: true });
});

function freshDir() {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "session-vault-express-")), "store");
  dirs.push(dir);
  return dir;
}

/** An express app using `store`; `/slow` calls `gate.entered()` once it has its session,
 * then waits for `gate.released`; `/pref` waits for `barrier()` (with its session read)
 * before it sets one member. */
async function serve(store, { gate, barrier, maxAge = 60 * 60 * 1000 } = {}) {
  return listen(testApp(store, { gate, barrier, maxAge }));
}

/** The test app (see `serve`); `maxAge: null` for cookies without an expiry. */
function testApp(store, { gate, barrier, maxAge }) {
  const app = express();
  app.use(express.json());
  app.use(
    session({
      // Forged cookies below are signed with it: the store sees what they name.
      secret: "cookie-signing-secret",
      resave: false,
      saveUninitialized: false,
      rolling: true,
      store,
      cookie: { maxAge },
    }),
  );
  app.post("/login", (req, res) => {
    req.session.user = req.body.user;
    req.session.cart = [];
    res.json({ ok: true });
  });
  app.get("/me", (req, res) => {
    res.json({ user: req.session.user ?? null, cart: req.session.cart ?? null });
  });
  app.post("/cart", (req, res) => {
    req.session.cart = [...(req.session.cart ?? []), req.body.item];
    res.json({ cart: req.session.cart });
  });
  app.post("/slow", async (req, res) => {
    gate?.entered();
    await gate?.released;
    if (req.body?.name) req.session[req.body.name] = req.body.value;
    else req.session.cart = [...(req.session.cart ?? []), "late"];
    res.json({ ok: true });
  });
  app.post("/pref", async (req, res) => {
    await barrier?.();
    req.session[req.body.name] = req.body.value;
    res.json({ ok: true });
  });
  app.get("/prefs", (req, res) => {
    res.json({ theme: req.session.theme ?? null, locale: req.session.locale ?? null });
  });
  app.post("/logout", (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ ok: true })));
  });
  app.use((error, req, res, next) => res.status(500).json({ error: String(error) }));
  return app;
}

function store(dir, extra = {}) {
  const made = new SessionVaultSessionStore({ storageDir: dir, encryptionKey: SECRET, ...extra });
  stores.push(made);
  return made;
}

test("log in, use the session, log out: the old cookie is refused", async () => {
  const vault = store(freshDir());
  const server = await serve(vault);
  const alice = browser(server.base);
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null, cart: null });
  await alice.request("POST", "/login", { user: "alice" });
  await alice.request("POST", "/cart", { item: "book" });
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: "alice", cart: ["book"] });
  assert.equal(await vault.length(), 1);
  const [saved] = await vault.all();
  assert.equal(saved.user, "alice");
  assert.ok(saved.cookie.expires, "express-session's cookie is stored as it wrote it");
  const old = alice.cookie;
  await alice.request("POST", "/logout");
  alice.cookie = old;
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null, cart: null });
  assert.equal(await vault.length(), 0);
  await server.close();
  await vault.close();
});

test("the server restarts and the user is still logged in", async () => {
  const dir = freshDir();
  let vault = store(dir);
  let server = await serve(vault);
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  await server.close();
  await vault.close();
  vault = store(dir);
  server = await serve(vault);
  alice.withBase(server.base);
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: "alice", cart: [] });
  await server.close();
  await vault.close();
});

test("the server process is SIGKILLed and started again: the user is still logged in", async () => {
  const dir = freshDir();
  const program = path.join(path.dirname(dir), `server-${Date.now()}.mjs`);
  const resolve = (name) => JSON.stringify(import.meta.resolve(name));
  writeFileSync(
    program,
    `const express = (await import(${resolve("express")})).default;
const session = (await import(${resolve("express-session")})).default;
const { SessionVaultSessionStore } = await import(${resolve("session-vault/express")});
const app = express();
app.use(express.json());
app.use(session({ secret: "cookie-signing-secret", resave: false, saveUninitialized: false,
  store: new SessionVaultSessionStore({ storageDir: process.env.DIR, encryptionKey: process.env.SECRET }) }));
app.post("/login", (req, res) => { req.session.user = req.body.user; res.json({ ok: true }); });
app.get("/me", (req, res) => res.status(req.session.user ? 200 : 401).json({ user: req.session.user ?? null }));
const server = app.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
`,
  );
  const start = async () => {
    const child = spawn(process.execPath, [program], { env: { ...process.env, DIR: dir, SECRET }, stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    for await (const chunk of child.stdout) {
      output += chunk;
      if (output.includes("\n")) break;
    }
    return { child, base: `http://127.0.0.1:${JSON.parse(output).port}` };
  };
  let server = await start();
  try {
    const alice = browser(server.base);
    assert.equal((await alice.request("POST", "/login", { user: "alice" })).status, 200);
    // No shutdown: the process dies as in a crash, its lock and thread with it.
    server.child.kill("SIGKILL");
    await once(server.child, "exit");
    server = await start();
    alice.withBase(server.base);
    assert.deepEqual(await alice.request("GET", "/me"), { status: 200, body: { user: "alice" } });
  } finally {
    server.child.kill("SIGKILL");
    await once(server.child, "exit");
  }
});

test("an expired session is gone, by the store's clock", async () => {
  let now = Date.now();
  const vault = store(freshDir(), { now: () => now });
  const server = await serve(vault);
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  now += 61 * 60 * 1000;
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null, cart: null });
  await server.close();
  await vault.close();
});

test("a request in flight at logout does not bring the session back", async () => {
  const gate = inFlightGate();
  const vault = store(freshDir());
  const server = await serve(vault, { gate });
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  const cookie = alice.cookie;
  const slow = fetch(`${server.base}/slow`, { method: "POST", headers: { cookie } });
  // The slow request has read its session before the logout lands.
  await gate.inside;
  await alice.request("POST", "/logout");
  gate.release();
  assert.equal((await slow).status, 200, "the late save is not an error for the request");
  alice.cookie = cookie;
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null, cart: null });
  assert.equal(await vault.length(), 0);
  await server.close();
  await vault.close();
});

test("two requests in flight on one session, changing different members, both keep their change", async () => {
  // Both requests have read the session before either saves (connect-redis #75: with a
  // whole-object set, the second save drops the first's change).
  let arrived = 0;
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  const barrier = () => {
    if (++arrived === 2) open();
    return opened;
  };
  const vault = store(freshDir());
  const server = await serve(vault, { barrier });
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  const headers = { cookie: alice.cookie, "content-type": "application/json" };
  const change = (name, value) =>
    fetch(`${server.base}/pref`, { method: "POST", headers, body: JSON.stringify({ name, value }) });
  // Each answer read whole: express-session finishes its save before it ends the response.
  const answers = await Promise.all(
    [change("theme", "dark"), change("locale", "fr")].map(async (r) => [(await r).status, await (await r).json()]),
  );
  assert.deepEqual(answers, [[200, { ok: true }], [200, { ok: true }]]);
  assert.deepEqual((await alice.request("GET", "/prefs")).body, { theme: "dark", locale: "fr" });
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: "alice", cart: [] }, "members neither request changed are kept");
  // A member both requests change is the later save's: the slow request read the
  // session before the quick one saved "light", and saves "sepia" after it.
  const gate = inFlightGate();
  const server2 = await serve(vault, { gate });
  const post = (url, body) =>
    fetch(`${server2.base}${url}`, { method: "POST", headers, body: JSON.stringify(body) }).then((r) => r.json());
  const slow = post("/slow", { name: "theme", value: "sepia" });
  await gate.inside;
  await post("/pref", { name: "theme", value: "light" });
  assert.equal((await alice.request("GET", "/prefs")).body.theme, "light");
  gate.release();
  await slow;
  assert.deepEqual((await alice.request("GET", "/prefs")).body, { theme: "sepia", locale: "fr" });
  await server.close();
  await server2.close();
  await vault.close();
});

test("a touch never keeps a session past its cookie's expiry, nor past the cap", async (t) => {
  // express-session dates cookies by Date; the store is given the same clock.
  t.mock.timers.enable({ apis: ["Date"], now: Date.now() });
  const minute = 60 * 1000;
  // A touch moves the expiry to the cookie's (express-session's maxAge from now), not a
  // store-wide ttl from now: with the default ttl of a day, a naive touch would keep this
  // ten-minute session alive for a day (connect-redis #251).
  const short = store(freshDir(), { now: () => Date.now() });
  const server = await serve(short, { maxAge: 10 * minute });
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  for (let i = 0; i < 3; i++) {
    t.mock.timers.tick(9 * minute);
    assert.equal((await alice.request("GET", "/me")).body.user, "alice", `request ${i}`);
  }
  t.mock.timers.tick(11 * minute);
  assert.equal((await alice.request("GET", "/me")).body.user, null, "expired ten minutes after the last touch");
  await server.close();
  await short.close();

  // Rolling: each request moves the expiry an hour on, but never past the cap.
  const capped = store(freshDir(), { now: () => Date.now(), maxLifetimeMs: 120 * minute });
  const rolling = await serve(capped);
  const bob = browser(rolling.base);
  await bob.request("POST", "/login", { user: "bob" });
  for (let i = 0; i < 3; i++) {
    t.mock.timers.tick(39 * minute);
    assert.equal((await bob.request("GET", "/me")).body.user, "bob", `request ${i}`);
  }
  t.mock.timers.tick(4 * minute); // 121 minutes after login, 4 after the last request
  assert.equal((await bob.request("GET", "/me")).body.user, null);
  await rolling.close();
  await capped.close();
});

test("a forged or malformed cookie is no session, and callbacks get errors", async () => {
  const vault = store(freshDir());
  const server = await serve(vault);
  const mallory = browser(server.base);
  // A cookie signed with the app's own secret (as if it had leaked) for an id no store
  // could hold: express-session hands the id to the store, which finds no session.
  const forged = "../etc/passwd";
  const signature = createHmac("sha256", "cookie-signing-secret").update(forged).digest("base64").replace(/=+$/, "");
  mallory.cookie = `connect.sid=${encodeURIComponent(`s:${forged}.${signature}`)}`;
  assert.deepEqual((await mallory.request("GET", "/me")).body, { user: null, cart: null });
  await new Promise((resolve, reject) =>
    vault.get("../x", (error, value) => (error ? reject(error) : resolve(assert.equal(value, null)))),
  );
  await server.close();
  await vault.close();
  // A closed store: the callback gets the error, nothing is thrown or left unhandled.
  const error = await new Promise((resolve) => vault.get("abc", (e) => resolve(e)));
  assert.ok(error instanceof Error);
});

test("log out everywhere: revokeUser ends every browser's session", async () => {
  const vault = store(freshDir(), { userId: "user" });
  const server = await serve(vault);
  const laptop = browser(server.base);
  const phone = browser(server.base);
  const bob = browser(server.base);
  await laptop.request("POST", "/login", { user: "alice" });
  await phone.request("POST", "/login", { user: "alice" });
  await bob.request("POST", "/login", { user: "bob" });
  assert.equal((await vault.userSessions("alice")).length, 2);
  assert.equal(await vault.revokeUser("alice"), 2);
  assert.equal((await laptop.request("GET", "/me")).body.user, null);
  assert.equal((await phone.request("GET", "/me")).body.user, null);
  assert.equal((await bob.request("GET", "/me")).body.user, "bob");
  await server.close();
  await vault.close();
});

test("without a cookie expiry, ttl decides; disableTouch keeps the expiry the save gave", async (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: Date.now() });
  const minute = 60 * 1000;
  for (const disableTouch of [false, true]) {
    const vault = store(freshDir(), { now: () => Date.now(), ttl: 10 * 60, disableTouch });
    const server = await serve(vault, { maxAge: null });
    const alice = browser(server.base);
    await alice.request("POST", "/login", { user: "alice" });
    t.mock.timers.tick(8 * minute);
    assert.equal((await alice.request("GET", "/me")).body.user, "alice");
    t.mock.timers.tick(8 * minute); // 16 minutes in, 8 after the touch
    assert.equal((await alice.request("GET", "/me")).body.user, disableTouch ? null : "alice", `disableTouch ${disableTouch}`);
    await server.close();
    await vault.close();
  }
});

test("ids, length, all, clear, and a save with an expired cookie removes the session", async () => {
  const vault = store(freshDir());
  const exp = (ms) => ({ cookie: { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), path: "/" } });
  await vault.set("one", { ...exp(60_000), user: "a" });
  await vault.set("two", { ...exp(60_000), user: "b" });
  assert.deepEqual(await vault.ids(), ["one", "two"]);
  assert.equal(await vault.length(), 2);
  assert.deepEqual((await vault.all()).map((s) => s.user).sort(), ["a", "b"]);
  await vault.set("one", { ...exp(-1000), user: "a" });
  assert.equal(await vault.get("one"), null, "an expired cookie's save removes it");
  await new Promise((resolve, reject) => vault.clear((e) => (e ? reject(e) : resolve())));
  assert.equal(await vault.length(), 0);
  // A user id that is not a string or a number is refused, not indexed as "[object Object]".
  const indexed = store(freshDir(), { userId: "user" });
  await assert.rejects(indexed.set("x", { ...exp(60_000), user: { id: 1 } }), (e) => e.code === "invalid-input");
  await assert.rejects(
    store(freshDir(), { ttl: () => Number.NaN }).set("x", { cookie: {}, user: "a" }),
    (e) => e.code === "invalid-input" && /ttl must give/.test(e.message),
  );
  await indexed.close();
  await vault.close();
});

test("bad options are clear errors at construction", () => {
  assert.throws(() => store(freshDir(), { encryptionKey: "short" }), (e) => e.code === "invalid-input");
  assert.throws(() => store(freshDir(), { backend: "mongo" }), (e) => e.code === "invalid-input");
  assert.throws(() => store(freshDir(), { ttl: -1 }), (e) => e.code === "invalid-input");
  assert.throws(() => store(freshDir(), { ttl: 1e300 }), (e) => e.code === "invalid-input");
  assert.throws(() => store(freshDir(), { userId: 7 }), (e) => e.code === "invalid-input");
  assert.throws(
    () => store(path.join(freshDir(), "no-such-parent", "sessions")),
    (e) => e.code === "invalid-input" && /no-such-parent does not exist/.test(e.message),
  );
  assert.throws(
    () => new SessionVaultSessionStore({ encryptionKey: SECRET }),
    (e) => e.code === "invalid-input",
  );
});

test("a session damaged on disk is no session for the middleware, never a crash", async () => {
  const dir = freshDir();
  const vault = store(dir, { backend: "files" });
  const server = await serve(vault);
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  const sid = decodeURIComponent(alice.cookie.split("=")[1]).slice(2).split(".")[0];
  const file = path.join(dir, `${sid}.svs`);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(file, bytes);
  await vault.vault.close();
  const reopened = store(dir, { backend: "files" });
  const again = await serve(reopened);
  alice.withBase(again.base);
  const me = await alice.request("GET", "/me");
  assert.deepEqual([me.status, me.body], [200, { user: null, cart: null }]);
  assert.equal((await reopened.vault.check()).quarantined, 1, "quarantined, not served");
  await server.close();
  await again.close();
  await reopened.close();
});

test("a store held by another process: express-session gets the error, no hang", async () => {
  const dir = freshDir();
  const holder = store(dir);
  const open = await serve(holder);
  const alice = browser(open.base);
  await alice.request("POST", "/login", { user: "alice" });
  const blocked = store(dir, { lockTimeoutMs: 50 });
  const server = await serve(blocked);
  alice.withBase(server.base);
  // Past the lock timeout: the store has given up opening.
  await assert.rejects(blocked.vault.ready, (e) => e.code === "locked");
  const started = Date.now();
  // Reading the session fails: express-session hands the error to the app's handler.
  const me = await alice.request("GET", "/me");
  assert.equal(me.status, 500);
  assert.match(me.body.error, /locked|another process/i);
  assert.ok(Date.now() - started < 5_000, "no hang");
  await blocked.close(); // closing a store that never opened is fine
  await server.close();
  await open.close();
  await holder.close();
});
