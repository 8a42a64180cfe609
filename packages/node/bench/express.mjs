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

import autocannon from "autocannon";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
};
const SECONDS = Number(flag("seconds", 10));
const PREFILL = Number(flag("prefill", 20000));
const ONLY = flag("only", "");
const CONNECTIONS = 16;

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function redisServer() {
  try {
    return execFileSync("bash", ["-c", `. "${repo}/scripts/redis" && redis_install && command -v redis-server`], {
      encoding: "utf8",
    }).trim();
  } catch {
    throw new Error("redis-server is missing and could not be installed (scripts/redis)");
  }
}

async function startRedis(persistence) {
  const binary = redisServer();
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-redis-"));
  const flags =
    persistence === "always"
      ? ["--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"];
  const child = spawn(binary, ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", ...flags], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    stop: async () => {
      child.kill();
      await once(child, "exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startServer(options) {
  const child = spawn(process.execPath, [path.join(here, "express-server.mjs"), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  for await (const chunk of child.stdout) {
    output += chunk;
    if (output.includes("\n")) break;
  }
  const { port } = JSON.parse(output.split("\n")[0]);
  return {
    base: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

async function login(base) {
  const response = await fetch(`${base}/login`, { method: "POST" });
  if (!response.ok) throw new Error(`login: ${response.status}`);
  return response.headers.get("set-cookie").split(";")[0];
}

async function stats(base, reset) {
  return (await fetch(`${base}/stats${reset ? "?reset=1" : ""}`)).json();
}

async function load(base, request, seconds) {
  const result = await autocannon({
    url: base,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [request],
  });
  return {
    rate: Math.round(result.requests.total / seconds),
    failed: result.non2xx + result.errors + result.timeouts,
    p99: result.latency.p99,
    max: result.latency.max,
  };
}

async function measure(base) {
  const cookies = [];
  for (let i = 0; i < CONNECTIONS; i++) cookies.push(await login(base));
  let next = 0;
  const get = {
    method: "GET",
    path: "/me",
    setupRequest(request, context) {
      context.cookie ??= cookies[next++ % cookies.length];
      return { ...request, headers: { ...request.headers, cookie: context.cookie } };
    },
  };
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
