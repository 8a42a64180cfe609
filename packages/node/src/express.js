// session-vault for express-session (and @fastify/session, which takes the same stores):
// a `session.Store` over SessionVaultStore. Each express session is stored as the document
// `{ sessionId, expiresAt, session, userContext? }`: `session` is exactly the JSON
// express-session saves (its `cookie` and the app's members), so no member of the app's can
// collide with the store's own; `expiresAt` follows `cookie.expires` (else `ttl`).
//
//   import session from "express-session";
//   import { SessionVaultSessionStore } from "session-vault/express";
//   app.use(session({ secret, resave: false, saveUninitialized: false,
//     store: new SessionVaultSessionStore({ storageDir: "./sessions", encryptionKey }) }));

import session from "express-session";
import { existsSync } from "node:fs";
import path from "node:path";

import { InvalidInputError, SessionVaultStore, UnavailableError } from "./index.js";
import { mergeChanges } from "./merge.js";
import { readSessionFileStore } from "./session-file-store.js";
import { textCalls } from "./text.js";

/** How often a save merges again when other processes keep changing the session. */
const MERGE_ATTEMPTS = 64;

const DEFAULT_TTL_SECONDS = 86_400;
/** The longest `ttl`: about 31,700 years, so an expiry is a whole number JSON carries. */
const MAX_TTL_SECONDS = 1e12;
/** session-file-store's default `ttl` (seconds), for sessions without a cookie maxAge. */
const FILE_STORE_TTL_SECONDS = 3600;
/** Sessions read or counted per page when listing every one (`all`, `ids`). */
const PAGE = 1000;
/**
 * The document `get` read (its JSON text), kept on the session express-session makes of
 * it so that `set` can save only what the request changed. A symbol: express-session's
 * change detection and JSON leave it out, and no member of the app's can collide with it.
 */
const READ = Symbol("session-vault: the session as read");

function invalid(message) {
  return new InvalidInputError("invalid-input", message);
}

/**
 * Runs `work`; hands its outcome to `callback` if given (on a tick of its own, so that a
 * callback that throws is an uncaught exception, as with any Node callback, never an
 * unhandled rejection), else returns the promise.
 */
function settle(work, callback) {
  // Started now, so the store's calls are made in the order the middleware made its own;
  // what `work` throws rejects the promise like what it rejects with.
  const promise = new Promise((resolve) => resolve(work()));
  if (typeof callback !== "function") return promise;
  promise.then(
    (value) => process.nextTick(callback, null, value),
    (error) => process.nextTick(callback, error),
  );
  return undefined;
}

/** The getter of the user id the `userId` option names (a dotted path or a function). */
function userGetter(option) {
  if (option === undefined) return undefined;
  if (typeof option === "function") return option;
  if (typeof option !== "string" || option === "") {
    throw invalid("userId must be a dotted path into the session (such as passport.user) or a function");
  }
  const path = option.split(".");
  return (sess) => path.reduce((value, key) => (value == null ? undefined : value[key]), sess);
}

/** Every item of a paged listing: `page(after)` resolves to `{ items, next }`. */
async function everyPage(page) {
  const all = [];
  let after = null;
  do {
    const { items, next } = await page(after);
    all.push(...items);
    after = next;
  } while (after !== null);
  return all;
}

/** Keeps `read` (the session's JSON as read) on `sess`, out of its members. */
function remember(sess, read) {
  Object.defineProperty(sess, READ, { value: read, enumerable: false, writable: true, configurable: true });
}

/** An express-session store over session-vault: encrypted, crash-safe, race-free. */
export class SessionVaultSessionStore extends session.Store {
  /** The underlying store: `revokeUser`, `userSessions`, keys, `check`, `close`. */
  vault;

  #ttl;
  #disableTouch;
  #userId;
  #now;
  /** Per session id, the tail of its saves: a save reads and writes with none between. */
  #saving = new Map();

  /**
   * @param options everything SessionVaultStore takes (storageDir, encryptionKey or
   *   rawKey, durability, backend, idleTimeoutMs, maxLifetimeMs, cacheBytes,
   *   lockTimeoutMs), plus connect-redis's `ttl` (seconds, or a function of the session;
   *   used when `cookie.expires` is absent; default 86400) and `disableTouch`, and
   *   `userId` (where the user id lives in the session: a dotted path or a function), which
   *   indexes sessions by user for `revokeUser` and `userSessions`.
   */
  constructor(options = {}) {
    super();
    const { ttl = DEFAULT_TTL_SECONDS, disableTouch = false, userId, ...config } = options;
    if (typeof ttl !== "function" && !(Number.isFinite(ttl) && ttl > 0 && ttl <= MAX_TTL_SECONDS)) {
      throw invalid(`ttl must be a positive number of seconds (up to ${MAX_TTL_SECONDS}) or a function of the session`);
    }
    this.#ttl = ttl;
    this.#disableTouch = Boolean(disableTouch);
    this.#userId = userGetter(userId);
    this.#now = config.now ?? Date.now;
    // A typo in the path is a clear error now, not a tree of directories made for it.
    if (typeof config.storageDir === "string" && config.storageDir !== "") {
      const parent = path.dirname(path.resolve(config.storageDir));
      if (!existsSync(parent)) {
        throw invalid(`storageDir ${config.storageDir}: its parent ${parent} does not exist`);
      }
    }
    this.vault = new SessionVaultStore(config);
    // No "disconnect" if it cannot open: express-session would then run the app with no
    // req.session at all. Every call rejects with the reason instead, which express-session
    // hands to the app's error handler.
    this.vault.ready.then(
      () => this.emit("connect"),
      () => {},
    );
  }

  /** When `sess` expires (ms, whole): its cookie's expiry, else now + `ttl` seconds. */
  #expiresAt(sess, ttl = this.#ttl) {
    const expires = sess?.cookie?.expires;
    if (expires !== undefined && expires !== null) {
      const at = new Date(expires).getTime();
      if (Number.isFinite(at)) return Math.floor(at);
    }
    const seconds = typeof ttl === "function" ? ttl(sess) : ttl;
    if (!(typeof seconds === "number" && seconds > 0 && seconds <= MAX_TTL_SECONDS)) {
      throw invalid(`ttl must give a positive number of seconds up to ${MAX_TTL_SECONDS}, got ${seconds}`);
    }
    // A whole number of milliseconds, whatever the clock gives.
    return Math.floor(this.#now() + seconds * 1000);
  }

  /** The user id the `userId` option finds in `sess`, as a string; undefined if none. */
  #user(sess) {
    const user = this.#userId?.(sess);
    if (user === undefined || user === null) return undefined;
    if (typeof user === "string" || (typeof user === "number" && Number.isFinite(user))) return String(user);
    // An object would index every user's sessions under "[object Object]".
    throw invalid(`userId must find a string or a number in the session, got ${typeof user}`);
  }

  /**
   * The JSON text of the document that stores `sess` (whose JSON text is `text`) under
   * `sid`, expiring at `expiresAt`: `{ sessionId, expiresAt, session, userContext? }`.
   */
  #documentText(sid, sess, text, expiresAt) {
    const user = this.#user(sess);
    const userContext = user === undefined ? "" : `,"userContext":${JSON.stringify({ userId: user })}`;
    return `{"sessionId":${JSON.stringify(sid)},"expiresAt":${expiresAt},"session":${text}${userContext}}`;
  }

  /** The session stored under `sid`, or null (absent, expired, malformed id, damaged). */
  get(sid, callback) {
    return settle(async () => {
      let read;
      try {
        read = await this.vault[textCalls].read(sid);
      } catch (error) {
        // A cookie is the client's to forge, and a damaged record was just quarantined:
        // either way there is no session, which the middleware handles by starting one.
        if (["invalid-id", "corrupted", "missing-key"].includes(error?.code)) return null;
        throw error;
      }
      if (read === undefined) return null;
      const sess = read.doc.session;
      if (sess === null || typeof sess !== "object" || Array.isArray(sess)) return null;
      // express-session's Session copies members with for…in, which skips symbols:
      // createSession carries it over. (@fastify/session does not: its saves are whole.)
      sess[READ] = read.text;
      return sess;
    }, callback);
  }

  /** express-session's `createSession`, keeping what `get` read on the session it makes. */
  createSession(req, sess) {
    const read = sess?.[READ];
    const made = super.createSession(req, sess);
    if (read !== undefined) remember(made, read);
    return made;
  }

  /**
   * Stores `sess` under `sid`. A session this request read is saved as what the request
   * changed, merged over what other requests saved meanwhile (read and write with no save
   * of `sid` between), so two requests changing different members both keep their change.
   * A session destroyed while this request was in flight stays destroyed (the store
   * refuses to bring it back), and one whose cookie has already expired is removed instead.
   */
  set(sid, sess, callback) {
    return settle(
      () =>
        this.#exclusive(sid, async () => {
          // As express-session would write it: its toJSON, Dates as strings.
          const mine = JSON.stringify(sess);
          let saved = sess;
          let text = mine;
          const read = sess?.[READ];
          const calls = this.vault[textCalls];
          for (let attempt = 1; typeof read === "string"; attempt++) {
            const stored = await calls.read(sid);
            const theirs = stored?.doc.session;
            // A stored document that is not an express session (set directly) is replaced.
            if (theirs === null || typeof theirs !== "object" || Array.isArray(theirs)) break;
            saved = mergeChanges(JSON.parse(read).session, JSON.parse(mine), theirs);
            text = JSON.stringify(saved);
            // One process alone writes a directory store, and its saves of `sid` take
            // turns (#exclusive); other processes write a redis store, so the merge is
            // stored only over what it was merged with, and made again if that changed.
            const expiresAt = this.#expiresAt(saved);
            if (!calls.shared || expiresAt <= this.#now()) break;
            const doc = this.#documentText(sid, saved, text, expiresAt);
            if (await calls.setIfUnchanged(sid, doc, stored.text)) {
              if (sess !== null && typeof sess === "object") remember(sess, `{"session":${mine}}`);
              return;
            }
            if (attempt === MERGE_ATTEMPTS) {
              throw new UnavailableError(
                "unavailable",
                `session ${JSON.stringify(sid)} changed under ${MERGE_ATTEMPTS} saves in a row: not saved`,
              );
            }
          }
          const expiresAt = this.#expiresAt(saved);
          if (expiresAt <= this.#now()) {
            await this.vault.delete(sid);
            return;
          }
          const doc = this.#documentText(sid, saved, text, expiresAt);
          try {
            await this.vault[textCalls].set(sid, doc);
          } catch (error) {
            if (error?.code === "removed") return;
            throw error;
          }
          // A second save by the same request saves what it changed since this one.
          if (sess !== null && typeof sess === "object") remember(sess, `{"session":${mine}}`);
        }),
      callback,
    );
  }

  /** Runs `work` after every save of `sid` already under way. */
  #exclusive(sid, work) {
    const before = this.#saving.get(sid) ?? Promise.resolve();
    const result = before.then(work);
    const tail = result.catch(() => {});
    this.#saving.set(sid, tail);
    tail.then(() => {
      if (this.#saving.get(sid) === tail) this.#saving.delete(sid);
    });
    return result;
  }

  /**
   * Keeps `sid` alive: moves its expiry to `sess.cookie.expires` (or now + ttl) at the cost
   * of an access, never past the store's maximum lifetime; a session that is gone stays
   * gone.
   */
  touch(sid, sess, callback) {
    return settle(async () => {
      if (this.#disableTouch) return;
      try {
        await this.vault[textCalls].touch(sid, this.#expiresAt(sess));
      } catch (error) {
        if (error?.code === "invalid-id") return;
        throw error;
      }
    }, callback);
  }

  /** Removes `sid`'s session; a later `set` of it from a request in flight is refused. */
  destroy(sid, callback) {
    return settle(async () => {
      try {
        await this.vault.delete(sid);
      } catch (error) {
        if (error?.code === "invalid-id") return;
        throw error;
      }
    }, callback);
  }

  /** Every live session, as express-session saved them (a page at a time inside). */
  all(callback) {
    return settle(
      () =>
        everyPage(async (after) => {
          const { sessions, next } = await this.vault.list({ after, limit: PAGE });
          return { items: sessions.map((doc) => doc.session), next };
        }),
      callback,
    );
  }

  /** Every live session's id (connect-redis's `ids`). */
  ids(callback) {
    return settle(
      () =>
        everyPage(async (after) => {
          const { ids, next } = await this.vault.listIds({ after, limit: PAGE });
          return { items: ids, next };
        }),
      callback,
    );
  }

  /** How many live sessions the store holds. */
  length(callback) {
    return settle(() => this.vault.getSessionCount(), callback);
  }

  /** Removes every session. */
  clear(callback) {
    return settle(() => this.vault.clearAll(), callback);
  }

  /** Ends every session of `userId` (with the `userId` option); resolves to how many. */
  revokeUser(userId, callback) {
    return settle(() => this.vault.revokeUser(String(userId)), callback);
  }

  /** The live sessions of `userId`, as express-session saved them. */
  userSessions(userId, callback) {
    return settle(async () => {
      const docs = await this.vault.getUserSessions(String(userId));
      return docs.map((doc) => doc.session);
    }, callback);
  }

  /**
   * Moves the sessions of a session-file-store directory into this store, so its users
   * stay logged in: each live session is stored under its id with the expiry
   * session-file-store gave it (last access + the cookie's maxAge, or its `ttl`), without
   * its `__lastAccess`. Options: `secret` (session-file-store's, if it encrypted),
   * `ttl` (its ttl in seconds, default 3600) and `fileExtension` (default ".json").
   * Sessions already live here are left as they are; the directory is only read.
   * Resolves to `{ imported, expired, alreadyPresent, failed: [{ file, reason }] }`.
   */
  importSessionFileStore(dir, options = {}, callback) {
    if (typeof options === "function") [options, callback] = [{}, options];
    return settle(async () => {
      const { secret, ttl = FILE_STORE_TTL_SECONDS, fileExtension = ".json" } = options;
      if (typeof dir !== "string" || dir === "") throw invalid("importSessionFileStore needs the directory");
      if (secret !== undefined && (typeof secret !== "string" || secret === "")) {
        throw invalid("secret must be session-file-store's secret (a non-empty string)");
      }
      if (!(Number.isFinite(ttl) && ttl > 0 && ttl <= MAX_TTL_SECONDS)) {
        throw invalid(`ttl must be a positive number of seconds up to ${MAX_TTL_SECONDS}`);
      }
      const report = { imported: [], expired: [], alreadyPresent: [], failed: [] };
      for await (const entry of readSessionFileStore(path.resolve(dir), { secret, fileExtension })) {
        if (entry.reason !== undefined) {
          report.failed.push({ file: entry.file, reason: entry.reason });
          continue;
        }
        const { __lastAccess: lastAccess, ...saved } = entry.session;
        const maxAge = Number(saved.cookie?.originalMaxAge) || ttl * 1000;
        const expiresAt = Number.isFinite(lastAccess)
          ? Math.floor(lastAccess + maxAge)
          : this.#expiresAt(saved, ttl);
        if (expiresAt <= this.#now()) {
          report.expired.push(entry.sessionId);
          continue;
        }
        const doc = this.#documentText(entry.sessionId, saved, JSON.stringify(saved), expiresAt);
        try {
          await this.vault[textCalls].create(entry.sessionId, doc);
          report.imported.push(entry.sessionId);
        } catch (error) {
          if (error?.code === "already-exists") report.alreadyPresent.push(entry.sessionId);
          else report.failed.push({ file: entry.file, reason: `${error.code ?? "error"}: ${error.message}` });
        }
      }
      return report;
    }, callback);
  }

  /** Closes the underlying store (its lock is released). */
  close(callback) {
    return settle(() => this.vault.close(), callback);
  }
}
