// session-vault for express-session (and @fastify/session): a `session.Store`.

import session from "express-session";

import { SessionVaultStore, SessionVaultStoreConfig } from "./index.js";

/** Options: SessionVaultStore's, plus connect-redis's `ttl` and `disableTouch`, and `userId`. */
export type SessionVaultSessionStoreOptions = SessionVaultStoreConfig & SessionStoreOptions;

/** What the express store adds to SessionVaultStore's configuration. */
export interface SessionStoreOptions {
  /**
   * Seconds a session lives when its cookie has no `expires` (or a function of the
   * session giving them). Default 86400.
   */
  ttl?: number | ((sess: session.SessionData) => number);
  /** Do not move a session's expiry on `touch`. */
  disableTouch?: boolean;
  /**
   * Where the user id lives in the session (a dotted path such as `passport.user`, or a
   * function): indexes sessions by user for `revokeUser` and `userSessions`.
   */
  userId?: string | ((sess: session.SessionData) => unknown);
}

type Callback<T> = (error: unknown, value?: T) => void;

/** session-file-store's options that say how to read its directory. */
export interface SessionFileStoreImport {
  /** Its `secret`, if it encrypted its files. */
  secret?: string;
  /** Its `ttl` in seconds, for sessions whose cookie has no maxAge. Default 3600. */
  ttl?: number;
  /** Its `fileExtension`. Default ".json". */
  fileExtension?: string;
}

/** What `importSessionFileStore` did with each session file. */
export interface SessionFileStoreReport {
  imported: string[];
  expired: string[];
  alreadyPresent: string[];
  failed: { file: string; reason: string }[];
}

/** An express-session store over session-vault: encrypted, crash-safe, race-free. */
export class SessionVaultSessionStore extends session.Store {
  constructor(options: SessionVaultSessionStoreOptions);
  /** The underlying store. */
  readonly vault: SessionVaultStore;
  // express-session calls these with a callback; without one, each returns a Promise.
  get(sid: string, callback: Callback<session.SessionData | null>): void;
  get(sid: string): Promise<session.SessionData | null>;
  /**
   * Saves `sess`: a session `get` read is saved as what the request changed, merged over
   * what other requests saved meanwhile. A session destroyed meanwhile stays destroyed.
   */
  set(sid: string, sess: session.SessionData, callback: (error?: unknown) => void): void;
  set(sid: string, sess: session.SessionData): Promise<void>;
  /** Moves the expiry to the cookie's (never past `maxLifetimeMs`), as cheaply as a read. */
  touch(sid: string, sess: session.SessionData, callback: (error?: unknown) => void): void;
  touch(sid: string, sess: session.SessionData): Promise<void>;
  destroy(sid: string, callback: (error?: unknown) => void): void;
  destroy(sid: string): Promise<void>;
  all(callback: Callback<session.SessionData[]>): void;
  all(): Promise<session.SessionData[]>;
  ids(callback: Callback<string[]>): void;
  ids(): Promise<string[]>;
  length(callback: Callback<number>): void;
  length(): Promise<number>;
  clear(callback: (error?: unknown) => void): void;
  clear(): Promise<void>;
  /**
   * Moves the sessions of a session-file-store directory here (read-only there), with the
   * expiry session-file-store gave each; sessions already live here are left alone.
   */
  importSessionFileStore(dir: string, options?: SessionFileStoreImport): Promise<SessionFileStoreReport>;
  importSessionFileStore(
    dir: string,
    options: SessionFileStoreImport,
    callback: Callback<SessionFileStoreReport>,
  ): void;
  /** Ends every session of `userId` (needs the `userId` option); resolves to how many. */
  revokeUser(userId: string): Promise<number>;
  revokeUser(userId: string, callback: Callback<number>): void;
  /** The live sessions of `userId`. */
  userSessions(userId: string): Promise<session.SessionData[]>;
  userSessions(userId: string, callback: Callback<session.SessionData[]>): void;
  /** Closes the store (its lock is released). */
  close(): Promise<void>;
  close(callback: (error?: unknown) => void): void;
}
