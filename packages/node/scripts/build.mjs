// Builds what the package ships in component/: the session-vault components transpiled by
// jco (their core modules and the JS that lifts and lowers the WIT interfaces) and the
// Redis protocol script, so that nothing at run time needs jco, the Rust build's target/
// directory or the repository.
//
//   npm run build        (the components: SESSION_VAULT_COMPONENT and
//                         SESSION_VAULT_KEYVALUE_COMPONENT, or the ones `cargo build`
//                         leaves in ../../target/guest/; the script host/redis/bucket.lua)

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { transpile } from "@bytecodealliance/jco";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const guest = path.resolve(root, "../../target/guest");
// The directory component (any runtime), and the key-value component (the `redis`
// backend: its wasi:keyvalue imports are the package's, over a Redis client).
const components = [
  {
    name: "session-vault",
    wasm: process.env.SESSION_VAULT_COMPONENT ?? path.join(guest, "wasm32-wasip2/release/session_vault_guest.wasm"),
  },
  {
    name: "session-vault-keyvalue",
    wasm: process.env.SESSION_VAULT_KEYVALUE_COMPONENT ?? path.join(guest, "session-vault-keyvalue.wasm"),
  },
];
// The Redis protocol: the one script the Rust host sends too.
const bucketScript = path.resolve(root, "../../host/redis/bucket.lua");
for (const file of [...components.map((c) => c.wasm), bucketScript]) {
  if (!existsSync(file)) {
    console.error(`${file} is missing: build it first (cargo build -p session-vault)`);
    process.exit(1);
  }
}

// jco's glue asks `process.env.JCO_DEBUG` on every one of its many debug-log calls, and an
// environment lookup is a call into C++ each time (a tenth of a `get`): it is read once, when
// the module loads, instead.
const debugCheck = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }";
// jco lifts the component's strings with a default TextDecoder, which drops a leading
// U+FEFF: a string the component hands over must arrive as it is (an index member planted
// with one was removed under another name, and never went).
const utf8Decoder = "const TEXT_DECODER_UTF8 = new TextDecoder();";

const files = {};
const built = {};
for (const { name, wasm } of components) {
  const bytes = await readFile(wasm);
  const transpiled = await transpile(bytes, {
    name,
    // The package instantiates it with its own WASI imports: one sandbox per store.
    instantiation: "async",
    noTypescript: true,
    quiet: true,
  });
  const glue = `${name}.js`;
  const text = Buffer.from(transpiled.files[glue]).toString("utf8");
  if (!text.includes(debugCheck) || !text.includes(utf8Decoder)) {
    console.error(`jco's ${glue} no longer reads JCO_DEBUG or decodes UTF-8 as expected: update scripts/build.mjs`);
    process.exit(1);
  }
  transpiled.files[glue] = Buffer.from(
    `const JCO_DEBUG = Boolean(globalThis?.process?.env?.JCO_DEBUG);\n${text
      .replaceAll(debugCheck, "if (!JCO_DEBUG) { return; }")
      .replaceAll(utf8Decoder, 'const TEXT_DECODER_UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });')}`,
  );
  Object.assign(files, transpiled.files);
  built[name] = { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
}
files["bucket.lua"] = await readFile(bucketScript);

// Written beside and renamed into place: an interrupted build leaves the old output whole.
const out = path.join(root, "component");
const partial = `${out}.partial`;
await rm(partial, { recursive: true, force: true });
for (const [name, contents] of Object.entries(files)) {
  const file = path.join(partial, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, contents);
}
await writeFile(
  path.join(partial, "component.json"),
  `${JSON.stringify({ components: built, files: Object.keys(files).sort() }, null, 2)}\n`,
);
await rm(out, { recursive: true, force: true });
await rename(partial, out);
for (const { name, wasm } of components) {
  console.log(`component/: ${name} from ${wasm} (sha256 ${built[name].sha256.slice(0, 16)})`);
}
