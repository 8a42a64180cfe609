// The `redis` backend of the installed package, against a real redis-server: the one
// scripts/test starts (SESSION_VAULT_TEST_REDIS_URL), and one this file starts and
// SIGKILLs itself. Several Node processes (the cluster module) and the Rust CLI share one
// store; stores cross between the package and the CLI; a server that is away is a typed
// error within the timeout, and the store serves again once it is back.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";

import { createClient, RESP_TYPES } from "@redis/client";
import { CorruptedError, InvalidInputError, SessionVaultStore, UnavailableError } from "session-vault";

const url = process.env.SESSION_VAULT_TEST_REDIS_URL;
const cli = process.env.SESSION_VAULT_CLI;
if (!url) {
  // CI always has a server (scripts/test starts one); a developer's run may not.
  assert.ok(!process.env.CI, "CI needs SESSION_VAULT_TEST_REDIS_URL: run the tests through scripts/test");
  console.log("# no SESSION_VAULT_TEST_REDIS_URL (scripts/test starts a server): skipped");
  process.exit(0);
}
assert.ok(cli && existsSync(cli), `SESSION_VAULT_CLI (${cli}) is the built Rust CLI`);

const RAW_KEY = "7f".repeat(32);
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-redis-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let prefixes = 0;
const freshPrefix = () => `t${process.pid}-${Date.now() % 100000}-${++prefixes}:`;
const MARKER = "plaintext-marker-that-must-never-reach-redis";

function open(prefix, extra = {}) {
  return new SessionVaultStore({ backend: "redis", redisUrl: url, prefix, rawKey: RAW_KEY, ...extra });
}

function doc(sessionId, userId, extra = {}) {
  const at = Date.now();
  return {
    sessionId,
    expiresAt: at + 3_600_000,
    userContext: { userId },
    security: { ipAddress: "127.0.0.1", userAgent: MARKER, createdAt: at, lastAccessedAt: at, accessCount: 1 },
    ...extra,
  };
}

/** The Rust CLI on the store `prefix` of the test server. */
function runCli(prefix, args, input) {
  const result = spawnSync(cli, ["--redis", url, "--prefix", prefix, ...args], {
    input,
    encoding: "utf8",
    env: { ...process.env, SESSION_VAULT_SECRET: `hex:${RAW_KEY}`, SESSION_VAULT_CACHE_DIR: path.join(scratch, "cache") },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every key under `prefix` on the test server, with its value (a stream's frames, an index's members). */
async function serverKeys(prefix) {
  const client = createClient({ url });
  await client.connect();
  try {
    const name = prefix.replace(/:+$/, "");
    const keys = await client.keys(`{${name}}:*`);
    const found = [];
    for (const key of keys) {
      const type = await client.type(key);
      const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      let value;
      if (type === "string") value = await binary.get(key);
      else if (type === "stream") {
        // The version ledger: every frame's bytes.
        const entries = await binary.xRange(key, "-", "+");
        value = Buffer.concat(entries.map((entry) => Buffer.from(entry.message.f)));
      } else value = Buffer.from(JSON.stringify(await client.zRange(key, 0, -1)));
      found.push({ key, value });
    }
    return found;
  } finally {
    await client.close();
  }
}

test("several Node processes (cluster workers) and the Rust CLI on one store: no touch lost, each id created once, a revoke seen at once", async () => {
  const prefix = freshPrefix();
  const setup = open(prefix);
  const HOT = ["hot-0", "hot-1"];
  for (const id of HOT) await setup.create(doc(id, "alice"));
  await setup.create(doc("carol-0", "carol"));
  await setup.close();

  const program = path.join(scratch, "cluster.mjs");
  writeFileSync(
    program,
    `import cluster from "node:cluster";
import { AlreadyExistsError, SessionVaultStore } from ${JSON.stringify(import.meta.resolve("session-vault"))};
const WORKERS = 3, TOUCHES = 20, RACE = 15;
if (cluster.isPrimary) {
  const results = [];
  for (let i = 0; i < WORKERS; i++) cluster.fork({ WORKER_INDEX: String(i) });
  cluster.on("message", (worker, message) => {
    results.push(message);
    if (results.length === WORKERS) {
      console.log(JSON.stringify(results));
      for (const w of Object.values(cluster.workers)) w.send("exit");
    }
  });
} else {
  const store = new SessionVaultStore({ backend: "redis", redisUrl: process.env.URL, prefix: process.env.PREFIX, rawKey: process.env.RAW_KEY });
  await store.ready;
  const index = Number(process.env.WORKER_INDEX);
  const created = [];
  for (let n = 0; n < RACE; n++) {
    try {
      await store.create({ sessionId: "race-" + n, expiresAt: Date.now() + 600000, session: { by: index } });
      created.push(n);
    } catch (e) {
      if (!(e instanceof AlreadyExistsError)) throw e;
    }
  }
  let touched = 0;
  for (let t = 0; t < TOUCHES; t++) {
    if (await store.touch(${JSON.stringify(HOT)}[(t + index) % 2])) touched++;
  }
  // One process revokes carol; the test's own store sees it on its next read.
  if (index === 0) await store.revokeUser("carol");
  process.send({ index, created, touched, carol: index === 0 ? "revoked" : undefined });
  process.on("message", async () => {
    await store.close();
    process.exit(0);
  });
}
`,
  );
  const env = { ...process.env, URL: url, PREFIX: prefix, RAW_KEY };
  const child = spawn(process.execPath, [program], { cwd: process.cwd(), env, stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  // Beside the workers, the CLI touches the same sessions.
  let cliTouches = 0;
  for (let i = 0; i < 4; i++) {
    const result = runCli(prefix, ["touch", HOT[i % 2]]);
    assert.equal(result.code, 0, result.stderr);
    cliTouches++;
  }
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
  const results = JSON.parse(output.trim().split("\n").pop());
  assert.equal(results.length, 3);

  const check = open(prefix);
  try {
    const touches = results.reduce((sum, r) => sum + r.touched, 0);
    assert.equal(touches, 3 * 20, "every touch found its session");
    let counted = 0;
    for (const id of HOT) counted += (await check.get(id)).security.accessCount - 1;
    assert.equal(counted, touches + cliTouches, "no touch lost between processes");
    const created = results.flatMap((r) => r.created).sort((a, b) => a - b);
    assert.deepEqual(created, Array.from({ length: 15 }, (_, n) => n), "each id created exactly once");
    assert.equal(await check.get("carol-0"), null, "the revoke of one process is seen by another at once");
    assert.deepEqual(await check.getUserSessions("carol"), []);
    for (const { key, value } of await serverKeys(prefix)) {
      assert.ok(!value.includes(MARKER), `${key} holds plaintext`);
      assert.ok(!value.includes("alice"), `${key} names a user in clear`);
    }
  } finally {
    await check.close();
  }
});

test("stores cross between the package and the Rust CLI both ways, under a prefix written sess:-style", async () => {
  const prefix = freshPrefix();
  const store = open(prefix);
  try {
    await store.create(doc("from-node", "dave", { session: { by: "node" } }));
    const read = runCli(prefix.replace(/:$/, ""), ["get", "from-node"]);
    assert.equal(read.code, 0, read.stderr);
    assert.deepEqual(JSON.parse(read.stdout).session, { by: "node" });
    const written = runCli(prefix, ["create"], JSON.stringify(doc("from-cli", "dave", { session: { by: "cli" } })));
    assert.equal(written.code, 0, written.stderr);
    assert.deepEqual((await store.get("from-cli")).session, { by: "cli" });
    assert.equal((await store.getUserSessions("dave")).length, 2);
  } finally {
    await store.close();
  }
});

test("bad redis options are invalid-input at construction; a server that is not there is UnavailableError within the timeout", async () => {
  for (const options of [
    { redisUrl: "not a url" },
    { redisUrl: "http://127.0.0.1:6379" },
    { redisUrl: url, prefix: "bad prefix" },
    { redisUrl: url, prefix: ":" },
    { redisUrl: url, prefix: "a{b}" },
    { redisUrl: url, redisTimeoutMs: 0 },
  ]) {
    assert.throws(
      () => new SessionVaultStore({ backend: "redis", rawKey: RAW_KEY, ...options }),
      (e) => e instanceof InvalidInputError && e.code === "invalid-input",
      JSON.stringify(options),
    );
  }
  const port = await freePort();
  const started = Date.now();
  const store = new SessionVaultStore({
    backend: "redis",
    redisUrl: `redis://127.0.0.1:${port}/0`,
    rawKey: RAW_KEY,
    redisTimeoutMs: 300,
  });
  await assert.rejects(store.ready, (e) => {
    assert.ok(e instanceof UnavailableError, `${e}`);
    assert.equal(e.code, "unavailable");
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    return true;
  });
  assert.ok(Date.now() - started < 5_000, "within the timeout, not a hang");
  await assert.rejects(store.get("any-id"), (e) => e.code === "unavailable");
  await store.close();
});

test("a store whose server was away when it opened opens on a later call once the server is there", async () => {
  const server = await startServer();
  server.kill();
  await server.exited;
  const store = new SessionVaultStore({ backend: "redis", redisUrl: server.url, rawKey: RAW_KEY, redisTimeoutMs: 300 });
  try {
    await assert.rejects(store.ready, (e) => e instanceof UnavailableError);
    await assert.rejects(store.get("absent-id"), (e) => e instanceof UnavailableError);
    await server.restart();
    assert.equal(await store.get("absent-id"), null, "opened on this call");
    await store.create(doc("after-restart", "gina"));
    assert.notEqual(await store.get("after-restart"), null);
  } finally {
    await store.close();
    server.kill();
    await server.exited;
  }
});

test("redis-server SIGKILLed and restarted mid-load: nothing acknowledged lost, typed errors while it is away, served again after", async () => {
  const server = await startServer();
  const store = new SessionVaultStore({
    backend: "redis",
    redisUrl: server.url,
    rawKey: RAW_KEY,
    redisTimeoutMs: 400,
  });
  try {
    await store.ready;
    const acknowledged = [];
    for (let n = 0; n < 30; n++) {
      await store.create(doc(`kept-${n}`, "erin"));
      acknowledged.push(`kept-${n}`);
    }
    server.kill();
    await server.exited;
    const started = Date.now();
    await assert.rejects(store.create(doc("while-away", "erin")), (e) => {
      assert.ok(e instanceof UnavailableError, `${e}`);
      return true;
    });
    await assert.rejects(store.get("kept-0"), (e) => e instanceof UnavailableError);
    assert.ok(Date.now() - started < 5_000, "each call fails within the timeout");
    await server.restart();
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      try {
        await store.get("kept-0");
        back = true;
      } catch (e) {
        assert.ok(e instanceof UnavailableError, `${e}`);
        await sleep(100);
      }
    }
    assert.ok(back, "the store serves again once the server is back");
    for (const id of acknowledged) assert.notEqual(await store.get(id), null, `${id} was acknowledged`);
    assert.equal(await store.getSessionCount(), acknowledged.length);
  } finally {
    await store.close();
    server.kill();
    await server.exited;
  }
});

function freePort() {
  return new Promise((resolve) => {
    const listener = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = listener.address();
      listener.close(() => resolve(port));
    });
  });
}

/** A redis-server of this test's own (appendfsync always), which it can SIGKILL and restart. */
async function startServer() {
  const binary = spawnSync("bash", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();
  assert.ok(binary, "redis-server is installed (scripts/redis)");
  const dir = mkdtempSync(path.join(scratch, "server-"));
  const port = await freePort();
  let child;
  let exited;
  const start = async () => {
    child = spawn(
      binary,
      ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
      { stdio: "ignore" },
    );
    exited = once(child, "exit");
    for (let i = 0; i < 100; i++) {
      const up = await new Promise((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => {
          socket.end();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
      if (up) return;
      await sleep(50);
    }
    throw new Error("redis-server did not start");
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    kill: () => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"),
    get exited() {
      return exited;
    },
    restart: start,
  };
}

test("express-session in two cluster workers behind one port: log in on one, use the session on the other, log out on either", async () => {
  const prefix = freshPrefix();
  const port = await freePort();
  const program = path.join(scratch, "express-cluster.mjs");
  const resolve = (name) => JSON.stringify(import.meta.resolve(name));
  writeFileSync(
    program,
    `import cluster from "node:cluster";
if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on("listening", () => {
    if (++listening === 2) console.log("listening");
  });
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  const express = (await import(${resolve("express")})).default;
  const session = (await import(${resolve("express-session")})).default;
  const { SessionVaultSessionStore } = await import(${resolve("session-vault/express")});
  const store = new SessionVaultSessionStore({ backend: "redis", redisUrl: process.env.URL, prefix: process.env.PREFIX, rawKey: process.env.RAW_KEY, userId: "user" });
  const app = express();
  app.use(express.json());
  app.use(session({ secret: "cookie-signing-secret", store, resave: false, saveUninitialized: false }));
  app.post("/login", (req, res, next) => req.session.regenerate((e) => {
    if (e) return next(e);
    req.session.user = req.body.user;
    res.json({ pid: process.pid });
  }));
  app.get("/me", (req, res) => res.status(req.session.user ? 200 : 401).json({ user: req.session.user ?? null, pid: process.pid }));
  app.post("/logout", (req, res, next) => req.session.destroy((e) => (e ? next(e) : res.json({ pid: process.pid }))));
  app.listen(Number(process.env.PORT), "127.0.0.1");
}
`,
  );
  const child = spawn(process.execPath, [program], {
    env: { ...process.env, URL: url, PREFIX: prefix, RAW_KEY, PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    for await (const chunk of child.stdout) if (String(chunk).includes("listening")) break;
    const base = `http://127.0.0.1:${port}`;
    // A new connection for every request: the cluster's round robin spreads them.
    const request = async (method, route, cookie, body) => {
      const response = await fetch(base + route, {
        method,
        headers: { connection: "close", ...(cookie ? { cookie } : {}), ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, cookie: response.headers.get("set-cookie")?.split(";")[0], body: await response.json() };
    };
    const login = await request("POST", "/login", undefined, { user: "frank" });
    assert.equal(login.status, 200);
    const cookie = login.cookie;
    const pids = new Set();
    for (let i = 0; i < 8; i++) {
      const me = await request("GET", "/me", cookie);
      assert.equal(me.status, 200);
      assert.equal(me.body.user, "frank");
      pids.add(me.body.pid);
    }
    assert.equal(pids.size, 2, "both workers served the session");
    const logout = await request("POST", "/logout", cookie);
    assert.equal(logout.status, 200);
    for (let i = 0; i < 4; i++) {
      const me = await request("GET", "/me", cookie);
      assert.equal(me.status, 401, "the old cookie is refused by every worker");
      pids.add(me.body.pid);
    }
  } finally {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
});

test("a logout on one host is final: a request in flight on another cannot bring the session back, by its save or its touch", async () => {
  const prefix = freshPrefix();
  const { SessionVaultSessionStore } = await import("session-vault/express");
  const options = { backend: "redis", redisUrl: url, prefix, rawKey: RAW_KEY };
  // Two hosts: each its own component, thread and connection; they share only the server.
  const a = new SessionVaultSessionStore(options);
  const b = new SessionVaultSessionStore(options);
  try {
    const cookie = { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() };
    await a.set("sess-inflight-aaaaaaaaaaaaa", { cookie, user: "hana", cart: [] });
    // A request on host a has read the session and will save (or touch) it later...
    const inFlight = await a.get("sess-inflight-aaaaaaaaaaaaa");
    assert.equal(inFlight.user, "hana");
    // ...when the user logs out through host b.
    await b.destroy("sess-inflight-aaaaaaaaaaaaa");
    inFlight.cart.push("book");
    await a.set("sess-inflight-aaaaaaaaaaaaa", inFlight);
    await a.touch("sess-inflight-aaaaaaaaaaaaa", inFlight);
    assert.equal(await b.get("sess-inflight-aaaaaaaaaaaaa"), null, "gone on the host that logged out");
    assert.equal(await a.get("sess-inflight-aaaaaaaaaaaaa"), null, "and on the host whose request was in flight");
  } finally {
    await a.close();
    await b.close();
  }
});

test("with several component threads, calls still run in the order made: a call on every session waits for those before it, and those after wait for it", async () => {
  const store = open(freshPrefix(), { redisConcurrency: 4 });
  try {
    // None awaited before the next is made.
    const created = Array.from({ length: 24 }, (_, n) => store.create(doc(`ivy-${n}`, "ivy")));
    const revoked = store.revokeUser("ivy");
    const after = Array.from({ length: 24 }, (_, n) => store.get(`ivy-${n}`));
    const recreated = store.create(doc("ivy-new", "ivy"));
    const counted = store.getSessionCount();
    await Promise.all(created);
    assert.equal(await revoked, 24, "the revoke saw every create made before it");
    for (const read of after) assert.equal(await read, null, "no read made after the revoke sees a session");
    await recreated;
    assert.equal(await counted, 1, "the count made after the create saw it");
    assert.equal((await store.getUserSessions("ivy")).length, 1);
  } finally {
    await store.close();
  }
});

test("hostile index members are dropped, not obeyed: one starting with a byte-order mark does not stall cleanup", async () => {
  const prefix = freshPrefix();
  const store = open(prefix);
  const client = createClient({ url });
  await client.connect();
  try {
    await store.create(doc("bom-live", "ivan"));
    const name = prefix.replace(/:+$/, "");
    // Planted in the expiry index, scored long past: cleanup ranges over it.
    await client.zAdd(`{${name}}:x`, { score: 1, value: Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x62, 0x63]) });
    const started = Date.now();
    assert.equal(await store.cleanup(), 0);
    assert.ok(Date.now() - started < 5_000, "cleanup ends");
    assert.equal(await client.zCard(`{${name}}:x`), 1, "the planted member is gone, the live session's stays");
    assert.notEqual(await store.get("bom-live"), null);
  } finally {
    await client.close();
    await store.close();
  }
});

test("a store closed before its server ever answered rejects later calls at once; a URL the client cannot use is invalid-input", async () => {
  const port = await freePort();
  const store = new SessionVaultStore({ backend: "redis", redisUrl: `redis://127.0.0.1:${port}/0`, rawKey: RAW_KEY, redisTimeoutMs: 200 });
  await assert.rejects(store.ready, (e) => e instanceof UnavailableError);
  await store.close();
  const started = Date.now();
  await assert.rejects(store.get("any-id"), /closed/);
  assert.ok(Date.now() - started < 1_000, "at once");
  assert.throws(
    () => new SessionVaultStore({ backend: "redis", redisUrl: `redis://127.0.0.1:${port}/abc`, rawKey: RAW_KEY }),
    (e) => e instanceof InvalidInputError,
  );
});

test("a value put back in Redis (RESTORE of an earlier DUMP) is refused: a session rolled back, and one brought back after its logout", async () => {
  const prefix = freshPrefix();
  const writer = open(prefix);
  const reader = open(prefix);
  const client = createClient({ url });
  await client.connect();
  const binary = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const key = (id) => `{${prefix.replace(/:+$/, "")}}:s:${id}`;
  const dump = async (id) => Buffer.from(await binary.sendCommand(["DUMP", key(id)]));
  const restore = (id, saved) => client.sendCommand(["RESTORE", key(id), "0", saved, "REPLACE"]);
  try {
    await writer.create({ ...doc("rolled", "alice"), session: { role: "admin" } });
    const admin = await dump("rolled");
    await writer.update("rolled", { session: { role: "viewer" } });
    await restore("rolled", admin);
    await assert.rejects(reader.get("rolled"), (error) => error instanceof CorruptedError && /put back/.test(error.message));
    assert.equal(await reader.get("rolled"), null, "quarantined, never served");

    await writer.create(doc("gone", "alice"));
    const saved = await dump("gone");
    await writer.delete("gone");
    await restore("gone", saved);
    await assert.rejects(reader.get("gone"), (error) => error instanceof CorruptedError && /removed/.test(error.message));
    await restore("gone", saved);
    // A store opened afterwards reads the ledger at open and refuses it too.
    const late = open(prefix);
    await assert.rejects(late.touch("gone"), CorruptedError);
    await late.close();
  } finally {
    await client.close();
    await writer.close();
    await reader.close();
  }
});

test("two requests on two hosts, changing different members of one session at once, both keep their change (no lost update across processes)", async () => {
  const prefix = freshPrefix();
  const { SessionVaultSessionStore } = await import("session-vault/express");
  const options = { backend: "redis", redisUrl: url, prefix, rawKey: RAW_KEY };
  // Two hosts: each its own component, thread and connection; they share only the server.
  const a = new SessionVaultSessionStore(options);
  const b = new SessionVaultSessionStore(options);
  const sid = "sess-race-across-hosts-aaaa";
  try {
    const cookie = { originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString() };
    await a.set(sid, { cookie, user: "ines", prefs: {} });
    for (let round = 0; round < 20; round++) {
      // Both requests read the session before either saves (connect-redis #75).
      const [first, second] = await Promise.all([a.get(sid), b.get(sid)]);
      first.prefs[`a${round}`] = round;
      second.prefs[`b${round}`] = round;
      await Promise.all([a.set(sid, first), b.set(sid, second)]);
    }
    const stored = await a.get(sid);
    const expected = {};
    for (let round = 0; round < 20; round++) Object.assign(expected, { [`a${round}`]: round, [`b${round}`]: round });
    assert.deepEqual(stored.prefs, expected, "every change of every round kept");
    assert.equal(stored.user, "ines");
  } finally {
    await a.close();
    await b.close();
  }
});
