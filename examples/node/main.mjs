// The session-vault component on Node: every operation of `session-vault:store/sessions`.
//
//   node main.mjs [--dir STORE] [--component FILE] [--legacy DIR]
//
// The store's secret comes from SESSION_VAULT_SECRET (a passphrase, or `hex:` + 64 hex
// digits for a raw key), as for the CLI; without it the example uses a fresh raw key and a
// fresh directory. The legacy store (default: the project's fixture) is imported with
// SESSION_VAULT_LEGACY_SECRET (default: the fixture's secret).

import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";

import { defaultComponent, errorCase, load, plain, secret, fromText, toText } from "./session-vault.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    dir: { type: "string" },
    component: { type: "string", default: defaultComponent },
    legacy: { type: "string", default: path.resolve(here, "../../tests/fixtures/legacy-ts/store") },
  },
});
const dir = args.dir ?? (await mkdtemp(path.join(os.tmpdir(), "session-vault-node-")));
const storeSecret = secret(process.env.SESSION_VAULT_SECRET ?? `hex:${randomBytes(32).toString("hex")}`);
const legacySecret =
  process.env.SESSION_VAULT_LEGACY_SECRET ?? "legacy-fixture-secret-0123456789-abcdefghij";

const { sessions, transpileMs, componentBytes } = await load({
  component: args.component,
  preopens: { "/store": dir, "/legacy": args.legacy },
});
console.log(`component: ${componentBytes} bytes, transpiled in ${transpileMs.toFixed(0)} ms`);
console.log(`store: ${dir}`);

const show = (what, value) => console.log(`${what}: ${JSON.stringify(plain(value))}`);
const attempt = (what, f) => {
  try {
    show(what, f());
  } catch (e) {
    console.log(`${what}: error ${errorCase(e)}`);
  }
};

const store = sessions.Store.open({ secret: storeSecret, directory: "/store" });
const now = Date.now();
const session = (id, user) =>
  toText({
    sessionId: id,
    sessionToken: `token-${id}`,
    userContext: { userId: user, email: `${user}@example.org`, roles: ["reader"] },
    tokenMetadata: { accessToken: "at", refreshToken: "rt", expiresAt: now + 3_600_000, scopes: ["openid"] },
    security: { ipAddress: "10.0.0.1", userAgent: "node", createdAt: now, lastAccessedAt: now, accessCount: 1 },
    expiresAt: now + 86_400_000,
    createdAt: now,
    plan: "pro",
  });

store.create(session("node-1", "alice"));
store.create(session("node-2", "alice"));
store.create(session("node-3", "bob"));
console.log("created node-1, node-2 (alice), node-3 (bob)");
show("get node-1", fromText(store.get("node-1")));
show("get absent", store.get("absent") ?? null);
attempt("create node-1 again", () => store.create(session("node-1", "alice")));
attempt("get ../etc/passwd", () => store.get("../etc/passwd"));

const touched = store.touch("node-1");
show("touch node-1 -> security", fromText(touched).security);

const none = { tag: "none" };
const keep = { email: none, name: none, tenantId: none, roles: none, extra: [] };
const updated = store.update("node-1", {
  sessionToken: "rotated",
  userContext: { ...keep, name: { tag: "some", val: "Alice" } },
  tokenMetadata: { refreshToken: { tag: "some", val: undefined }, idToken: none, extra: [] },
  extra: [{ name: "plan", value: '"enterprise"' }],
});
show("update node-1", fromText(updated));
attempt("update absent", () => store.update("absent", { extra: [] }));

show("user-sessions alice", store.userSessions("alice").map((s) => fromText(s).sessionId));
show("count", store.count());
show("delete node-2", store.delete("node-2"));
show("delete node-2 again", store.delete("node-2"));
show("cleanup", store.cleanup());
show("revoke-user bob", store.revokeUser("bob"));
show("count", store.count());

show("add-key", store.addKey(secret(`hex:${randomBytes(32).toString("hex")}`)));
show("keys", store.keys());
show("rekey", store.rekey(100));
show("retire-key 1", store.retireKey(1));
show("keys", store.keys());
show("get node-1 after rotation", fromText(store.get("node-1")).sessionToken);

const legacy = sessions.LegacyStore.open("/legacy", legacySecret);
const files = legacy.files();
const report = legacy.importInto(store, files);
show("import-legacy", {
  files: files.length,
  imported: report.imported.length,
  expired: report.expired.length,
  alreadyPresent: report.alreadyPresent.length,
  failed: report.failed,
});
show("count", store.count());
show("check", store.check());
show("clear", store.clear());
show("count", store.count());
