// Reading a session-file-store directory (express-session's file store, 1.x) so its
// sessions can move to session-vault without logging anyone out.
//
// Its layout: one file per session, `<sid><fileExtension>` (default `.json`), holding the
// session as JSON with the store's own `__lastAccess` (ms) member. With its `secret`, the
// file holds instead the JSON envelope its encryption library (kruptein 2, as
// session-file-store configures it: AES-256-GCM, SHA-512, scrypt) writes:
//   { hmac, ct, iv, salt, at, aad }
// `ct` and `hmac` are strings of byte values (latin1); `iv`, `salt` and `at` are Node
// Buffers as JSON writes them ({ type: "Buffer", data: [...] }); `aad` is a latin1 string.
// The key is scrypt(secret, salt, 32) with Node's defaults (N 16384, r 8, p 1) — one
// derivation per file, as each file has its own salt. `hmac` is HMAC-SHA512 under that key
// of `ct`'s UTF-8 bytes; the plaintext is the JSON text of the session's JSON text.

import { createDecipheriv, createHmac, scrypt, timingSafeEqual } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const derive = promisify(scrypt);
/** Files read (and keys derived) at once: scrypt runs on libuv's pool of four threads. */
const PARALLEL = 4;

class Unreadable extends Error {}

function bytes(value, what) {
  if (value?.type === "Buffer" && Array.isArray(value.data)) return Buffer.from(value.data);
  if (typeof value === "string") return Buffer.from(value, "latin1");
  throw new Unreadable(`the envelope's ${what} is missing`);
}

/** The session JSON text inside one of session-file-store's encrypted files. */
async function decrypt(text, secret) {
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch {
    throw new Unreadable("not JSON");
  }
  if (typeof envelope?.ct !== "string" || typeof envelope.hmac !== "string") {
    throw new Unreadable("not an encrypted session (no ct and hmac): was it written without a secret?");
  }
  const key = await derive(secret, bytes(envelope.salt, "salt"), 32);
  const expected = createHmac("sha512", key).update(envelope.ct, "utf8").digest();
  const given = Buffer.from(envelope.hmac, "latin1");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new Unreadable("the secret does not open it, or it was altered (HMAC mismatch)");
  }
  const tag = bytes(envelope.at, "authentication tag");
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, bytes(envelope.iv, "iv"), {
      authTagLength: tag.length,
    });
    decipher.setAuthTag(tag);
    if (typeof envelope.aad === "string") decipher.setAAD(Buffer.from(envelope.aad, "latin1"));
    const plain = Buffer.concat([decipher.update(Buffer.from(envelope.ct, "latin1")), decipher.final()]);
    const inner = JSON.parse(plain.toString("utf8"));
    if (typeof inner !== "string") throw new Unreadable("the plaintext is not a session");
    return inner;
  } catch (e) {
    if (e instanceof Unreadable) throw e;
    throw new Unreadable(`decryption failed: ${e.message}`);
  }
}

/**
 * Each session of session-file-store directory `dir`, as `{ sessionId, session, file }`
 * (`session` as express-session saved it, `__lastAccess` included) or `{ sessionId, file,
 * reason }` where it cannot be read. `secret`: the store's `secret` option, if it had one.
 */
export async function* readSessionFileStore(dir, { secret, fileExtension = ".json" } = {}) {
  const names = (await readdir(dir)).filter((name) => name.endsWith(fileExtension)).sort();
  const read = async (name) => {
    const file = path.join(dir, name);
    const sessionId = name.slice(0, name.length - fileExtension.length);
    try {
      let text = await readFile(file, "utf8");
      if (secret !== undefined) text = await decrypt(text, secret);
      const session = JSON.parse(text);
      if (session === null || typeof session !== "object" || Array.isArray(session)) {
        throw new Unreadable("not a session object");
      }
      if (typeof session.ct === "string" && typeof session.hmac === "string") {
        throw new Unreadable("encrypted: pass session-file-store's secret");
      }
      if (session.cookie === null || typeof session.cookie !== "object") {
        throw new Unreadable("not an express-session session (no cookie)");
      }
      return { sessionId, session, file };
    } catch (e) {
      const reason = e instanceof Unreadable ? e.message : `unreadable: ${e.message}`;
      return { sessionId, file, reason };
    }
  };
  for (let i = 0; i < names.length; i += PARALLEL) {
    yield* await Promise.all(names.slice(i, i + PARALLEL).map(read));
  }
}
