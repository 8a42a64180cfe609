// What the store's housekeeping costs the one call that does it: 30,000 saves of
// ~700-byte sessions (closing several log segments), then 60,000 touches of 64 of them
// (dead records, so compaction passes), through SessionVaultStore, one call at a time.
// Prints the calls slower than 20 ms, with their ordinal: a segment closed, a compaction
// step. Part of npm run bench; `node bench/housekeeping.mjs [relaxed|durable]`.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { SessionVaultStore } from "../src/index.js";

const SLOW_MS = 20;
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-housekeeping-"));
const expiresAt = Date.now() + 3_600_000;

async function run(durability) {
  const store = new SessionVaultStore({
    storageDir: path.join(scratch, durability),
    encryptionKey: "benchmark-secret-of-at-least-32-characters",
    durability,
  });
  await store.ready; // the open (a key derivation) is not housekeeping
  const ids = [];
  const slow = { saves: [], touches: [] };
  const timed = async (list, i, call) => {
    const start = performance.now();
    await call();
    const ms = performance.now() - start;
    if (ms > SLOW_MS) list.push(`#${i} ${Math.round(ms)} ms`);
    return ms;
  };
  let worst = { saves: 0, touches: 0 };
  for (let i = 0; i < 30_000; i++) {
    const sessionId = randomBytes(24).toString("base64url");
    ids.push(sessionId);
    const doc = { sessionId, expiresAt, session: { cookie: { path: "/" }, user: "x".repeat(560) } };
    worst.saves = Math.max(worst.saves, await timed(slow.saves, i, () => store.set(doc)));
  }
  for (let i = 0; i < 60_000; i++) {
    worst.touches = Math.max(worst.touches, await timed(slow.touches, i, () => store.touch(ids[i % 64], expiresAt)));
  }
  await store.close();
  console.log(
    `| ${durability} | ${Math.round(worst.saves)} | ${slow.saves.join(", ") || "none"} | ` +
      `${Math.round(worst.touches)} | ${slow.touches.join(", ") || "none"} |`,
  );
}

console.log("\n# the slowest calls through segment closes and compactions (one call at a time)");
console.log("| durability | slowest save ms | saves over 20 ms | slowest touch ms | touches over 20 ms |");
console.log("|---|---:|---|---:|---|");
const only = process.argv[2];
for (const durability of ["relaxed", "durable"].filter((d) => !only || d === only)) await run(durability);
rmSync(scratch, { recursive: true, force: true });
