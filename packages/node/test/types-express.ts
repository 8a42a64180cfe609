// The express store's declarations, as a TypeScript user of express-session uses them
// (compiled by npm test; never run).

import session from "express-session";
import { SessionVaultSessionStore } from "session-vault/express";

const store = new SessionVaultSessionStore({
  storageDir: "./sessions",
  encryptionKey: "a passphrase of at least 32 characters",
  ttl: (sess) => (sess.cookie.maxAge ?? 3_600_000) / 1000,
  userId: "passport.user",
});
export const middleware = session({ secret: "s", resave: false, saveUninitialized: false, store });

export async function use(): Promise<number> {
  const sess = await store.get("id");
  if (sess) await store.set("id", sess);
  store.touch("id", sess!, (error) => void error);
  const report = await store.importSessionFileStore("./sessions-old", { secret: "s" });
  const revoked: number = await store.revokeUser("alice");
  return report.imported.length + revoked + (await store.length()) + (await store.ids()).length;
}
// @ts-expect-error ttl is seconds or a function
export const wrongTtl = new SessionVaultSessionStore({ storageDir: "x", encryptionKey: "k", ttl: "1d" });
// Many processes on one store: the redis backend, in connect-redis's words.
export const shared = new SessionVaultSessionStore({
  backend: "redis",
  redisUrl: "redis://127.0.0.1:6379/0",
  prefix: "sess:",
  redisTimeoutMs: 500,
  rawKey: "00".repeat(32),
  userId: "passport.user",
});
// @ts-expect-error a redis store has no directory
export const both = new SessionVaultSessionStore({ backend: "redis", storageDir: "x", encryptionKey: "k" });
// @ts-expect-error a directory store names its directory
export const neither = new SessionVaultSessionStore({ backend: "log", encryptionKey: "k" });
