// The session-vault component as the package ships it (component/, transpiled by jco at
// build time), instantiated with a WASI sandbox of its own for each store: the store
// directory is its only filesystem access, and it has no network and no environment.

import * as wasi from "@bytecodealliance/preview2-shim";
import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";
import { readFile } from "node:fs/promises";

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

let bindings;

/**
 * A new instance of the component's `sessions` interface whose filesystem is `preopens`
 * ({ guestPath: hostPath }) and whose wall clock is `now` (milliseconds since the epoch).
 */
export async function instantiate(preopens, now) {
  bindings ??= import(new URL("session-vault.js", componentDir));
  const { instantiate } = await bindings;
  const config = { sandbox: { preopens, env: {}, enableNetwork: false } };
  if (now !== Date.now) {
    config.clocks = {
      ...wasi.clocks,
      wallClock: {
        now() {
          const ms = now();
          return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
        },
        resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }),
      },
    };
  }
  const shim = new WASIShim(config);
  const instance = await instantiate(coreModule, shim.getImportObject());
  return instance.sessions;
}
