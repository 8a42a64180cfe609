// session-vault for Node: the original FileSessionStore's ISessionStore, name for name,
// run by the session-vault WASI component.

/** The user a session belongs to. Members beyond these are kept as they are. */
export interface UserContext {
  userId: string;
  email?: string;
  name?: string;
  tenantId?: string;
  roles?: string[];
  [extra: string]: unknown;
}

/** The OAuth tokens of a session. Members beyond these are kept as they are. */
export interface TokenMetadata {
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  scopes: string[];
  [extra: string]: unknown;
}

/** Where and how often a session is used. Members beyond these are kept as they are. */
export interface SecurityTracking {
  ipAddress: string;
  userAgent: string;
  createdAt: number;
  lastAccessedAt: number;
  accessCount: number;
  fingerprint?: string;
  [extra: string]: unknown;
}

/** A session, as the original store kept it. Members beyond these are kept as they are. */
export interface SessionData {
  /** 1 to 128 characters of [A-Za-z0-9_-]. */
  sessionId: string;
  sessionToken: string;
  userContext: UserContext;
  tokenMetadata: TokenMetadata;
  security: SecurityTracking;
  /** Milliseconds since the epoch; from then on the session is absent. */
  expiresAt: number;
  createdAt: number;
  [extra: string]: unknown;
}

/**
 * Any session: a JSON object with a `sessionId` and an `expiresAt`; every other member is
 * the caller's and reads back exactly as written. The original's members are optional,
 * and keep their types where present (`userContext.userId` indexes the session by user;
 * `security` is where `touch` records accesses).
 */
export interface Session {
  /** 1 to 128 characters of [A-Za-z0-9_-]. */
  sessionId: string;
  /** Milliseconds since the epoch; from then on the session is absent. */
  expiresAt: number;
  sessionToken?: string;
  userContext?: UserContext;
  tokenMetadata?: TokenMetadata;
  security?: SecurityTracking;
  createdAt?: number;
  [member: string]: unknown;
}

/** The original's store interface. */
export interface ISessionStore {
  create(sessionData: SessionData): Promise<string>;
  get(sessionId: string): Promise<SessionData | null>;
  update(sessionId: string, updates: Partial<SessionData>): Promise<void>;
  delete(sessionId: string): Promise<void>;
  cleanup(): Promise<number>;
  getUserSessions(userId: string): Promise<SessionData[]>;
  getSessionCount(): Promise<number>;
}

/** The original's configuration (a passphrase), or a raw key, plus session-vault's options. */
export type SessionVaultStoreConfig = SessionVaultOptions &
  (
    | {
        /** A passphrase of at least 32 characters (the original's `encryptionKey`). */
        encryptionKey: string;
        rawKey?: undefined;
      }
    | {
        /** A 256-bit key (32 bytes, or 64 hex digits) instead of a passphrase: no scrypt at open. */
        rawKey: Uint8Array | string;
        /** Kept as the default secret of `importLegacy`. */
        encryptionKey?: string;
      }
  );

/** session-vault's options beside the secret: a store in a directory, or in Redis. */
export type SessionVaultOptions = DirectoryOptions | RedisOptions;

/** A store in a directory, held by one process at a time. */
export interface DirectoryOptions extends CommonOptions {
  /** The store directory (created with mode 0700 if missing). */
  storageDir: string;
  /** Where a new store keeps its sessions (default `log`); an existing store keeps its own. */
  backend?: "log" | "files";
}

/**
 * A store in Redis (or Valkey) 7.0+, shared by every process and host that opens it with
 * the same secret and prefix; the server only ever holds sealed records.
 */
export interface RedisOptions extends CommonOptions {
  backend: "redis";
  /** `redis://[user:password@]host:port/db` or `rediss://…` (default SESSION_VAULT_REDIS_URL). */
  redisUrl?: string;
  /**
   * The prefix of the store's keys (default `session-vault`): 1 to 64 characters of
   * `[A-Za-z0-9_.:-]`; a trailing colon is the separator (`sess:` and `sess` are one store,
   * keys `{sess}:…`).
   */
  prefix?: string;
  /** How long connecting and each request may take, in ms (default 2000). */
  redisTimeoutMs?: number;
  /**
   * Component instances serving the store side by side, each on a thread of its own (default
   * 4, at most 64): an instance waits out each round trip to the server, so one runs its
   * calls one after another. Calls on one session, and calls on every session, still run
   * in the order made.
   */
  redisConcurrency?: number;
  storageDir?: undefined;
}

/** Options of every store. */
export interface CommonOptions {
  /**
   * `durable` (default) syncs every write before its promise resolves; `relaxed` does
   * not (faster; a power cut can lose recent writes; the original never synced).
   */
  durability?: "durable" | "relaxed";
  /** Expire sessions not accessed (touched) for this many milliseconds. */
  idleTimeoutMs?: number;
  /**
   * Expire every session this many milliseconds after its createdAt (or first write),
   * whatever its expiresAt says; no touch moves it past.
   */
  maxLifetimeMs?: number;
  /** Refuse sessions whose JSON is longer than this (default 65,536). */
  maxSessionBytes?: number;
  /**
   * Bytes of recently used sessions kept decrypted in memory (default 8 MiB; 0: none), by
   * the component and again, as JSON text, on the caller's thread (sessions read again are
   * answered there, without a call to the component's thread).
   */
  cacheBytes?: number;
  /** How long `ready` waits for another process to let go of the directory (default 100). */
  lockTimeoutMs?: number;
  /** The clock the store reads, in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
}

/** An optional member may be `null` (or `undefined`) in an update: it is removed. */
type Removable<T> = { [K in keyof T]?: undefined extends T[K] ? T[K] | null : T[K] };

/**
 * What `update` takes: the original's `Partial<SessionData>`, and also partial nested
 * objects (merged member by member) with `null` removing an optional member. A nested
 * object given as `null` is left as it is.
 */
export interface SessionUpdate {
  sessionId?: string;
  sessionToken?: string;
  userContext?: Removable<UserContext> | null;
  tokenMetadata?: Removable<TokenMetadata> | null;
  security?: Removable<SecurityTracking> | null;
  expiresAt?: number;
  createdAt?: number;
  [extra: string]: unknown;
}

/** What `check` found. */
export interface CheckReport {
  live: number;
  expired: number;
  missingKey: number;
  quarantined: number;
  newlyQuarantined: string[];
  foreign: number;
  deadBytes: number;
  oldestKey?: number;
}

/** A key of the store. */
export interface KeyInfo {
  id: number;
  current: boolean;
  retired: boolean;
  sessions: number;
}

/** What `importLegacy` did with each file of the original's directory. */
export interface ImportReport {
  imported: string[];
  expired: string[];
  alreadyPresent: string[];
  failed: { file: string; reason: string }[];
}

/**
 * An encrypted, crash-safe session store with the original FileSessionStore's methods.
 * After `close()` (or a trap) every call rejects with a plain `Error` ("the store is closed").
 */
export class SessionVaultStore implements ISessionStore {
  /** Throws InvalidInputError for a configuration the store cannot use. */
  constructor(config: SessionVaultStoreConfig);
  /** Resolves once the store is open; rejects (as does every call) if it cannot be. */
  readonly ready: Promise<void>;
  /** Stores a new session; resolves to its id. Rejects with AlreadyExistsError for a live id. */
  create(sessionData: SessionData): Promise<string>;
  /** The session, or null if it is absent or expired. */
  get(sessionId: string): Promise<SessionData | null>;
  /** Merges `updates` (the original's rules). Rejects with NotFoundError if absent or expired. */
  update(sessionId: string, updates: SessionUpdate): Promise<void>;
  /** Removes the session; resolves whether or not it existed. */
  delete(sessionId: string): Promise<void>;
  /** Removes every expired session; resolves to how many. */
  cleanup(): Promise<number>;
  /** The live sessions of `userId`. */
  getUserSessions(userId: string): Promise<SessionData[]>;
  /** How many live sessions the store holds. */
  getSessionCount(): Promise<number>;
  /** Removes every session. */
  clearAll(): Promise<void>;
  /** Records an access (lastAccessedAt = now, accessCount + 1); null if absent or expired. */
  touch(sessionId: string, expiresAt?: number): Promise<SessionData | null>;
  /**
   * Stores any session whether or not its id is live (create or replace, one atomic step,
   * as durable as `create`); resolves to its id.
   */
  set<S extends Session>(session: S): Promise<string>;
  /** Removes every session of `userId`; resolves to how many. */
  revokeUser(userId: string): Promise<number>;
  /**
   * One page of every live session's id, in id order; `next` is the cursor of the
   * following page (pass it as `after`), null after the last. `limit`: 1 to 1000
   * (default 100).
   */
  listIds(options?: { after?: string | null; limit?: number }): Promise<{ ids: string[]; next: string | null }>;
  /** As `listIds`, with the sessions. */
  list(options?: { after?: string | null; limit?: number }): Promise<{ sessions: Session[]; next: string | null }>;
  /** Verifies every session, quarantines damaged ones, and reports. */
  check(): Promise<CheckReport>;
  /** Adds a key that seals new writes from now on; resolves to its id. */
  addKey(secret: string | Uint8Array): Promise<number>;
  /** The store's keys. */
  keys(): Promise<KeyInfo[]>;
  /** Re-seals every session under an older key with the current one; resolves to how many. */
  rekey(): Promise<number>;
  /** Retires key `id` once no session is sealed under it. */
  retireKey(id: number): Promise<void>;
  /** Imports a directory written by the original FileSessionStore (default secret: encryptionKey). */
  importLegacy(legacyDir: string, secret?: string): Promise<ImportReport>;
  /** Closes the store and lets go of its directory. Idempotent. */
  close(): Promise<void>;
}

/** The lock file the package keeps in a store directory while it has it open. */
export const LOCK_FILE: string;

/** The WIT error cases, each the `code` of its error class. */
export type ErrorCode =
  | "invalid-id"
  | "invalid-input"
  | "not-found"
  | "already-exists"
  | "wrong-key"
  | "corrupted"
  | "missing-key"
  | "too-large"
  | "locked"
  | "io"
  | "unavailable";

/** Any error the store reports. */
export class SessionVaultError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown });
  readonly code: ErrorCode;
  /** For `io` and `unavailable`: what failed, and why. */
  readonly operation?: string;
  readonly reason?: string;
}
export class InvalidIdError extends SessionVaultError {}
export class InvalidInputError extends SessionVaultError {}
export class NotFoundError extends SessionVaultError {}
export class AlreadyExistsError extends SessionVaultError {}
/** `set` of an id removed (delete, revokeUser, clear) before its expiry; nothing was stored. */
export class RemovedError extends SessionVaultError {}
export class WrongKeyError extends SessionVaultError {}
export class CorruptedError extends SessionVaultError {}
export class MissingKeyError extends SessionVaultError {}
export class TooLargeError extends SessionVaultError {}
export class LockedError extends SessionVaultError {}
export class IoError extends SessionVaultError {}
export class UnavailableError extends SessionVaultError {}
/** The component trapped (a bug, not a store error); the store is closed. */
export class SessionVaultTrap extends Error {}
