// What the express benchmarks share (express.mjs, redis.mjs): a redis-server on
// 127.0.0.1 (installed by ../../scripts/redis if missing), the express app of
// express-server.mjs in a process of its own, logged-in browsers, and autocannon's load.

import autocannon from "autocannon";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");

/** Connections the load keeps open, each a browser with its own session. */
export const CONNECTIONS = 16;

export function freePort() {
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

/**
 * A redis-server on a free port of 127.0.0.1, without persistence (`"none"`) or with
 * `appendfsync always` (`"always"`): `{ url, stop }`.
 */
export async function startRedis(persistence) {
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

/** express-server.mjs with `options`, listening: `{ base, stop }`. */
export async function startServer(options) {
  const child = spawn(process.execPath, [path.join(here, "express-server.mjs"), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  for await (const chunk of child.stdout) {
    output += chunk;
    if (output.includes("\n")) break;
  }
  child.stdout.resume();
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

/** The logged-in `GET /me` of CONNECTIONS browsers, each logged in now, one a connection. */
export async function loggedInGet(base) {
  const cookies = [];
  for (let i = 0; i < CONNECTIONS; i++) cookies.push(await login(base));
  let next = 0;
  return {
    method: "GET",
    path: "/me",
    setupRequest(request, context) {
      context.cookie ??= cookies[next++ % cookies.length];
      return { ...request, headers: { ...request.headers, cookie: context.cookie } };
    },
  };
}

/** `request` on CONNECTIONS connections for `seconds`: its rate, failures and latency. */
export async function load(base, request, seconds) {
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
