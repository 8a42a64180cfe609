// `npm run bench` (after bench.mjs), or `npm run bench:express`: requests per second of a
// minimal express app (bench/express-server.mjs) on each store a Node server would pick,
// one run, 16 connections: a logged-in GET that reads and touches the session, and a login
// POST that saves a new one. Beside each figure, the
// server's event-loop delay (p99 and max) and the requests' latency (p99 and max).
//
//   npm run bench:express [-- --seconds 10 --prefill 20000 --only session-vault]
//
// session-vault runs on the `log` backend, durable and relaxed, with `--prefill` sessions
// stored first (about 15 MiB of a 16 MiB segment: the run goes through a segment roll and
// compactions of the full segment). connect-redis runs on a redis-server this script
// starts on 127.0.0.1 (installed by ../../scripts/redis if it is missing), once without
// persistence and once with `appendfsync always`.

import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { CONNECTIONS, load, loggedInGet, startRedis, startServer } from "./servers.mjs";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const SECONDS = Number(flag("seconds", 10));
const PREFILL = Number(flag("prefill", 20000));
const ONLY = flag("only", "");

async function stats(base, reset) {
  return (await fetch(`${base}/stats${reset ? "?reset=1" : ""}`)).json();
}

async function measure(base) {
  const get = await loggedInGet(base);
  await load(base, get, 1); // warm-up
  await stats(base, true);
  const reads = await load(base, get, SECONDS);
  const readLoop = await stats(base, true);
  const logins = await load(base, { method: "POST", path: "/login" }, SECONDS);
  const loginLoop = await stats(base, true);
  return { reads, readLoop, logins, loginLoop };
}

function logSegments(dir) {
  try {
    return readdirSync(path.join(dir, "log")).filter((name) => name.endsWith(".seg")).sort();
  } catch {
    return [];
  }
}

const rows = [
  { name: "express-session MemoryStore", options: { store: "memory" } },
  { name: "session-vault log, relaxed", options: { store: "session-vault", durability: "relaxed" }, vault: true },
  { name: "session-vault log, durable", options: { store: "session-vault", durability: "durable" }, vault: true },
  { name: "connect-redis, no persistence", options: { store: "connect-redis" }, redis: "none" },
  { name: "connect-redis, appendfsync always", options: { store: "connect-redis" }, redis: "always" },
  { name: "session-file-store with secret", options: { store: "session-file-store" } },
].filter((row) => row.name.includes(ONLY));

console.log(
  `# ${CONNECTIONS} connections, ${SECONDS} s a phase, Node ${process.version}, ${os.cpus().length} cores` +
    (rows.some((row) => row.vault) ? `; session-vault prefilled with ${PREFILL} sessions` : ""),
);
console.log("| store | GET/s | GET latency p99 / max ms | event loop p99 / max ms | logins/s | login latency p99 / max ms | event loop p99 / max ms | failed |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
const notes = [];
for (const row of rows) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-store-"));
  const redis = row.redis ? await startRedis(row.redis) : undefined;
  const server = await startServer({ ...row.options, dir, redisUrl: redis?.url, prefill: row.vault ? PREFILL : 0 });
  const before = logSegments(dir);
  try {
    const { reads, readLoop, logins, loginLoop } = await measure(server.base);
    console.log(
      `| ${row.name} | ${reads.rate} | ${reads.p99} / ${reads.max} | ${readLoop.p99} / ${readLoop.max} | ` +
        `${logins.rate} | ${logins.p99} / ${logins.max} | ${loginLoop.p99} / ${loginLoop.max} | ${reads.failed + logins.failed} |`,
    );
    if (row.vault) {
      const after = logSegments(dir);
      notes.push(`${row.name}: log segments ${before.join(",")} before the run, ${after.join(",")} after`);
    }
  } finally {
    await server.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
for (const note of notes) console.log(`- ${note}`);
