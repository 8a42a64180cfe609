// Builds what the package ships in component/: the session-vault component transpiled by
// jco (its core modules and the JS that lifts and lowers the WIT interface), so that
// nothing at run time needs jco or the Rust build's target/ directory.
//
//   npm run build        (the component: SESSION_VAULT_COMPONENT, or the one `cargo build`
//                         leaves in ../../target/guest/wasm32-wasip2/release/)

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { transpile } from "@bytecodealliance/jco";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const component =
  process.env.SESSION_VAULT_COMPONENT ??
  path.resolve(root, "../../target/guest/wasm32-wasip2/release/session_vault_guest.wasm");
if (!existsSync(component)) {
  console.error(`${component} is missing: build it first (cargo build -p session-vault)`);
  process.exit(1);
}

const bytes = await readFile(component);
const { files } = await transpile(bytes, {
  name: "session-vault",
  // The package instantiates it with its own WASI imports: one sandbox per store.
  instantiation: "async",
  noTypescript: true,
  quiet: true,
});

// jco's glue asks `process.env.JCO_DEBUG` on every one of its many debug-log calls, and an
// environment lookup is a call into C++ each time (a tenth of a `get`): it is read once, when
// the module loads, instead.
const glue = "session-vault.js";
const debugCheck = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";
const text = Buffer.from(files[glue]).toString("utf8");
if (!text.includes(debugCheck)) {
  console.error(`jco's ${glue} no longer checks JCO_DEBUG as expected: update scripts/build.mjs`);
  process.exit(1);
}
files[glue] = Buffer.from(
  `const JCO_DEBUG = Boolean(globalThis?.process?.env?.JCO_DEBUG);\n${text.replaceAll(
    debugCheck,
    "if (!JCO_DEBUG) { return; }",
  )}`,
);

// Written beside and renamed into place: an interrupted build leaves the old output whole.
const out = path.join(root, "component");
const partial = `${out}.partial`;
await rm(partial, { recursive: true, force: true });
for (const [name, contents] of Object.entries(files)) {
  const file = path.join(partial, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, contents);
}
const sha256 = createHash("sha256").update(bytes).digest("hex");
await writeFile(
  path.join(partial, "component.json"),
  `${JSON.stringify({ sha256, bytes: bytes.length, files: Object.keys(files).sort() }, null, 2)}\n`,
);
await rm(out, { recursive: true, force: true });
await rename(partial, out);
console.log(`component/: ${Object.keys(files).length} files from ${component} (sha256 ${sha256.slice(0, 16)})`);
