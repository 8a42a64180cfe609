// The package's tests, against the package as users get it: `npm pack` makes the tarball,
// a scratch project installs it (and nothing from this checkout), and `node --test` runs
// test/*.test.mjs there. Builds component/ first if it is missing.
//
//   npm test      (SESSION_VAULT_CLI: the Rust CLI; default ../../target/debug/session-vault)

import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const run = (command, args, options) =>
  execFileSync(command, args, { stdio: "inherit", ...options });

if (!existsSync(path.join(root, "component", "session-vault.js"))) {
  run(process.execPath, [path.join(root, "scripts", "build.mjs")]);
}
const scratch = mkdtempSync(path.join(os.tmpdir(), "session-vault-package-"));
try {
  const tarball = execFileSync(npm, ["pack", "--silent", "--pack-destination", scratch], {
    cwd: root,
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop();
  const project = path.join(scratch, "project");
  cpSync(path.join(root, "test"), path.join(project, "test"), { recursive: true });
  writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "scratch", private: true, type: "module" }),
  );
  run(npm, ["install", "--no-audit", "--no-fund", "--loglevel=error", path.join(scratch, tarball)], {
    cwd: project,
  });
  // The frameworks the adapters are tested in, at the versions package.json pins, from
  // the registry (as a user's project has them).
  const dev = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).devDependencies;
  const frameworks = [
    "express",
    "express-session",
    "fastify",
    "@fastify/session",
    "@fastify/cookie",
    "session-file-store",
    "@types/express-session",
  ].map(
    (name) => `${name}@${dev[name]}`,
  );
  run(npm, ["install", "--no-audit", "--no-fund", "--loglevel=error", ...frameworks], {
    cwd: project,
  });
  const installed = readdirSync(path.join(project, "node_modules", "session-vault"));
  console.log(`installed ${tarball}: ${installed.sort().join(" ")}`);
  // The shipped declarations, as a TypeScript user of the original resolves them.
  run(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "test/tsconfig.json"], {
    cwd: project,
  });
  console.log("types: test/types-check.ts and test/types-express.ts compile against the installed package");
  const tests = readdirSync(path.join(project, "test"))
    .filter((name) => name.endsWith(".test.mjs"))
    .map((name) => path.join("test", name));
  run(process.execPath, ["--test", ...tests], {
    cwd: project,
    env: {
      ...process.env,
      SESSION_VAULT_CLI:
        process.env.SESSION_VAULT_CLI ?? path.resolve(root, "../../target/debug/session-vault"),
      SESSION_VAULT_FIXTURES:
        process.env.SESSION_VAULT_FIXTURES ?? path.resolve(root, "../../tests/fixtures"),
    },
  });
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
