// session-vault/express under fastify with @fastify/session (which takes express-session
// stores), from the registry, on 127.0.0.1 over HTTP with cookies.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import Fastify from "fastify";
import { SessionVaultSessionStore } from "session-vault/express";

import { browser, inFlightGate } from "./http.mjs";

const SECRET = "fastify-test-secret-0123456789-abcdefghijklmnop";
const root = mkdtempSync(path.join(os.tmpdir(), "session-vault-fastify-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** `/slow` calls `gate.entered()` once it has its session, then waits for `gate.released`. */
async function serve(store, gate) {
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: "a-cookie-signing-secret-of-32-chars-or-more",
    saveUninitialized: false,
    cookie: { secure: false, maxAge: 60 * 60 * 1000 },
    store,
  });
  app.post("/login", async (request) => {
    request.session.set("user", request.body.user);
    return { ok: true };
  });
  app.get("/me", async (request) => ({ user: request.session.get("user") ?? null }));
  app.post("/slow", async (request) => {
    gate?.entered();
    await gate?.released;
    request.session.set("late", true);
    return { ok: true };
  });
  app.post("/logout", async (request) => {
    await request.session.destroy();
    return { ok: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { base: `http://127.0.0.1:${app.server.address().port}`, close: () => app.close() };
}

test("@fastify/session: log in, restart, log out, the old cookie refused", async () => {
  const dir = path.join(root, "store");
  let store = new SessionVaultSessionStore({ storageDir: dir, encryptionKey: SECRET });
  let server = await serve(store);
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  const cookie = alice.cookie;
  assert.ok(cookie, "a session cookie");
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: "alice" });
  assert.equal(await store.length(), 1);
  await server.close();
  await store.close();
  store = new SessionVaultSessionStore({ storageDir: dir, encryptionKey: SECRET });
  server = await serve(store);
  alice.withBase(server.base);
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: "alice" });
  await alice.request("POST", "/logout");
  alice.cookie = cookie;
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null });
  assert.equal(await store.length(), 0);
  await server.close();
  await store.close();
});

test("@fastify/session: a request in flight at logout does not bring the session back", async () => {
  const gate = inFlightGate();
  const store = new SessionVaultSessionStore({ storageDir: path.join(root, "in-flight"), encryptionKey: SECRET });
  const server = await serve(store, gate);
  const alice = browser(server.base);
  await alice.request("POST", "/login", { user: "alice" });
  const cookie = alice.cookie;
  const slow = alice.request("POST", "/slow");
  await gate.inside; // the slow request has its session
  await alice.request("POST", "/logout");
  gate.release();
  assert.deepEqual((await slow).body, { ok: true }, "the late save is not an error for the request");
  alice.cookie = cookie;
  assert.deepEqual((await alice.request("GET", "/me")).body, { user: null });
  assert.equal(await store.length(), 0);
  await server.close();
  await store.close();
});
