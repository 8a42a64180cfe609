// Several component threads serving one store on the `redis` backend. A component's
// imports are synchronous, so one instance waits out every round trip to the server of
// every call it runs: its calls run one after another, whatever the server could take at
// once. A redis store is made for many hosts at once (every write a compare-and-swap), so
// a process may run several instances side by side, each its own host.
//
// Order, as with one thread: while a session has a call outstanding, its next calls go to
// the same thread, which runs them in the order made; a session with none goes to the
// least busy thread (the first of those: a lightly loaded store keeps to one warm thread). A call that may touch any session (clear,
// revokeUser, cleanup, key rotation, a listing) waits for every call made before it, and
// every call made after it waits for it: it runs as if the store had one thread.

import { ComponentThread } from "./thread.js";

export class ComponentPool {
  /** Resolves once every thread has the store open; rejects with the first failure. */
  ready;

  #threads;
  /** Per thread, the latest call sent to it, settled either way. */
  #last;
  /** While a call on every session is waiting or running: settles once it is done. */
  #barrier;
  /** Per thread, its calls outstanding. */
  #load;
  /** Session id → { index, calls }: the thread serving its outstanding calls. */
  #serving = new Map();

  /** `size` threads, each as `new ComponentThread(...args)`. */
  constructor(size, ...args) {
    this.#threads = Array.from({ length: size }, () => new ComponentThread(...args));
    this.#last = this.#threads.map(() => Promise.resolve());
    this.#load = this.#threads.map(() => 0);
    this.ready = Promise.all(this.#threads.map((thread) => thread.ready)).then(() => undefined);
  }

  /** True once any thread has closed: the store is then closed. */
  get closed() {
    return this.#threads.some((thread) => thread.closed);
  }

  /**
   * Runs `operation` with `args`: on the thread of session `route`, or, with no route, on
   * the first thread once every call before it is done (and before any made after it).
   */
  call(operation, args, route) {
    if (this.#threads.length === 1) return this.#threads[0].call(operation, args);
    if (route === undefined) return this.#callAlone(operation, args);
    const send = () => this.#onThreadOf(route, operation, args);
    return this.#barrier === undefined ? send() : this.#barrier.then(send);
  }

  #onThreadOf(route, operation, args) {
    let serving = this.#serving.get(route);
    if (serving === undefined) {
      let index = 0;
      for (let i = 1; i < this.#load.length; i++) if (this.#load[i] < this.#load[index]) index = i;
      serving = { index, calls: 0 };
      this.#serving.set(route, serving);
    }
    serving.calls++;
    this.#load[serving.index]++;
    const done = () => {
      this.#load[serving.index]--;
      if (--serving.calls === 0 && this.#serving.get(route) === serving) this.#serving.delete(route);
    };
    const result = this.#track(serving.index, this.#threads[serving.index].call(operation, args));
    result.then(done, done);
    return result;
  }

  #callAlone(operation, args) {
    // After the call on every session before it (and the calls queued behind that one,
    // sent as it settles), every call sent before it.
    const before = (this.#barrier ?? Promise.resolve()).then(() => Promise.all(this.#last));
    const result = before.then(() => this.#track(0, this.#threads[0].call(operation, args)));
    const barrier = result.then(
      () => {},
      () => {},
    );
    this.#barrier = barrier;
    // Registered first, so it runs before the calls queued behind this one are sent: none
    // made after those can overtake them.
    barrier.then(() => {
      if (this.#barrier === barrier) this.#barrier = undefined;
    });
    return result;
  }

  #track(index, promise) {
    this.#last[index] = promise.then(
      () => {},
      () => {},
    );
    return promise;
  }

  /** Closes the store on every thread and ends them. */
  async close() {
    await Promise.all(this.#threads.map((thread) => thread.close()));
  }
}
