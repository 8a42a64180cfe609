// The benchmark's server: a minimal express app with express-session on one store, as a
// login server runs it. `node bench/express-server.mjs '<json options>'` listens on
// 127.0.0.1 on a free port and prints `{"port":N}`. Routes:
//   POST /login   a new session with a user's profile (about 700 bytes), saved by the store
//   GET  /me      the logged-in user (401 without a session); the store reads the session
//                 and express-session touches it
//   GET  /stats   the event-loop delay since the last `/stats?reset=1`, in milliseconds
// Options: { store: "memory" | "session-vault" | "session-vault-redis" |
//   "session-file-store" | "connect-redis", dir, durability, redisUrl, prefix, prefill
//   (sessions stored before listening), workers (cluster workers sharing the port; 1: none) }.

import cluster from "node:cluster";
import express from "express";
import session from "express-session";
import { randomBytes } from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";

const options = JSON.parse(process.argv[2] ?? "{}");
if ((options.workers ?? 1) > 1 && cluster.isPrimary) {
  // The workers share one port (the primary hands connections round robin); the first to
  // listen reports it.
  let reported = false;
  for (let i = 0; i < options.workers; i++) cluster.fork();
  cluster.on("listening", (worker, address) => {
    if (reported) return;
    reported = true;
    console.log(JSON.stringify({ port: address.port }));
  });
  process.on("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill("SIGTERM");
    setTimeout(() => process.exit(0), 500);
  });
  await new Promise(() => {});
}
const SECRET = "bench-cookie-signing-secret-0123456789";
const STORE_SECRET = "bench-store-secret-0123456789abcdefghijkl";
const DAY_MS = 86_400_000;

function profile(n) {
  return {
    id: `user-${n}`,
    name: `Benchmark User ${n}`,
    email: `user-${n}@example.com`,
    roles: ["reader", "writer"],
    permissions: ["sessions:read", "sessions:write", "profile:read", "profile:write"],
    accessToken: randomBytes(96).toString("base64url"),
    refreshToken: randomBytes(96).toString("base64url"),
    loginAt: Date.now(),
  };
}

async function makeStore() {
  switch (options.store) {
    case "memory":
      return { store: undefined, close: async () => {} };
    case "session-vault": {
      const { SessionVaultSessionStore } = await import("../src/express.js");
      const store = new SessionVaultSessionStore({
        storageDir: options.dir,
        encryptionKey: STORE_SECRET,
        durability: options.durability,
        backend: "log",
        userId: "user.id",
      });
      await store.vault.ready;
      // Sessions stored before the run, so that it goes through a segment roll and
      // compactions of a full segment.
      const expiresAt = Date.now() + DAY_MS;
      for (let done = 0; done < (options.prefill ?? 0); done += 1000) {
        const batch = [];
        for (let i = done; i < Math.min(done + 1000, options.prefill); i++) {
          const sessionId = randomBytes(24).toString("base64url");
          batch.push(
            store.vault.set({
              sessionId,
              expiresAt,
              session: { cookie: { originalMaxAge: DAY_MS, expires: new Date(expiresAt).toISOString(), httpOnly: true, path: "/" }, user: profile(i) },
              userContext: { userId: `user-${i}` },
            }),
          );
        }
        await Promise.all(batch);
      }
      return { store, close: () => store.close() };
    }
    case "session-vault-redis": {
      const { SessionVaultSessionStore } = await import("../src/express.js");
      const store = new SessionVaultSessionStore({
        backend: "redis",
        redisUrl: options.redisUrl,
        prefix: options.prefix,
        encryptionKey: STORE_SECRET,
        userId: "user.id",
      });
      await store.vault.ready;
      return { store, close: () => store.close() };
    }
    case "session-file-store": {
      const FileStore = (await import("session-file-store")).default(session);
      const store = new FileStore({ path: options.dir, secret: STORE_SECRET, logFn: () => {}, reapInterval: -1 });
      return { store, close: async () => {} };
    }
    case "connect-redis": {
      const { RedisStore } = await import("connect-redis");
      const { createClient } = await import("redis");
      const client = createClient({ url: options.redisUrl });
      await client.connect();
      const store = new RedisStore({ client, prefix: options.prefix });
      return { store, close: () => client.quit() };
    }
    default:
      throw new Error(`unknown store ${options.store}`);
  }
}

const { store, close } = await makeStore();
const app = express();
app.use(
  session({
    secret: SECRET,
    store,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: DAY_MS, httpOnly: true },
  }),
);
let logins = 0;
app.post("/login", (req, res, next) => {
  req.session.regenerate((error) => {
    if (error) return next(error);
    req.session.user = profile(logins++);
    res.json({ ok: true });
  });
});
app.get("/me", (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: "not logged in" });
  res.json({ name: req.session.user.name });
});

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;
app.get("/stats", (req, res) => {
  const stats = { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) };
  if (req.query.reset) delay.reset();
  res.json(stats);
});

const server = app.listen(0, "127.0.0.1", () => {
  // A cluster's primary reports the port its workers share.
  if (!cluster.isWorker) console.log(JSON.stringify({ port: server.address().port }));
});
process.on("SIGTERM", () => {
  server.close();
  server.closeAllConnections();
  close().finally(() => process.exit(0));
});
