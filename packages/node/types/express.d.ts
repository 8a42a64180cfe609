// session-vault for express-session (and @fastify/session): a `session.Store`.

import session from "express-session";

import { SessionVaultOptions, SessionVaultStore } from "./index.js";

/** Options: SessionVaultStore's, plus connect-redis's `ttl` and `disableTouch`, and `userId`. */
export interface SessionVaultSessionStoreOptions extends SessionVaultOptions {
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

/** An express-session store over session-vault: encrypted, crash-safe, race-free. */
export class SessionVaultSessionStore extends session.Store {
  constructor(options: SessionVaultSessionStoreOptions);
  /** The underlying store. */
  readonly vault: SessionVaultStore;
  get(sid: string, callback: Callback<session.SessionData | null>): void;
  get(sid: string): Promise<session.SessionData | null>;
  set(sid: string, sess: session.SessionData, callback?: (error?: unknown) => void): void;
  touch(sid: string, sess: session.SessionData, callback?: (error?: unknown) => void): void;
  destroy(sid: string, callback?: (error?: unknown) => void): void;
  all(callback: Callback<session.SessionData[]>): void;
  ids(callback: Callback<string[]>): void;
  length(callback: Callback<number>): void;
  clear(callback?: (error?: unknown) => void): void;
  /** Ends every session of `userId` (needs the `userId` option); resolves to how many. */
  revokeUser(userId: string): Promise<number>;
  /** The live sessions of `userId`. */
  userSessions(userId: string): Promise<session.SessionData[]>;
  /** Closes the store (its lock is released). */
  close(): Promise<void>;
}
