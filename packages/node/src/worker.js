// The session-vault component's own thread. A store's component instance lives here, not
// on the caller's main thread: its calls are synchronous (jco), and some of them wait for
// the disk (a durable write's sync) or do the store's housekeeping (closing a full log
// segment, compacting), which would otherwise stall every request of the server while
// they run. ./thread.js is the other end: it sends calls in the order they were made, and
// this thread runs them one at a time, in that order, each whole.
//
// Messages in: `{ id, operation, args, now }` (`now`: the caller's clock, when the store
// was given one). Out: `{ id, value }` or `{ id, error }` (./errors.js `toWire`), with
// `closed: true` once the store has closed itself (a trap, or a failed re-open). The calls
// waiting when one is taken run together: in a durable store under one hold of the
// store's syncs, answered after one flush (see `runTogether`).

import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";

import { instantiate } from "./component.js";
import { SessionVaultTrap, fromComponent, toWire } from "./errors.js";
import { keyvalueImports } from "./redis/imports.js";
import { RedisLink } from "./redis/link.js";

const dispose = Symbol.dispose ?? Symbol.for("dispose");
const LEGACY = "/legacy";
/** Sessions imported per call of the component: bounds the memory of a large import. */
const IMPORT_BATCH = 1000;

const { preopens, config, now: startedAt, redis } = workerData;
// A store on the `redis` backend: the key-value component, its buckets on this server.
const link = redis === undefined ? undefined : new RedisLink(redis.url, redis.timeoutMs);
// The caller's clock, where it gave the store one: the time each call was made at, so a
// test's clock and the store's agree exactly.
let callerNow = startedAt;
const clock = startedAt === undefined ? Date.now : () => callerNow;

let sessions;
let store;
let release;
let closed = false;

/** A new component instance over `dirs`, with the store opened in it. */
async function attach(dirs) {
  const instance = await instantiate(dirs, clock, link === undefined ? undefined : keyvalueImports(link));
  sessions = instance.sessions;
  release = instance.close;
  store = call(() => sessions.Store.open(config));
}

/** Drops the store resource (closing the store in the component) and the instance's files. */
function detach() {
  const open = store;
  store = undefined;
  try {
    if (open) call(() => open[dispose]?.());
  } finally {
    release?.();
    release = undefined;
  }
}

/** Calls the component, turning what it throws into the package's errors. */
function call(f) {
  try {
    return f();
  } catch (e) {
    const error = fromComponent(e);
    if (error instanceof SessionVaultTrap) {
      // The instance cannot be trusted after a trap: the store is closed.
      store = undefined;
      closed = true;
      release?.();
    }
    throw error;
  }
}

function opened() {
  if (closed || store === undefined) throw new Error("session-vault: the store is closed");
  return store;
}

/** Imports an original FileSessionStore directory (see SessionVaultStore#importLegacy). */
async function importLegacy(legacyPath, secret) {
  // The component reaches the legacy directory only for the import, read-only: an
  // instance with both directories opens the store while this one has let go of it.
  opened();
  detach();
  const report = { imported: [], expired: [], alreadyPresent: [], failed: [] };
  let outcome;
  try {
    await attach({ ...preopens, [LEGACY]: { path: legacyPath, readOnly: true } });
    const legacy = call(() => sessions.LegacyStore.open(LEGACY, secret));
    try {
      const files = call(() => legacy.files());
      for (let i = 0; i < files.length; i += IMPORT_BATCH) {
        const batch = files.slice(i, i + IMPORT_BATCH);
        const part = call(() => legacy.importInto(store, batch));
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
    detach();
    if (!closed) await attach(preopens);
  } catch (e) {
    closed = true;
    throw outcome ?? e;
  }
  if (outcome) throw outcome;
  return report;
}

/** Each operation the caller's thread may ask for: the component's functions, by name. */
const operations = {
  create: (text) => call(() => opened().create(text)),
  get: (id) => call(() => opened().get(id)),
  update: (id, patch) => call(() => opened().update(id, patch)),
  delete: (id) => call(() => opened().delete(id)),
  cleanup: () => call(() => opened().cleanup()),
  userSessions: (user) => call(() => opened().userSessions(user)),
  count: () => call(() => opened().count()),
  clear: () => call(() => opened().clear()),
  touch: (id, until) => call(() => opened().touch(id, until)),
  touchFound: (id, until) => call(() => opened().touch(id, until)) !== undefined,
  set: (text) => call(() => opened().set(text)),
  setIfUnchanged: (text, expected) => call(() => opened().setIfUnchanged(text, expected)),
  listIds: (after, limit) => call(() => opened().listIds(after, limit)),
  list: (after, limit) => call(() => opened().list(after, limit)),
  revokeUser: (user) => call(() => opened().revokeUser(user)),
  check: () => call(() => opened().check()),
  addKey: (secret) => call(() => opened().addKey(secret)),
  keys: () => call(() => opened().keys()),
  rekey: (limit) => call(() => opened().rekey(limit)),
  retireKey: (id) => call(() => opened().retireKey(id)),
  importLegacy,
  close: () => {
    closed = true;
    try {
      detach();
    } finally {
      link?.close();
    }
  },
};

/** Operations that run across awaits (a new instance): never inside a hold of the syncs. */
const ALONE = new Set(["importLegacy", "close"]);
/** The most calls answered by one flush: bounds how long the first of them waits. */
const MOST_HELD = 256;
const durable = config.durability !== "relaxed";

/** Runs one call; resolves to its answer (not sent yet). */
async function answer({ id, operation, args, now }) {
  if (now !== undefined) callerNow = now;
  const perform = operations[operation];
  try {
    if (perform === undefined) throw new Error(`session-vault: no operation ${operation}`);
    return { id, value: await perform(...args) };
  } catch (e) {
    return { id, error: toWire(e) };
  }
}

function send(reply) {
  parentPort.postMessage({ ...reply, closed });
}

/**
 * Sends `answers` once the writes they made are durable: one flush for all of them. If
 * it fails, each gets its error, and the store is opened afresh (its memory may hold
 * writes the disk lacks). If the store is gone (a trap), nothing held was synced: each
 * gets an error, never a success.
 */
async function answerAll(answers) {
  if (answers.length === 0) return;
  let failure;
  if (store === undefined) {
    failure = new SessionVaultTrap(new Error("the store closed before these calls' writes were synced"));
  } else {
    try {
      call(() => store.flush());
    } catch (e) {
      failure = e;
    }
  }
  if (failure !== undefined && !closed) {
    try {
      detach();
      await attach(preopens);
    } catch {
      closed = true;
    }
  }
  for (const reply of answers) send(failure === undefined ? reply : { id: reply.id, error: toWire(failure) });
}

/**
 * Runs `calls` in order. In a durable store they run under one hold of the store's syncs
 * and are answered after one flush (a group commit): each is as durable when answered as
 * if it had synced alone.
 */
async function runTogether(calls) {
  let held = [];
  for (const message of calls) {
    if (ALONE.has(message.operation)) {
      await answerAll(held);
      held = [];
      send(await answer(message));
      continue;
    }
    if (durable && held.length === 0 && store !== undefined) {
      try {
        call(() => store.holdSyncs());
      } catch {
        // A trap: the call below reports the closed store.
      }
    }
    const reply = await answer(message);
    // A relaxed store syncs nothing: each call is answered as soon as it is done.
    if (durable) held.push(reply);
    else send(reply);
  }
  await answerAll(held);
}

// Every call, in the order sent: what the port delivers and what is taken from it while
// calls run go to the end of one queue, so none can overtake another.
const inbox = [];
let draining;

function collect() {
  for (let next = receiveMessageOnPort(parentPort); next; next = receiveMessageOnPort(parentPort)) {
    inbox.push(next.message);
  }
}

async function drain() {
  await opening;
  for (collect(); inbox.length > 0; collect()) {
    await runTogether(inbox.splice(0, MOST_HELD));
  }
  draining = undefined;
}

// Opening is the first call: the caller's thread sends none before `ready`.
const opening = attach(preopens).then(
  () => send({ id: 0, value: undefined }),
  (e) => {
    closed = true;
    send({ id: 0, error: toWire(e) });
  },
);
parentPort.on("message", (message) => {
  inbox.push(message);
  draining ??= drain();
});
