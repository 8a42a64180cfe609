// Package-internal calls of a SessionVaultStore that carry sessions as the JSON text the
// component stores, not as objects: the express store builds and reads that text itself,
// sparing a request a parse and a serialisation of its session. Not in the package's
// exports: `store[textCalls]` is for this package's own modules.

/** The key of a SessionVaultStore's `{ create, read, set, touch }` on JSON text. */
export const textCalls = Symbol("session-vault: calls on JSON text");
