// The component in a second and a third runtime: jco on Node, and wasmtime from PyPI.
// Stores written through them are read by the Rust CLI (wasmtime, Rust host) and back.
//
//   node --test test.mjs
//
// Needs the CLI and the component built (`cargo build` does both); the CLI is
// SESSION_VAULT_CLI or ../../target/debug/session-vault. The Python checks run when
// SESSION_VAULT_PYTHON (or python3) can `import wasmtime`, and are skipped otherwise.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { errorCase, load, secret, fromText, toText } from "./session-vault.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const cliPath =
  process.env.SESSION_VAULT_CLI ?? path.resolve(here, "../../target/debug/session-vault");
const python = process.env.SESSION_VAULT_PYTHON ?? "python3";
const pythonExample = path.resolve(here, "../python/main.py");
const SECRET = "correct-horse-battery-staple-cross-runtime";
const expected = JSON.parse(
  (await import("node:fs")).readFileSync(
    path.resolve(here, "../../tests/fixtures/legacy-ts/expected.json"),
    "utf8",
  ),
);

function run(command, args, { stdin, env = {} } = {}) {
  const result = spawnSync(command, args, {
    input: stdin,
    encoding: "utf8",
    env: { ...process.env, SESSION_VAULT_SECRET: SECRET, ...env },
  });
  if (result.error) throw result.error;
  return result;
}

function cli(dir, args, options) {
  assert.ok(existsSync(cliPath), `${cliPath} is missing: run cargo build first`);
  const result = run(cliPath, ["--dir", dir, ...args], options);
  assert.equal(result.status, 0, `session-vault ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim() === "" ? null : JSON.parse(result.stdout);
}

const tempDir = () => mkdtemp(path.join(os.tmpdir(), "session-vault-runtimes-"));

async function open(dir, text = SECRET) {
  const { sessions } = await load({ preopens: { "/store": dir } });
  return sessions.Store.open({ secret: secret(text), directory: "/store" });
}

// Sessions of the legacy fixture: real documents with extras, unicode and optional fields.
const live = expected.filter((d) => d.expiresAt > Date.now());
const sample = live.slice(0, 6);

test("the Node example runs every operation of the interface", () => {
  const result = run(process.execPath, [path.join(here, "main.mjs")]);
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split("\n");
  for (const line of [
    "get absent: null",
    "create node-1 again: error already-exists",
    "get ../etc/passwd: error invalid-id",
    "update absent: error not-found",
    'user-sessions alice: ["node-1","node-2"]',
    "delete node-2: true",
    "delete node-2 again: false",
    "revoke-user bob: 1",
    'rekey: {"rekeyed":1,"remaining":0}',
    'get node-1 after rotation: "rotated"',
    'import-legacy: {"files":20,"imported":18,"expired":2,"alreadyPresent":0,"failed":[]}',
    'check: {"live":19,"expired":0,"missingKey":0,"quarantined":0,"newlyQuarantined":[],"foreign":0,"deadBytes":0,"oldestKey":2}',
    "clear: 19",
  ]) {
    assert.ok(lines.includes(line), `missing line ${JSON.stringify(line)} in:\n${result.stdout}`);
  }
  assert.equal(lines.filter((l) => l.startsWith("count: ")).at(-1), "count: 0");
});

test("a store written through jco is read by the Rust CLI", async () => {
  const dir = await tempDir();
  const store = await open(dir);
  for (const doc of sample) store.create(toText(doc));
  const touched = fromText(store.touch(sample[0].sessionId));
  const none = { tag: "none" };
  const updated = fromText(
    store.update(sample[1].sessionId, {
      sessionToken: "rotated-in-node",
      userContext: { email: none, name: none, tenantId: none, roles: { tag: "some", val: ["owner"] }, extra: [] },
      extra: [],
    }),
  );
  store[Symbol.dispose]?.();

  assert.deepEqual(cli(dir, ["get", sample[0].sessionId]), touched);
  assert.deepEqual(cli(dir, ["get", sample[1].sessionId]), updated);
  for (const doc of sample.slice(2)) assert.deepEqual(cli(dir, ["get", doc.sessionId]), doc);
  assert.equal(cli(dir, ["count"]).count, sample.length);
  const user = sample[2].userContext.userId;
  const ids = cli(dir, ["list", "--user", user]).map((d) => d.sessionId);
  const owned = sample.filter((d) => d.userContext.userId === user).map((d) => d.sessionId);
  assert.deepEqual(ids.sort(), owned.sort());
  const report = cli(dir, ["check"]);
  assert.equal(report.live, sample.length);
  assert.equal(report.quarantined, 0);
});

test("a store written and rotated by the Rust CLI is read through jco", async () => {
  const dir = await tempDir();
  for (const doc of sample) cli(dir, ["create"], { stdin: JSON.stringify(doc) });
  cli(dir, ["touch", sample[0].sessionId]);
  cli(dir, ["update", sample[1].sessionId], { stdin: '{"security": {"fingerprint": "fp-cli"}}' });
  const next = "the-second-secret-of-this-store-0123456789";
  cli(dir, ["key", "add"], { env: { SESSION_VAULT_NEW_SECRET: next } });
  cli(dir, ["create"], { stdin: JSON.stringify(live[6]), env: { SESSION_VAULT_SECRET: next } });
  const written = [...sample, live[6]].map((d) =>
    cli(dir, ["get", d.sessionId], { env: { SESSION_VAULT_SECRET: next } }),
  );

  await assert.rejects(open(dir, SECRET), (e) => errorCase(e) === "wrong-key");
  const store = await open(dir, next);
  for (const doc of written) assert.deepEqual(fromText(store.get(doc.sessionId)), doc);
  assert.equal(written[0].security.accessCount, sample[0].security.accessCount + 1);
  assert.equal(written[1].security.fingerprint, "fp-cli");
  assert.deepEqual(
    store.keys().map((k) => [k.id, k.current, Number(k.sessions)]),
    [[1, false, sample.length], [2, true, 1]],
  );
  assert.equal(store.get("absent"), undefined);
  assert.throws(() => store.get("../x"), (e) => errorCase(e) === "invalid-id");
  store[Symbol.dispose]?.();
});

const pythonReady = run(python, ["-c", "import wasmtime"]).status === 0;

test("the Python example and the Rust CLI read each other's stores", { skip: !pythonReady && `${python} cannot import wasmtime` }, async () => {
  const dir = await tempDir();
  const demo = run(python, [pythonExample, "--dir", dir, "demo"]);
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /^touch py-1 -> accessCount: 2$/m);
  assert.match(demo.stdout, /^get \.\.\/etc\/passwd: error invalid-id$/m);
  assert.match(demo.stdout, /^create py-1 again: error already-exists$/m);
  const written = cli(dir, ["get", "py-1"]);
  assert.equal(written.security.accessCount, 2);
  assert.deepEqual(written.origin, { runtime: "wasmtime-py" });

  cli(dir, ["create"], { stdin: JSON.stringify(sample[0]) });
  const read = run(python, [pythonExample, "--dir", dir, "get", sample[0].sessionId]);
  assert.equal(read.status, 0, read.stderr);
  assert.deepEqual(JSON.parse(read.stdout), sample[0]);

  const store = await open(dir);
  assert.deepEqual(fromText(store.get("py-1")), written);
  store[Symbol.dispose]?.();
  // A new store defaults to the log backend: its sessions are records under log/, beside
  // the metadata and the version ledger it names.
  assert.deepEqual((await readdir(dir)).sort(), [
    "log",
    "session-vault.0000000000000001.ledger",
    "session-vault.json",
  ]);
  assert.deepEqual(await readdir(path.join(dir, "log")), ["0000000000000001.seg"]);
});
