// The component's thread as a server process lives with it: an idle store never keeps the
// process alive, Node's flags do not stop it, and what cannot cross to it is a clear error.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { InvalidInputError, SessionVaultStore } from "session-vault";

const root = mkdtempSync(path.join(os.tmpdir(), "session-vault-thread-"));
after(() => rmSync(root, { recursive: true, force: true }));
const SECRET = "thread-test-secret-0123456789-abcdefghijkl";

/** Runs `source` (an ES module) in a new node with `flags`; returns its exit and output. */
function node(flags, source) {
  const run = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", source], {
    encoding: "utf8",
    timeout: 20_000,
  });
  return { status: run.status, signal: run.signal, out: run.stdout.trim(), err: run.stderr };
}

test("an open, idle store lets the process exit; Node's own flags are no obstacle", () => {
  const dir = path.join(root, "idle");
  const source = `
    import { SessionVaultStore } from "session-vault";
    const store = new SessionVaultStore({ storageDir: ${JSON.stringify(dir)}, encryptionKey: ${JSON.stringify(SECRET)} });
    await store.set({ sessionId: "s", expiresAt: Date.now() + 60000, user: "a" });
    console.log((await store.get("s")).user);
    // Never closed: the process ends when its work does.`;
  for (const flags of [[], ["--max-old-space-size=256", "--stack-size=2000"]]) {
    const run = node(flags, source);
    assert.deepEqual([run.status, run.signal, run.out], [0, null, "a"], `${flags}: ${run.err}`);
  }
});

test("an argument that cannot cross to the thread is invalid-input, and nothing is left waiting", async () => {
  const store = new SessionVaultStore({ storageDir: path.join(root, "clone"), encryptionKey: SECRET });
  await assert.rejects(store.get(() => 1), InvalidInputError);
  await assert.rejects(store.revokeUser(Symbol("x")), InvalidInputError);
  assert.equal(await store.getSessionCount(), 0);
  await store.close();
});

test("a store that could not open closes cleanly and lets go of its lock", async () => {
  const dir = path.join(root, "held");
  const holder = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET });
  await holder.ready;
  const second = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET, lockTimeoutMs: 10 });
  await assert.rejects(second.ready, (e) => e.code === "locked");
  await second.close();
  await holder.close();
  const third = new SessionVaultStore({ storageDir: dir, encryptionKey: SECRET });
  await third.ready;
  await third.close();
});
