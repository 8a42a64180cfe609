// The store's errors: one class per case of the WIT `error` variant, each with that case
// as its `code`, all subclasses of SessionVaultError (and so of Error).

/** Any error the store reports; `code` is the WIT error case (`not-found`, `locked`, …). */
export class SessionVaultError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = new.target.name;
    /** The WIT error case. */
    this.code = code;
  }
}

/** `invalid-id`: the id is not 1 to 128 characters of [A-Za-z0-9_-]. */
export class InvalidIdError extends SessionVaultError {}
/** `invalid-input`: a document, patch or option is not acceptable; the message says why. */
export class InvalidInputError extends SessionVaultError {}
/** `not-found`: no live session has that id (`update` of an absent or expired session). */
export class NotFoundError extends SessionVaultError {}
/** `already-exists`: `create` of an id that is live; the stored session is unchanged. */
export class AlreadyExistsError extends SessionVaultError {}
/**
 * `removed`: `set` of an id removed (delete, revokeUser, clear) before its expiry; the
 * removal stands and nothing was stored.
 */
export class RemovedError extends SessionVaultError {}
/** `wrong-key`: the secret does not open this store; nothing was written. */
export class WrongKeyError extends SessionVaultError {}
/** `corrupted`: stored bytes failed authentication or do not parse. */
export class CorruptedError extends SessionVaultError {}
/** `missing-key`: the session is sealed under a key the store no longer holds. */
export class MissingKeyError extends SessionVaultError {}
/** `too-large`: the session is over the store's `maxSessionBytes`. */
export class TooLargeError extends SessionVaultError {}
/** `locked`: another process holds the store directory. */
export class LockedError extends SessionVaultError {}
/** `io`: the storage medium failed (disk full, permissions); `operation` says where. */
export class IoError extends SessionVaultError {}
/** `unavailable`: the store's server did not answer. */
export class UnavailableError extends SessionVaultError {}

const classes = {
  "invalid-id": InvalidIdError,
  "invalid-input": InvalidInputError,
  "not-found": NotFoundError,
  "already-exists": AlreadyExistsError,
  removed: RemovedError,
  "wrong-key": WrongKeyError,
  corrupted: CorruptedError,
  "missing-key": MissingKeyError,
  "too-large": TooLargeError,
  locked: LockedError,
  io: IoError,
  unavailable: UnavailableError,
};

const summaries = {
  "not-found": "no live session with that id",
  "already-exists": "a live session already has that id",
  removed: "the session was removed before its expiry",
  "wrong-key": "the secret does not open this store",
  locked: "another process holds the store directory",
};

/** The error of `code`, with `detail` (the case's payload) in its message. */
export function storeError(code, detail, options) {
  const Class = classes[code] ?? SessionVaultError;
  let message = summaries[code] ?? code;
  if (typeof detail === "string") message = detail;
  else if (detail && typeof detail === "object") message = `${detail.operation}: ${detail.reason}`;
  const error = new Class(code, message, options);
  if (detail && typeof detail === "object") {
    error.operation = detail.operation;
    error.reason = detail.reason;
  }
  return error;
}

/**
 * A failure inside the component itself (a WebAssembly trap), never a store error: the
 * instance is unusable afterwards and the store is closed. `cause` is the trap.
 */
export class SessionVaultTrap extends Error {
  constructor(cause) {
    super(`the session-vault component trapped: ${cause?.message ?? cause}`, { cause });
    this.name = "SessionVaultTrap";
  }
}

/**
 * The error a component call threw, as the package reports it: the store's error case; a
 * value jco could not lower into the WIT types (caught before the component ran) as
 * `invalid-input`; a trap as SessionVaultTrap.
 */
export function fromComponent(e) {
  const payload =
    e !== null && typeof e === "object" && Object.hasOwn(e, "payload") ? e.payload : undefined;
  if (payload && typeof payload.tag === "string") return storeError(payload.tag, payload.val);
  if (e instanceof SessionVaultError || e instanceof SessionVaultTrap) return e;
  if (e instanceof TypeError || e instanceof RangeError) {
    return new InvalidInputError("invalid-input", e.message, { cause: e });
  }
  return new SessionVaultTrap(e);
}

/**
 * `error` as it crosses from the component's thread (./thread.js) to the caller's: the
 * store's error case with its payload, a trap, or any other error's message.
 */
export function toWire(error) {
  if (error instanceof SessionVaultError) {
    return {
      kind: "store",
      code: error.code,
      message: error.message,
      operation: error.operation,
      reason: error.reason,
    };
  }
  if (error instanceof SessionVaultTrap) {
    return { kind: "trap", message: error.cause?.message ?? String(error.cause) };
  }
  return { kind: "error", message: error?.message ?? String(error) };
}

/** The error `wire` (from `toWire`) describes, of the same class as the one thrown. */
export function fromWire(wire) {
  if (wire?.kind === "store") {
    const Class = classes[wire.code] ?? SessionVaultError;
    const error = new Class(wire.code, wire.message);
    if (wire.operation !== undefined) {
      error.operation = wire.operation;
      error.reason = wire.reason;
    }
    return error;
  }
  if (wire?.kind === "trap") return new SessionVaultTrap(new Error(wire.message));
  return new Error(wire?.message ?? "session-vault: the component's thread failed");
}
