// The package beside the original FileSessionStore, on this Node, in one run: every
// operation at each size, then the open of the store each left (a server restart).
//
//   npm run bench [-- SIZES]       (default 10000,100000; e.g. npm run bench -- 1000)
//
// The original is compiled from ../shared/reference/original by scripts/build-original-driver
// (ORIGINAL_DRIVER=DIR reuses a build). It never syncs, so session-vault is measured
// `relaxed` beside it, and `durable` (every write synced) as a third column. Markdown
// tables go to stdout; BENCH_MARKDOWN=FILE also writes them there.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { SessionVaultStore } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const sizes = (process.argv[2] ?? "10000,100000").split(",").map(Number);
const SECRET = "benchmark-secret-of-at-least-32-characters";
const USERS = 97;
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-npm-bench-"));

function originalStore() {
  let driver = process.env.ORIGINAL_DRIVER;
  if (!driver) {
    driver = path.join(scratch, "driver");
    execFileSync(path.join(repo, "scripts/build-original-driver"), [driver], { stdio: "inherit" });
  }
  const file = path.join(driver, "dist/services/stores/file-session-store.js");
  if (!existsSync(file)) throw new Error(`${file} is missing: not a built driver`);
  const url = pathToFileURL(file).href;
  return import(url).then((m) => [m.FileSessionStore, url]);
}

// The shape of the original's benchmark sessions (its bench/src/driver.ts): ~1.1 KB of JSON.
function session(i, now) {
  const u = i % USERS;
  return {
    sessionId: `s${String(i).padStart(6, "0")}-${randomBytes(8).toString("hex")}`,
    sessionToken: randomBytes(24).toString("base64url"),
    userContext: {
      userId: `user-${u}`,
      email: `user${u}@example.org`,
      name: `User ${u} Ünïcødé`,
      tenantId: "tenant-1",
      roles: ["reader", i % 5 === 0 ? "admin" : "member"],
    },
    tokenMetadata: {
      accessToken: randomBytes(300).toString("base64"),
      refreshToken: randomBytes(200).toString("base64"),
      expiresAt: now + 3_600_000,
      scopes: ["openid", "profile", "offline_access"],
    },
    security: {
      ipAddress: `10.0.${i % 250}.${i % 200}`,
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) Test/1.0",
      createdAt: now,
      lastAccessedAt: now,
      accessCount: 1,
      fingerprint: randomBytes(16).toString("hex"),
    },
    expiresAt: now + 86_400_000,
    createdAt: now,
  };
}

async function timed(count, f) {
  const start = process.hrtime.bigint();
  await f();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return count / seconds;
}

/** Every operation on a store `open()` makes; ops/s, and the reopen in ms. */
async function measure(open, reopen, n) {
  const now = Date.now();
  const sessions = Array.from({ length: n }, (_, i) => session(i, now));
  const store = await open();
  const result = {};
  result.create = await timed(n, async () => {
    for (const s of sessions) await store.create(s);
  });
  result.get = await timed(n, async () => {
    for (const s of sessions) await store.get(s.sessionId);
  });
  // What a session manager does on each request: the new access in `security`.
  result.update = await timed(n, async () => {
    for (const s of sessions) {
      await store.update(s.sessionId, { security: { lastAccessedAt: now + 1, accessCount: 2 } });
    }
  });
  // The original has no touch: its users update, as above.
  result.touch = await timed(n, async () => {
    for (const s of sessions) {
      if (store.touch) await store.touch(s.sessionId);
      else await store.update(s.sessionId, { security: { lastAccessedAt: now + 2, accessCount: 3 } });
    }
  });
  result["getUserSessions"] = await timed(USERS, async () => {
    for (let u = 0; u < USERS; u++) await store.getUserSessions(`user-${u}`);
  });
  result.getSessionCount = await timed(1000, async () => {
    for (let i = 0; i < 1000; i++) await store.getSessionCount();
  });
  await store.close?.();
  result.open = restart(n);
  const reopened = await reopen(n);
  const half = sessions.slice(0, n / 2);
  result.delete = await timed(half.length, async () => {
    for (const s of half) await reopened.delete(s.sessionId);
  });
  await reopened.close?.();
  return result;
}

/**
 * A server restart: a new Node process that imports the store, opens the directory and
 * waits until it serves all `n` sessions; the time from before the import (the component
 * compiled afresh, as in a real start) to then, in ms.
 */
let restart;

function vault(dir, durability) {
  const open = async () => {
    const store = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET, durability });
    await store.ready;
    return store;
  };
  restart = (n) =>
    child(`const start = performance.now();
      const { SessionVaultStore } = await import(${JSON.stringify(new URL("../src/index.js", import.meta.url).href)});
      const store = new SessionVaultStore({ storageDir: ${JSON.stringify(dir)}, encryptionKey: ${JSON.stringify(SECRET)} });
      if ((await store.getSessionCount()) !== ${n}) throw new Error("not every session");
      console.log(performance.now() - start);
      await store.close();`);
  return [open, open];
}

function original(FileSessionStore, url, dir) {
  const open = async (n = 0) => {
    const store = new FileSessionStore({ storageDir: dir, encryptionKey: SECRET });
    // Its constructor rebuilds the index in the background: wait until it has every session.
    while ((await store.getSessionCount()) < n) await new Promise((r) => setImmediate(r));
    if (n === 0) await new Promise((r) => setTimeout(r, 50));
    return store;
  };
  restart = (n) =>
    child(`const start = performance.now();
      const { FileSessionStore } = await import(${JSON.stringify(url)});
      const store = new FileSessionStore({ storageDir: ${JSON.stringify(dir)}, encryptionKey: ${JSON.stringify(SECRET)} });
      while ((await store.getSessionCount()) < ${n}) await new Promise((r) => setImmediate(r));
      console.log(performance.now() - start);`);
  return [() => open(0), (n) => open(n)];
}

function child(script) {
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  return Number(out.trim().split("\n").pop());
}

const fmt = (v) => (v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));
const [FileSessionStore, originalUrl] = await originalStore();
const lines = [];
const say = (line = "") => {
  console.log(line);
  lines.push(line);
};
try {
  say(`Node ${process.version}, ${os.cpus().length} cores, ${os.platform()} ${os.release()}; ${new Date().toISOString().slice(0, 10)}.`);
  for (const n of sizes) {
    const dir = (name) => path.join(scratch, `${name}-${n}`);
    console.error(`== ${n} sessions: the original`);
    const orig = await measure(...original(FileSessionStore, originalUrl, dir("original")), n);
    console.error(`== ${n} sessions: session-vault, relaxed`);
    const relaxed = await measure(...vault(dir("relaxed"), "relaxed"), n);
    console.error(`== ${n} sessions: session-vault, durable`);
    const durable = await measure(...vault(dir("durable"), "durable"), n);
    say();
    const bytes = JSON.stringify(session(0, Date.now())).length;
    say(
      `${n.toLocaleString("en-US")} sessions of ${bytes.toLocaleString("en-US")} bytes of JSON (the original's benchmark sessions), ${USERS} users (ops/s; open in ms):`,
    );
    say();
    say("| operation | original | session-vault relaxed | ÷ original | session-vault durable | ÷ original |");
    say("|---|---:|---:|---:|---:|---:|");
    for (const op of Object.keys(orig)) {
      const ratio = (ours) => (op === "open" ? orig[op] / ours : ours / orig[op]);
      const label =
        op === "touch"
          ? "touch (original: update)"
          : op === "open"
            ? "open (a restart: new process, ms)"
            : op;
      say(
        `| ${label} | ${fmt(orig[op])} | ${fmt(relaxed[op])} | ${ratio(relaxed[op]).toFixed(1)}× | ${fmt(durable[op])} | ${ratio(durable[op]).toFixed(1)}× |`,
      );
    }
    for (const name of ["original", "relaxed", "durable"]) rmSync(dir(name), { recursive: true, force: true });
  }
  if (process.env.BENCH_MARKDOWN) writeFileSync(process.env.BENCH_MARKDOWN, `${lines.join("\n")}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
