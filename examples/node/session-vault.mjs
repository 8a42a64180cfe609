// Loads the session-vault component on Node through jco, and converts between the
// store's JSON session documents (what the CLI prints) and the WIT records.

import { createHash } from "node:crypto";
import { access, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { transpile } from "@bytecodealliance/jco";
import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Where `cargo build` (through the host's build script) leaves the component. */
export const defaultComponent = path.resolve(
  here,
  "../../target/guest/wasm32-wasip2/release/session_vault_guest.wasm",
);

/**
 * Transpiles the component (cached under `.jco/<sha256 of the component>/`) and
 * instantiates it with `preopens` ({ guestPath: hostPath }) as its only filesystem access.
 * Returns the `sessions` interface, the transpile time in ms (0 when cached) and the
 * component's size in bytes.
 */
export async function load({ component = defaultComponent, preopens }) {
  const bytes = await readFile(component);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const out = path.join(here, ".jco", hash);
  const entry = path.join(out, "session-vault.js");
  let transpileMs = 0;
  if (!(await exists(entry))) {
    const start = performance.now();
    const { files } = await transpile(bytes, {
      name: "session-vault",
      instantiation: "async",
      noTypescript: true,
      quiet: true,
    });
    transpileMs = performance.now() - start;
    // Written to a fresh directory and renamed into place, so a concurrent or
    // interrupted run never sees half an output.
    const partial = `${out}.${process.pid}.partial`;
    for (const [name, contents] of Object.entries(files)) {
      const file = path.join(partial, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, contents);
    }
    await rename(partial, out).catch(async (e) => {
      await rm(partial, { recursive: true, force: true });
      if (!(await exists(entry))) throw e;
    });
  }
  const { instantiate } = await import(entry);
  const shim = new WASIShim({ sandbox: { preopens, env: {}, enableNetwork: false } });
  const instance = await instantiate(
    async (name) => WebAssembly.compile(await readFile(path.join(out, name))),
    shim.getImportObject(),
  );
  return { sessions: instance.sessions, transpileMs, componentBytes: bytes.length };
}

async function exists(file) {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** The WIT `secret` of a CLI-style secret: `hex:` + 64 hex digits is a raw key. */
export function secret(text) {
  const raw = /^hex:([0-9a-fA-F]{64})$/.exec(text);
  return raw
    ? { tag: "raw-key", val: Uint8Array.from(Buffer.from(raw[1], "hex")) }
    : { tag: "passphrase", val: text };
}

/** The case of a store error thrown through jco (a `ComponentError` with a payload). */
export function errorCase(e) {
  const payload = e?.payload;
  if (!payload?.tag) throw e;
  return payload.tag;
}

// Each level's fields in the store's order: "string", "time" (u64 ms, a bigint in JS),
// "list" (of strings) or the name of a nested level. Other JSON members travel as extras.
const schema = {
  session: [
    ["sessionId", "string"],
    ["sessionToken", "string"],
    ["userContext", "userContext"],
    ["tokenMetadata", "tokenMetadata"],
    ["security", "security"],
    ["expiresAt", "time"],
    ["createdAt", "time"],
  ],
  userContext: [
    ["userId", "string"],
    ["email", "string"],
    ["name", "string"],
    ["tenantId", "string"],
    ["roles", "list"],
  ],
  tokenMetadata: [
    ["accessToken", "string"],
    ["refreshToken", "string"],
    ["idToken", "string"],
    ["expiresAt", "time"],
    ["scopes", "list"],
  ],
  security: [
    ["ipAddress", "string"],
    ["userAgent", "string"],
    ["createdAt", "time"],
    ["lastAccessedAt", "time"],
    ["accessCount", "time"],
    ["fingerprint", "string"],
  ],
};

/** A JSON session document as the WIT `session-data` record. */
export function toRecord(doc, level = "session") {
  const fields = new Map(schema[level]);
  const record = { extra: [] };
  for (const [name, value] of Object.entries(doc)) {
    const kind = fields.get(name);
    if (kind === undefined) record.extra.push({ name, value: JSON.stringify(value) });
    else if (kind === "time") record[name] = BigInt(value);
    else if (kind in schema) record[name] = toRecord(value, kind);
    else record[name] = value ?? undefined;
  }
  return record;
}

/** A WIT `session-data` record as the JSON document the CLI prints. */
export function toDocument(record, level = "session") {
  const doc = {};
  for (const [name, kind] of schema[level]) {
    const value = record[name];
    if (value === undefined) continue;
    if (kind === "time") doc[name] = Number(value);
    else if (kind in schema) doc[name] = toDocument(value, kind);
    else doc[name] = value;
  }
  for (const { name, value } of record.extra) doc[name] = JSON.parse(value);
  return doc;
}

/** The JSON form of anything the component returns (bigints as numbers). */
export function plain(value) {
  const text = JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v));
  return text === undefined ? null : JSON.parse(text);
}
