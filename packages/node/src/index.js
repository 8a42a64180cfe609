// session-vault for Node: the original FileSessionStore's interface (ISessionStore, name
// for name), run by the session-vault component. See types/index.d.ts for the API.

import { mkdirSync, statSync } from "node:fs";
import path from "node:path";

import { fromText, plain, time, toPatch, toText } from "./convert.js";
import { InvalidInputError, storeError } from "./errors.js";
import { lock } from "./lock.js";
import { ReadCache } from "./read-cache.js";
import { textCalls } from "./text.js";
import { ComponentPool } from "./pool.js";
import { ComponentThread } from "./thread.js";

export {
  AlreadyExistsError,
  CorruptedError,
  InvalidIdError,
  InvalidInputError,
  IoError,
  LockedError,
  MissingKeyError,
  NotFoundError,
  RemovedError,
  SessionVaultError,
  SessionVaultTrap,
  TooLargeError,
  UnavailableError,
  WrongKeyError,
} from "./errors.js";
export { LOCK_FILE } from "./lock.js";

const STORE = "/store";
/** How long `ready` waits for another process's lock by default, as the CLI does. */
const LOCK_TIMEOUT_MS = 100;
/** The bytes of sessions kept for reads when `cacheBytes` is not given (the component's default). */
const CACHE_BYTES = 8 * 1024 * 1024;
/** Sessions re-sealed per call of `rekey`: other calls run between batches. */
const REKEY_BATCH = 1000;

function invalid(message) {
  return new InvalidInputError("invalid-input", message);
}

/** The WIT secret of the configuration; checked in the constructor, as the original did. */
function secretOf(config) {
  if (config.rawKey !== undefined) {
    if (typeof config.rawKey === "string" && !/^[0-9a-fA-F]{64}$/.test(config.rawKey)) {
      throw invalid("rawKey must be 32 bytes (a Uint8Array, or 64 hex digits)");
    }
    const key =
      typeof config.rawKey === "string" ? Buffer.from(config.rawKey, "hex") : config.rawKey;
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw invalid("rawKey must be 32 bytes (a Uint8Array, or 64 hex digits)");
    }
    return { tag: "raw-key", val: Uint8Array.from(key) };
  }
  if (typeof config.encryptionKey !== "string") {
    throw invalid("encryptionKey (a passphrase of at least 32 characters) or rawKey is required");
  }
  if (config.encryptionKey.length < 32) {
    // The original's constructor threw this too.
    throw invalid("Encryption secret must be at least 32 characters");
  }
  return { tag: "passphrase", val: config.encryptionKey };
}

/** How long a redis request may take when `redisTimeoutMs` is not given (as the CLI's). */
const REDIS_TIMEOUT_MS = 2000;
/**
 * Component threads of a redis store when `redisConcurrency` is not given: how many
 * sessions' calls wait on the server at once (each thread waits out its own round trips).
 */
const REDIS_CONCURRENCY = 4;

/** The server of a store on the `redis` backend, checked: { url, prefix, timeoutMs }. */
function redisOf(config) {
  const url = config.redisUrl ?? process.env.SESSION_VAULT_REDIS_URL;
  if (typeof url !== "string" || url === "") {
    throw invalid("the redis backend needs redisUrl (or SESSION_VAULT_REDIS_URL), such as redis://127.0.0.1:6379/0");
  }
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    !["redis:", "rediss:"].includes(parsed.protocol) ||
    parsed.hostname === "" ||
    !/^(\/[0-9]{0,5})?$/.test(parsed.pathname)
  ) {
    throw invalid("redisUrl must be a redis:// or rediss:// URL with a host and a database number, such as redis://127.0.0.1:6379/0");
  }
  const prefix = config.prefix;
  if (prefix !== undefined && (typeof prefix !== "string" || !/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix) || /^:+$/.test(prefix))) {
    throw invalid("prefix must be 1 to 64 characters of [A-Za-z0-9_.:-], not only colons (such as sess:)");
  }
  const timeoutMs = optionalInteger(config.redisTimeoutMs, "redisTimeoutMs", { min: 1, max: 600_000 }) ?? REDIS_TIMEOUT_MS;
  const concurrency = optionalInteger(config.redisConcurrency, "redisConcurrency", { min: 1, max: 64 }) ?? REDIS_CONCURRENCY;
  return { url, prefix, timeoutMs, concurrency };
}

/** The error codes of a call the store refused, having changed nothing. */
const REFUSALS = new Set(["not-found", "already-exists", "removed", "invalid-id", "invalid-input", "too-large"]);

/** The id `session` is stored under, if it says so plainly (no `toJSON` to say otherwise). */
function idOf(session) {
  return typeof session?.toJSON === "function" ? undefined : session?.sessionId;
}

function validTime(ms) {
  return typeof ms === "number" && Number.isFinite(ms) && ms >= 0;
}

function optionalInteger(value, name, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function oneOf(value, name, choices) {
  if (value === undefined || choices.includes(value)) return value;
  throw invalid(`${name} must be one of ${choices.join(", ")}, got ${value}`);
}

/**
 * An encrypted session store in a directory, with the original FileSessionStore's
 * methods. Every method waits for `ready`; calls may overlap freely (each runs whole,
 * in the order made). The component runs on a thread of its own, so no call ever blocks
 * the caller's event loop, whether it waits for the disk or for the store's housekeeping.
 */
export class SessionVaultStore {
  /** Resolves once the store is open; rejects (as does every call) if it cannot be. */
  ready;

  #dir;
  #secret;
  #config;
  #legacySecret;
  #now;
  #lockTimeoutMs;
  #thread;
  #lock;
  /** With the `redis` backend: { url, prefix, timeoutMs }. */
  #redis;
  #closed = false;
  /** True once the store is open: calls are sent as they are made. */
  #opened = false;
  /** The calls made before the store opened, sent in order as it does. */
  #queued = [];
  /** Why the store could not open: every call rejects with it. */
  #openFailure;
  /** A redis store whose server was away at open: the next call opens it again. */
  #reopenable = false;
  /** The open again under way, if any. */
  #opening;
  #cache;

  /**
   * For this package's modules (./text.js): `read(id)` resolves to `{ text, doc }` (the
   * session's JSON text as last read, whose `expiresAt` a touch since may have moved, and
   * the session now, parsed afresh), or undefined if absent; `create(id, text)`
   * and `set(id, text)` store session `id` given as JSON text; `setIfUnchanged(id, text,
   * expected)` stores it only over the session exactly as `read` gave its text (resolves
   * to whether it did); `touch(id, expiresAt)` resolves to whether a live session was
   * touched (no session crosses back). `shared` is whether other processes write the
   * store too (redis), so that a read-merge-write must compare and set.
   */
  [textCalls] = {
    create: (id, text) => this.#change(id, "create", text),
    read: (id) => this.#read(id),
    set: (id, text) => this.#change(id, "set", text),
    setIfUnchanged: (id, text, expected) => this.#change(id, "setIfUnchanged", text, expected),
    touch: (id, expiresAt) => this.#touch(id, expiresAt),
    shared: false,
  };

  constructor(config) {
    if (config === null || typeof config !== "object") {
      throw invalid("the configuration must be an object with storageDir and encryptionKey");
    }
    const backend = oneOf(config.backend, "backend", ["log", "files", "redis"]);
    if (backend === "redis") {
      this.#redis = redisOf(config);
      this[textCalls].shared = true;
    } else {
      if (typeof config.storageDir !== "string" || config.storageDir === "") {
        throw invalid("storageDir (the store directory) is required");
      }
      this.#dir = path.resolve(config.storageDir);
    }
    this.#secret = secretOf(config);
    this.#legacySecret = config.encryptionKey;
    const now = config.now ?? Date.now;
    if (typeof now !== "function" || !validTime(now())) {
      throw invalid("now must be a function returning milliseconds since the epoch (≥ 0)");
    }
    // Checked when the store is made; a clock that goes bad later is not obeyed.
    this.#now = now === Date.now ? undefined : () => {
      const ms = now();
      return validTime(ms) ? Math.floor(ms) : Date.now();
    };
    this.#lockTimeoutMs = optionalInteger(config.lockTimeoutMs, "lockTimeoutMs") ?? LOCK_TIMEOUT_MS;
    const idle = optionalInteger(config.idleTimeoutMs, "idleTimeoutMs", { min: 1 });
    const cap = optionalInteger(config.maxLifetimeMs, "maxLifetimeMs", { min: 1 });
    const cache = optionalInteger(config.cacheBytes, "cacheBytes");
    this.#config = {
      secret: this.#secret,
      directory: backend === "redis" ? undefined : STORE,
      maxSessionBytes: optionalInteger(config.maxSessionBytes, "maxSessionBytes", {
        max: 2 ** 32 - 1,
      }),
      idleTimeout: idle === undefined ? undefined : BigInt(idle),
      maxLifetime: cap === undefined ? undefined : BigInt(cap),
      durability: oneOf(config.durability, "durability", ["durable", "relaxed"]),
      backend,
      cacheBytes: cache === undefined ? undefined : BigInt(cache),
      bucket: this.#redis?.prefix,
    };
    // A read cache only where this process is the only writer (a directory's lock; other
    // hosts write a redis store) and a session's expiry is its document's `expiresAt`.
    const cached = backend !== "redis" && idle === undefined && cap === undefined;
    this.#cache = new ReadCache(cached ? (cache ?? CACHE_BYTES) : 0);
    this.ready = this.#open();
    // A failed open is reported by `ready` and by every call, never as an unhandled
    // rejection that would stop the process.
    this.ready.catch(() => {});
  }

  /**
   * Opens the store: a directory under its lock, or a redis store (no directory, no lock:
   * every host opens it). Then sends the calls made before, here, before `ready` resolves:
   * no call made in a reaction to it (an express store's "connect") can overtake one made
   * before.
   */
  async #open() {
    try {
      if (this.#redis === undefined) {
        try {
          mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
        } catch (e) {
          throw storeError("io", { operation: `creating ${this.#dir}`, reason: e.message });
        }
        this.#lock = await lock(this.#dir, this.#lockTimeoutMs);
        this.#thread = new ComponentThread({ [STORE]: this.#dir }, this.#config, this.#now);
      } else {
        const { url, timeoutMs, concurrency } = this.#redis;
        this.#thread = new ComponentPool(concurrency, {}, this.#config, this.#now, { url, timeoutMs });
      }
      await this.#thread.ready;
    } catch (e) {
      const thread = this.#thread;
      this.#thread = undefined;
      this.#lock?.release();
      await thread?.close().catch(() => {});
      // A redis server that is away now may be back for the next call: that call opens
      // the store again. Anything else (a locked directory, a wrong key, a bucket holding
      // another store) is final.
      if (this.#redis !== undefined && e?.code === "unavailable" && !this.#closed) this.#reopenable = true;
      else {
        this.#closed = true;
        this.#openFailure = e;
      }
      for (const { reject } of this.#queued.splice(0)) reject(e);
      throw e;
    }
    this.#opened = true;
    for (const { operation, args, route, resolve, reject } of this.#queued.splice(0)) {
      this.#send(operation, args, route).then(resolve, reject);
    }
  }

  /** Opens a redis store again after its server was away; the calls made meanwhile wait. */
  #reopen() {
    this.#reopenable = false;
    this.#opening = this.#open().catch(() => {});
  }

  /**
   * Runs `operation` on the component's thread once the store is open; resolves to its
   * value. Calls are sent in the order they are made, and run in that order.
   */
  #call(operation, ...args) {
    return this.#route(undefined, operation, args);
  }

  /**
   * `#call` of a call on session `route` (undefined: on any): with the redis backend's
   * threads, the thread of that session serves it.
   */
  #route(route, operation, args) {
    let sent;
    if (this.#openFailure !== undefined) sent = Promise.reject(this.#openFailure);
    else if (this.#opened || this.#closed) sent = this.#send(operation, args, route);
    else {
      sent = new Promise((resolve, reject) => this.#queued.push({ operation, args, route, resolve, reject }));
      if (this.#reopenable) this.#reopen();
    }
    return sent.catch((error) => {
      // A refusal changed nothing; any other failure may leave the store's memory unlike
      // what was kept (a failed flush re-opens it, a trap closes it).
      if (!REFUSALS.has(error?.code)) this.#cache.changingAll();
      if (this.#thread?.closed && !this.#closed) {
        this.#closed = true;
        this.#lock?.release();
        this.#thread.close().catch(() => {});
      }
      throw error;
    });
  }

  #send(operation, args, route) {
    if (this.#closed) return Promise.reject(new Error("session-vault: the store is closed"));
    return this.#thread.call(operation, args, route);
  }

  /** A call that may change any session. */
  #changeAll(operation, ...args) {
    this.#cache.changingAll();
    return this.#call(operation, ...args);
  }

  /** A call that may change session `id` (a string, else it may change any). */
  async #change(id, operation, ...args) {
    if (typeof id !== "string") return this.#changeAll(operation, ...args);
    const number = this.#cache.changing(id);
    try {
      return await this.#route(id, operation, args);
    } finally {
      this.#cache.answered(id, number);
    }
  }

  /** Moves `id`'s expiry to `until` (ms); resolves to whether a live session was touched. */
  async #touch(id, expiresAt) {
    const until = time(expiresAt);
    if (typeof id !== "string") return this.#changeAll("touchFound", id, until);
    const number = this.#cache.touching(id);
    let found = false;
    try {
      found = await this.#route(id, "touchFound", [id, until]);
      return found;
    } finally {
      this.#cache.touched(id, number, found, Number(until));
      this.#cache.answered(id, number);
    }
  }

  /** Session `id` as `{ text, doc }` (see `[textCalls]`), or undefined if absent. */
  async #read(id) {
    if (this.#opened && !this.#closed && !this.#thread.closed) {
      const kept = this.#cache.entry(id, this.#now?.() ?? Date.now());
      if (kept !== undefined) {
        const doc = JSON.parse(kept.text);
        doc.expiresAt = kept.expiresAt;
        return { text: kept.text, doc };
      }
    }
    const ticket = this.#cache.reading();
    const text = await this.#route(typeof id === "string" ? id : undefined, "get", [id]);
    if (text === undefined) return undefined;
    const doc = JSON.parse(text);
    this.#cache.keep(id, text, doc, ticket);
    return { text, doc };
  }

  /** Stores a new session; resolves to its id. A live id is refused (`already-exists`). */
  async create(sessionData) {
    const text = toText(sessionData);
    await this.#change(idOf(sessionData), "create", text);
    return sessionData.sessionId;
  }

  /** The session, or null if it is absent or expired. */
  async get(sessionId) {
    const read = await this.#read(sessionId);
    return read === undefined ? null : read.doc;
  }

  /**
   * Merges `updates` into the session with the original's rules (top-level members
   * replace; userContext, tokenMetadata and security merge member by member). Rejects
   * with NotFoundError for an absent or expired id.
   */
  async update(sessionId, updates) {
    await this.#change(sessionId, "update", sessionId, toPatch(updates));
  }

  /** Removes the session; resolves whether or not it existed. */
  async delete(sessionId) {
    await this.#change(sessionId, "delete", sessionId);
  }

  /** Removes every expired session; resolves to how many. */
  async cleanup() {
    return Number(await this.#changeAll("cleanup"));
  }

  /** The live sessions of `userId`. */
  async getUserSessions(userId) {
    return (await this.#call("userSessions", userId)).map(fromText);
  }

  /** How many live sessions the store holds. */
  async getSessionCount() {
    return Number(await this.#call("count"));
  }

  /** Removes every session. */
  async clearAll() {
    await this.#changeAll("clear");
  }

  // --- ours ---

  /**
   * Records an access (security.lastAccessedAt = now, accessCount + 1, where the session
   * has `security`) with a small write, and returns the session; null if it is absent or
   * expired. With `expiresAt` (ms since the epoch), also moves the session's expiry there
   * (a rolling expiry), as cheaply.
   */
  async touch(sessionId, expiresAt) {
    const until = expiresAt === undefined || expiresAt === null ? undefined : time(expiresAt);
    const text = await this.#change(sessionId, "touch", sessionId, until);
    return text === undefined ? null : fromText(text);
  }

  /**
   * Stores a session whether or not its id is live (create or replace, one atomic step,
   * as durable as `create`); resolves to its id. Any JSON object with `sessionId` and
   * `expiresAt` (ms since the epoch) is a session; it reads back as exactly this JSON.
   */
  async set(session) {
    const text = toText(session);
    await this.#change(idOf(session), "set", text);
    return session.sessionId;
  }

  /**
   * One page of every live session's id, in id order: `{ ids, next }`, where `next` is the
   * cursor of the following page (pass it as `after`), or null after the last. `limit` is
   * 1 to 1000 (default 100). A session live throughout a listing is on exactly one page.
   */
  async listIds({ after, limit = 100 } = {}) {
    const page = await this.#call("listIds", after ?? undefined, limit);
    return { ids: page.ids, next: page.next ?? null };
  }

  /** As `listIds`, with the sessions: `{ sessions, next }`. */
  async list({ after, limit = 100 } = {}) {
    const page = await this.#call("list", after ?? undefined, limit);
    return { sessions: page.sessions.map(fromText), next: page.next ?? null };
  }

  /** Removes every session of `userId`; resolves to how many. */
  async revokeUser(userId) {
    return Number(await this.#changeAll("revokeUser", userId));
  }

  /** Verifies every stored session, quarantines damaged ones, and reports. */
  async check() {
    return plain(await this.#changeAll("check"));
  }

  /** Adds a key (a passphrase, or 32 raw bytes) that seals new writes from now on. */
  async addKey(secret) {
    const wit = secretOf(typeof secret === "string" ? { encryptionKey: secret } : { rawKey: secret });
    return this.#changeAll("addKey", wit);
  }

  /** The keys of the store, with how many sessions each seals. */
  async keys() {
    return plain(await this.#call("keys"));
  }

  /** Re-seals every session under an older key with the current key; resolves to how many. */
  async rekey() {
    let total = 0;
    for (;;) {
      const { rekeyed, remaining } = await this.#changeAll("rekey", REKEY_BATCH);
      total += Number(rekeyed);
      // A session that cannot be opened is counted in `remaining` but never rekeyed:
      // `check` reports it.
      if (remaining === 0n || rekeyed === 0n) return total;
    }
  }

  /** Retires key `id` (no session may still be sealed under it: `rekey` first). */
  async retireKey(id) {
    if (!Number.isInteger(id) || id < 0 || id > 2 ** 32 - 1) {
      throw invalid(`a key id is a whole number from 0 to 4294967295, got ${id}`);
    }
    await this.#changeAll("retireKey", id);
  }

  /**
   * Imports the sessions of a directory written by the original FileSessionStore
   * (`<id>.session` files), decrypted with `secret` (default: this store's
   * encryptionKey, the secret the original used). Sessions already present and expired
   * ones are skipped; resolves to the report (imported, expired, alreadyPresent, failed).
   */
  async importLegacy(legacyDir, secret = this.#legacySecret) {
    if (typeof legacyDir !== "string") throw invalid("importLegacy needs the original's directory");
    if (typeof secret !== "string") throw invalid("importLegacy needs the original's encryptionKey");
    const legacyPath = path.resolve(legacyDir);
    let stats;
    try {
      stats = statSync(legacyPath);
    } catch (e) {
      throw storeError("io", { operation: `opening ${legacyPath}`, reason: e.message });
    }
    if (!stats.isDirectory()) {
      throw storeError("io", { operation: `opening ${legacyPath}`, reason: "not a directory" });
    }
    return this.#changeAll("importLegacy", legacyPath, secret);
  }

  /** Closes the store and lets go of its directory; later calls reject. Idempotent. */
  async close() {
    await this.ready.catch(() => {});
    await this.#opening;
    if (this.#closed) return;
    this.#closed = true;
    this.#reopenable = false;
    this.#cache.changingAll();
    // A store that never opened (its server away) has nothing to send them to.
    for (const { reject } of this.#queued.splice(0)) reject(new Error("session-vault: the store is closed"));
    try {
      await this.#thread?.close();
    } finally {
      this.#lock?.release();
    }
  }
}
