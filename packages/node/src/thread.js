// The caller's end of a store's component thread (./worker.js): each call is a message,
// answered by a promise. The thread runs calls one at a time in the order they were sent,
// so the caller may send the next before the last is answered, and its own event loop
// never waits for the component, the disk or the store's housekeeping.

import { Worker } from "node:worker_threads";

import { InvalidInputError, SessionVaultTrap, fromWire } from "./errors.js";

/** A store's component, opened on a thread of its own. */
export class ComponentThread {
  /** Resolves once the store is open on the thread; rejects with why it could not be. */
  ready;
  /** True once the store has closed itself (a trap, a failed re-open) or was closed. */
  closed = false;

  #worker;
  #pending = new Map();
  #next = 1;
  #now;

  /**
   * @param preopens the directories the component may reach ({ guestPath: hostPath })
   * @param config the WIT configuration the store opens with
   * @param now the caller's clock, or undefined for the thread's own
   * @param redis with the `redis` backend, its server: { url, timeoutMs }
   */
  constructor(preopens, config, now, redis) {
    this.#now = now;
    this.#worker = new Worker(new URL("./worker.js", import.meta.url), {
      workerData: { preopens, config, now: now?.(), redis },
      // The caller's flags, as Node passes them on by default, except where one only makes
      // sense for the caller's own entry point (`node --input-type=module -e …` would
      // refuse to load the worker's module): then none (the thread needs none).
      execArgv: process.execArgv.some((flag) => flag.startsWith("--input-type")) ? [] : undefined,
    });
    this.ready = new Promise((resolve, reject) => this.#pending.set(0, { resolve, reject }));
    this.#worker.on("message", (message) => this.#answer(message));
    this.#worker.on("error", (error) => this.#lost(new SessionVaultTrap(error)));
    this.#worker.on("exit", (code) =>
      this.#lost(new SessionVaultTrap(new Error(`the component's thread exited (${code})`))),
    );
  }

  /** Runs `operation` with `args` on the thread; resolves to its value. */
  call(operation, args = []) {
    if (this.closed) return Promise.reject(new Error("session-vault: the store is closed"));
    const id = this.#next++;
    try {
      this.#worker.postMessage({ id, operation, args, now: this.#now?.() });
    } catch (e) {
      // An argument the structured clone refuses (a function, a symbol): nothing was sent.
      return Promise.reject(new InvalidInputError("invalid-input", `${operation}: ${e.message}`, { cause: e }));
    }
    // Held only while a call is outstanding: an idle store never keeps the process alive.
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  /** Closes the store on the thread (if it is still open) and ends the thread. */
  async close() {
    try {
      if (!this.closed) await this.call("close");
    } finally {
      this.closed = true;
      await this.#worker.terminate();
    }
  }

  #answer({ id, value, error, closed }) {
    const waiting = this.#pending.get(id);
    this.#pending.delete(id);
    if (closed) this.closed = true;
    if (this.#pending.size === 0) this.#worker.unref();
    if (waiting === undefined) return;
    if (error === undefined) waiting.resolve(value);
    else waiting.reject(fromWire(error));
  }

  /** The thread is gone: every call waiting on it fails, and so will every later one. */
  #lost(error) {
    this.closed = true;
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }
}
