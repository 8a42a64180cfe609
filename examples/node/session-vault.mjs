// Loads the session-vault component on Node through jco; converts between the store's
// JSON session documents (what the CLI prints) and the WIT records.

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

// Between JSON session documents and the WIT records: the npm package's conversion (the
// same schema, every value checked as the CLI checks JSON).
export { fromText, plain, toText } from "../../packages/node/src/convert.js";
