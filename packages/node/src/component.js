// The session-vault component as the package ships it (component/, transpiled by jco at
// build time), instantiated with a WASI sandbox of its own for each store: the store
// directory is its only filesystem access (./filesystem.js), and it has no network and
// no environment.

import * as wasi from "@bytecodealliance/preview2-shim";
import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";
import { randomBytes } from "node:crypto";
import { realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";

import { filesystem } from "./filesystem.js";

const componentDir = new URL("../component/", import.meta.url);

// Compiled once per process, whatever the number of stores.
const modules = new Map();
function coreModule(name) {
  let compiled = modules.get(name);
  if (compiled === undefined) {
    compiled = readFile(new URL(name, componentDir)).then((bytes) => WebAssembly.compile(bytes));
    modules.set(name, compiled);
    compiled.catch(() => modules.delete(name));
  }
  return compiled;
}

// Random bytes for the component (nonces, salts) from a pool refilled 64 KiB at a time by
// the CSPRNG: one system call per several thousand requests instead of one per request.
// Each byte is handed out once.
const POOL = 65536;
let pool = Buffer.alloc(0);
let used = 0;
function randomBytesFor(len) {
  len = Number(len);
  if (len > POOL / 4) return randomBytes(len);
  if (used + len > pool.length) {
    pool = randomBytes(POOL);
    used = 0;
  }
  const bytes = Uint8Array.from(pool.subarray(used, used + len));
  pool.fill(0, used, used + len);
  used += len;
  return bytes;
}
const random = {
  ...wasi.random,
  random: {
    getRandomBytes: randomBytesFor,
    getRandomU64: () => new DataView(randomBytesFor(8).buffer).getBigUint64(0, true),
  },
};

const bindings = new Map();

/**
 * A new instance of the component's `sessions` interface whose filesystem is `preopens`
 * ({ guestPath: hostPath or { path, readOnly } }) and whose wall clock is `now`
 * (milliseconds since the epoch); `close()` lets go of the preopened directories. With
 * `keyvalue` (the imports of ./redis/imports.js), the key-value component, whose buckets
 * those imports hold.
 */
export async function instantiate(preopens, now, keyvalue) {
  const name = keyvalue === undefined ? "session-vault.js" : "session-vault-keyvalue.js";
  if (!bindings.has(name)) bindings.set(name, import(new URL(name, componentDir)));
  const { instantiate } = await bindings.get(name);
  const files = filesystem(preopens, realpathSync.native);
  const config = {
    sandbox: { env: {}, enableNetwork: false },
    filesystem: files,
    random,
  };
  if (now !== Date.now) {
    config.clocks = {
      ...wasi.clocks,
      wallClock: {
        now() {
          // Checked when the store was made; a clock that goes bad later is not obeyed.
          let ms = now();
          if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) ms = Date.now();
          ms = Math.floor(ms);
          return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
        },
        resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }),
      },
    };
  }
  const shim = new WASIShim(config);
  const instance = await instantiate(coreModule, { ...shim.getImportObject(), ...keyvalue });
  return { sessions: instance.sessions, close: files.close };
}
