// session-vault for Node: the original FileSessionStore's interface (ISessionStore, name
// for name), run by the session-vault component. See types/index.d.ts for the API.

import { mkdirSync, statSync } from "node:fs";
import path from "node:path";

import { instantiate } from "./component.js";
import { fromText, plain, time, toPatch, toText } from "./convert.js";
import { InvalidInputError, SessionVaultTrap, fromComponent, storeError } from "./errors.js";
import { lock } from "./lock.js";

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
const dispose = Symbol.dispose ?? Symbol.for("dispose");
const LEGACY = "/legacy";
/** How long `ready` waits for another process's lock by default, as the CLI does. */
const LOCK_TIMEOUT_MS = 100;
/** Sessions imported per call of the component: bounds the memory of a large import. */
const IMPORT_BATCH = 1000;

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
 * in the order made).
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
  #sessions;
  #store;
  #lock;
  #queue;
  #failed;
  #release;
  #closed = false;

  constructor(config) {
    if (config === null || typeof config !== "object") {
      throw invalid("the configuration must be an object with storageDir and encryptionKey");
    }
    if (typeof config.storageDir !== "string" || config.storageDir === "") {
      throw invalid("storageDir (the store directory) is required");
    }
    this.#dir = path.resolve(config.storageDir);
    this.#secret = secretOf(config);
    this.#legacySecret = config.encryptionKey;
    this.#now = config.now ?? Date.now;
    if (typeof this.#now !== "function" || !validTime(this.#now())) {
      throw invalid("now must be a function returning milliseconds since the epoch (≥ 0)");
    }
    this.#lockTimeoutMs = optionalInteger(config.lockTimeoutMs, "lockTimeoutMs") ?? LOCK_TIMEOUT_MS;
    const idle = optionalInteger(config.idleTimeoutMs, "idleTimeoutMs", { min: 1 });
    const cap = optionalInteger(config.maxLifetimeMs, "maxLifetimeMs", { min: 1 });
    const cache = optionalInteger(config.cacheBytes, "cacheBytes");
    this.#config = {
      secret: this.#secret,
      directory: STORE,
      maxSessionBytes: optionalInteger(config.maxSessionBytes, "maxSessionBytes", {
        max: 2 ** 32 - 1,
      }),
      idleTimeout: idle === undefined ? undefined : BigInt(idle),
      maxLifetime: cap === undefined ? undefined : BigInt(cap),
      durability: oneOf(config.durability, "durability", ["durable", "relaxed"]),
      backend: oneOf(config.backend, "backend", ["log", "files"]),
      cacheBytes: cache === undefined ? undefined : BigInt(cache),
    };
    this.ready = this.#open().catch((e) => {
      this.#failed = e;
      throw e;
    });
    // A failed open is reported by `ready` and by every call, never as an unhandled
    // rejection that would stop the process.
    this.#queue = this.ready.catch(() => {});
  }

  async #open() {
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw storeError("io", { operation: `creating ${this.#dir}`, reason: e.message });
    }
    this.#lock = await lock(this.#dir, this.#lockTimeoutMs);
    try {
      await this.#attach({ [STORE]: this.#dir });
    } catch (e) {
      this.#lock.release();
      this.#closed = true;
      throw e;
    }
  }

  /** A new component instance over `preopens`, with the store opened in it. */
  async #attach(preopens) {
    const { sessions, close } = await instantiate(preopens, this.#now);
    this.#sessions = sessions;
    this.#release = close;
    this.#store = this.#call(() => sessions.Store.open(this.#config));
  }

  /** Drops the store resource (closing the store in the component) and the instance's files. */
  #detach() {
    const store = this.#store;
    this.#store = undefined;
    try {
      if (store) this.#call(() => store[dispose]?.());
    } finally {
      this.#release?.();
      this.#release = undefined;
    }
  }

  /** Closes for good after a failure: later calls reject with `error`. */
  #fail(error) {
    this.#failed = error;
    this.#closed = true;
    this.#lock?.release();
  }

  /** Calls the component, turning what it throws into the package's errors. */
  #call(f) {
    try {
      return f();
    } catch (e) {
      const error = fromComponent(e);
      if (error instanceof SessionVaultTrap) {
        // The instance cannot be trusted after a trap: the store is closed.
        this.#store = undefined;
        this.#closed = true;
        this.#release?.();
        this.#lock?.release();
      }
      throw error;
    }
  }

  /** Runs `f` with the open store, after every call made before it. */
  #run(f) {
    const result = this.#queue.then(() => {
      if (this.#failed) throw this.#failed;
      if (this.#closed || this.#store === undefined) throw new Error("session-vault: the store is closed");
      return f(this.#store);
    });
    this.#queue = result.catch(() => {});
    return result;
  }

  // --- ISessionStore, as the original ---

  /** Stores a new session; resolves to its id. A live id is refused (`already-exists`). */
  create(sessionData) {
    return this.#run((store) => {
      const text = toText(sessionData);
      this.#call(() => store.create(text));
      return sessionData.sessionId;
    });
  }

  /** The session, or null if it is absent or expired. */
  get(sessionId) {
    return this.#run((store) => {
      const text = this.#call(() => store.get(sessionId));
      return text === undefined ? null : fromText(text);
    });
  }

  /**
   * Merges `updates` into the session with the original's rules (top-level members
   * replace; userContext, tokenMetadata and security merge member by member). Rejects
   * with NotFoundError for an absent or expired id.
   */
  update(sessionId, updates) {
    return this.#run((store) => {
      const patch = toPatch(updates);
      this.#call(() => store.update(sessionId, patch));
    });
  }

  /** Removes the session; resolves whether or not it existed. */
  delete(sessionId) {
    return this.#run((store) => {
      this.#call(() => store.delete(sessionId));
    });
  }

  /** Removes every expired session; resolves to how many. */
  cleanup() {
    return this.#run((store) => Number(this.#call(() => store.cleanup())));
  }

  /** The live sessions of `userId`. */
  getUserSessions(userId) {
    return this.#run((store) => this.#call(() => store.userSessions(userId)).map(fromText));
  }

  /** How many live sessions the store holds. */
  getSessionCount() {
    return this.#run((store) => Number(this.#call(() => store.count())));
  }

  /** Removes every session. */
  clearAll() {
    return this.#run((store) => {
      this.#call(() => store.clear());
    });
  }

  // --- ours ---

  /**
   * Records an access (security.lastAccessedAt = now, accessCount + 1, where the session
   * has `security`) with a small write, and returns the session; null if it is absent or
   * expired. With `expiresAt` (ms since the epoch), also moves the session's expiry there
   * (a rolling expiry), as cheaply.
   */
  touch(sessionId, expiresAt) {
    return this.#run((store) => {
      const until = expiresAt === undefined || expiresAt === null ? undefined : time(expiresAt);
      const text = this.#call(() => store.touch(sessionId, until));
      return text === undefined ? null : fromText(text);
    });
  }

  /**
   * Stores a session whether or not its id is live (create or replace, one atomic step,
   * as durable as `create`); resolves to its id. Any JSON object with `sessionId` and
   * `expiresAt` (ms since the epoch) is a session; it reads back as exactly this JSON.
   */
  set(session) {
    return this.#run((store) => {
      const text = toText(session);
      this.#call(() => store.set(text));
      return session.sessionId;
    });
  }

  /**
   * One page of every live session's id, in id order: `{ ids, next }`, where `next` is the
   * cursor of the following page (pass it as `after`), or null after the last. `limit` is
   * 1 to 1000 (default 100). A session live throughout a listing is on exactly one page.
   */
  listIds({ after, limit = 100 } = {}) {
    return this.#run((store) => {
      const page = this.#call(() => store.listIds(after ?? undefined, limit));
      return { ids: page.ids, next: page.next ?? null };
    });
  }

  /** As `listIds`, with the sessions: `{ sessions, next }`. */
  list({ after, limit = 100 } = {}) {
    return this.#run((store) => {
      const page = this.#call(() => store.list(after ?? undefined, limit));
      return { sessions: page.sessions.map(fromText), next: page.next ?? null };
    });
  }

  /** Removes every session of `userId`; resolves to how many. */
  revokeUser(userId) {
    return this.#run((store) => Number(this.#call(() => store.revokeUser(userId))));
  }

  /** Verifies every stored session, quarantines damaged ones, and reports. */
  check() {
    return this.#run((store) => plain(this.#call(() => store.check())));
  }

  /** Adds a key (a passphrase, or 32 raw bytes) that seals new writes from now on. */
  addKey(secret) {
    return this.#run((store) => {
      const wit = secretOf(typeof secret === "string" ? { encryptionKey: secret } : { rawKey: secret });
      return this.#call(() => store.addKey(wit));
    });
  }

  /** The keys of the store, with how many sessions each seals. */
  keys() {
    return this.#run((store) => plain(this.#call(() => store.keys())));
  }

  /** Re-seals every session under an older key with the current key; resolves to how many. */
  rekey() {
    return this.#run((store) => {
      let total = 0;
      for (;;) {
        const { rekeyed, remaining } = this.#call(() => store.rekey(IMPORT_BATCH));
        total += Number(rekeyed);
        // A session that cannot be opened is counted in `remaining` but never rekeyed:
        // `check` reports it.
        if (remaining === 0n || rekeyed === 0n) return total;
      }
    });
  }

  /** Retires key `id` (no session may still be sealed under it: `rekey` first). */
  retireKey(id) {
    return this.#run((store) => {
      if (!Number.isInteger(id) || id < 0 || id > 2 ** 32 - 1) {
        throw invalid(`a key id is a whole number from 0 to 4294967295, got ${id}`);
      }
      this.#call(() => store.retireKey(id));
    });
  }

  /**
   * Imports the sessions of a directory written by the original FileSessionStore
   * (`<id>.session` files), decrypted with `secret` (default: this store's
   * encryptionKey, the secret the original used). Sessions already present and expired
   * ones are skipped; resolves to the report (imported, expired, alreadyPresent, failed).
   */
  importLegacy(legacyDir, secret = this.#legacySecret) {
    return this.#run(async () => {
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
      // The component reaches the legacy directory only for the import, read-only: an
      // instance with both directories opens the store while this one has let go of it.
      this.#detach();
      const report = { imported: [], expired: [], alreadyPresent: [], failed: [] };
      let outcome;
      try {
        await this.#attach({ [STORE]: this.#dir, [LEGACY]: { path: legacyPath, readOnly: true } });
        const legacy = this.#call(() => this.#sessions.LegacyStore.open(LEGACY, secret));
        try {
          const files = this.#call(() => legacy.files());
          for (let i = 0; i < files.length; i += IMPORT_BATCH) {
            const batch = files.slice(i, i + IMPORT_BATCH);
            const part = this.#call(() => legacy.importInto(this.#store, batch));
            for (const key of Object.keys(report)) report[key].push(...part[key]);
          }
        } finally {
          legacy[dispose]?.();
        }
      } catch (e) {
        outcome = e;
      }
      // Back to an instance that sees the store directory only.
      try {
        this.#detach();
        if (!this.#closed) await this.#attach({ [STORE]: this.#dir });
      } catch (e) {
        this.#fail(e);
        throw outcome ?? e;
      }
      if (outcome) throw outcome;
      return report;
    });
  }

  /** Closes the store and lets go of its directory; later calls reject. Idempotent. */
  async close() {
    await this.#queue;
    if (this.#closed && this.#store === undefined) return;
    this.#closed = true;
    try {
      this.#detach();
    } finally {
      this.#lock?.release();
    }
  }
}
