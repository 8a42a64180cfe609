// `npm run bench` (after express.mjs), or `npm run bench:redis`: the `redis` backend, one
// run, on a redis-server this script starts on 127.0.0.1 (no persistence; installed by
// ../../scripts/redis if missing).
//
// 1. What a call costs: create, get, set and a rolling touch of an express-session-shaped
//    session, each awaited, through the package on `redis`, the package on `log`
//    (relaxed), and the Rust host on the same server (`session-vault-bench --shapes`,
//    built by `cargo build --release -p session-vault-bench`; skipped if missing).
// 2. The express app of bench/express-server.mjs in 1 and 2 cluster workers on one port,
//    with session-vault on redis and with connect-redis, on the same server: requests per
//    second of a logged-in GET and of a login POST, 16 connections.
//
//   npm run bench:redis [-- --calls 2000 --seconds 10]

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { SessionVaultStore } from "../src/index.js";
import { CONNECTIONS, load, loggedInGet, startRedis, startServer } from "./servers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const CALLS = Number(flag("calls", 2000));
const SECONDS = Number(flag("seconds", 10));
const SECRET = "bench-store-secret-0123456789abcdefghijkl";
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-redis-bench-"));

/** An express session as express-session saves it, with a login's profile (~700 bytes). */
function expressDoc(n, expiresAt) {
  return {
    sessionId: `bench-${n}-${"x".repeat(24)}`,
    expiresAt,
    session: {
      cookie: { originalMaxAge: 86_400_000, expires: new Date(expiresAt).toISOString(), httpOnly: true, path: "/" },
      user: { id: `user-${n}`, name: `Benchmark User ${n}`, email: `user-${n}@example.com`, roles: ["reader", "writer"], token: "t".repeat(400) },
    },
    userContext: { userId: `user-${n}` },
  };
}

/** Microseconds a call of each operation, awaited one at a time, on `store`. */
async function perCall(store) {
  await store.ready;
  const expiresAt = Date.now() + 86_400_000;
  const docs = Array.from({ length: CALLS }, (_, n) => expressDoc(n, expiresAt));
  const time = async (f) => {
    const start = performance.now();
    for (let n = 0; n < CALLS; n++) await f(n);
    return ((performance.now() - start) * 1000) / CALLS;
  };
  const result = {};
  result.create = await time((n) => store.create(docs[n]));
  result.get = await time((n) => store.get(docs[n].sessionId));
  result.set = await time((n) => store.set(docs[n]));
  result.touch = await time((n) => store.touch(docs[n].sessionId, expiresAt + n));
  await store.close();
  return result;
}

/** The Rust host's `--shapes` figures for the express session on `url`, or undefined. */
function rustHost(url) {
  const bench = path.join(repo, "target/release/session-vault-bench");
  if (!existsSync(bench)) return undefined;
  const run = spawnSync(bench, ["--shapes", "--backend", "redis", "--redis", url, "--sessions", String(CALLS)], {
    encoding: "utf8",
  });
  if (run.status !== 0) return undefined;
  return run.stdout;
}

async function throughput(base) {
  const get = await loggedInGet(base);
  await load(base, get, SECONDS); // warm-up, discarded
  const reads = await load(base, get, SECONDS);
  const logins = await load(base, { method: "POST", path: "/login" }, SECONDS);
  return { reads, logins };
}

const redis = await startRedis("none");
try {
  console.log(`\n# the redis backend: ${CALLS} calls of each operation awaited one at a time, Node ${process.version}, ${os.cpus().length} cores`);
  const onRedis = await perCall(new SessionVaultStore({ backend: "redis", redisUrl: redis.url, prefix: "bench-calls", encryptionKey: SECRET }));
  const onLog = await perCall(
    new SessionVaultStore({ storageDir: path.join(scratch, "log"), encryptionKey: SECRET, durability: "relaxed" }),
  );
  const f = (us) => us.toFixed(0);
  console.log("| call, µs | package on redis | package on log (relaxed) |");
  console.log("|---|---:|---:|");
  for (const op of ["create", "get", "set", "touch"]) console.log(`| ${op} | ${f(onRedis[op])} | ${f(onLog[op])} |`);
  const rust = rustHost(redis.url);
  if (rust === undefined) console.log("\n(the Rust host's figures: build target/release/session-vault-bench first)");
  else console.log(`\nThe Rust host on the same server (session-vault-bench --shapes --backend redis):\n${rust}`);

  console.log(`\n# express-session on the redis server, ${CONNECTIONS} connections, ${SECONDS} s a phase`);
  console.log("| store | workers | GET/s | logins/s | failed |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [name, store] of [
    ["session-vault, redis backend", "session-vault-redis"],
    ["connect-redis", "connect-redis"],
  ]) {
    for (const workers of [1, 2]) {
      const server = await startServer({ store, redisUrl: redis.url, prefix: `bench-${store}-${workers}:`, workers });
      try {
        const { reads, logins } = await throughput(server.base);
        console.log(`| ${name} | ${workers} | ${reads.rate} | ${logins.rate} | ${reads.failed + logins.failed} |`);
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  await redis.stop();
  rmSync(scratch, { recursive: true, force: true });
}
