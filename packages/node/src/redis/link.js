// The component's thread's end of the Redis connection (./connection.js runs the other,
// on a thread of its own). jco calls the component's imports synchronously, and Node 20
// has no way to suspend WebAssembly on a promise: a request is posted to the connection's
// thread, and this thread waits on shared memory (`Atomics.wait`) until the reply is
// posted back. The store's own thread blocks, never the caller's event loop.

import { MessageChannel, Worker, receiveMessageOnPort } from "node:worker_threads";

/** What the wait allows beyond the client's own timeout before giving up on a reply. */
const GRACE_MS = 1000;

export class RedisLink {
  #worker;
  #port;
  #signal = new Int32Array(new SharedArrayBuffer(4));
  #timeoutMs;
  #next = 0;
  /** Why the connection thread is gone, once it is. */
  #dead;

  /** A connection to the server at `url`; every request answers within `timeoutMs`. */
  constructor(url, timeoutMs) {
    this.#timeoutMs = timeoutMs;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(new URL("./connection.js", import.meta.url), {
      workerData: { url, timeoutMs, signal: this.#signal, port: port2 },
      transferList: [port2],
      execArgv: [],
    });
    // The connection's thread never keeps the process alive on its own: the component's
    // thread holds the process while a call is outstanding.
    this.#worker.unref();
    // Should it die (it cannot be started, or the client throws), every request fails at
    // once with why, not after waiting out its timeout.
    this.#worker.on("error", (error) => {
      this.#dead ??= `the redis connection thread failed: ${error?.message ?? error}`;
    });
    this.#worker.on("exit", (code) => {
      this.#dead ??= `the redis connection thread ended (${code})`;
    });
  }

  /**
   * Runs the bucket script's operation `op` on `keys` and `args`; returns its reply.
   * Throws an Error (never traps) if the server fails, refuses or does not answer in
   * time; a reply that comes after its request gave up is dropped.
   */
  request(op, keys, args) {
    if (this.#dead !== undefined) throw new Error(this.#dead);
    const id = ++this.#next;
    Atomics.store(this.#signal, 0, 0);
    this.#port.postMessage({ id, op, keys, args });
    const deadline = performance.now() + this.#timeoutMs + GRACE_MS;
    for (;;) {
      for (let got = receiveMessageOnPort(this.#port); got; got = receiveMessageOnPort(this.#port)) {
        if (got.message.id !== id) continue;
        if (got.message.error !== undefined) throw new Error(got.message.error);
        return got.message.value;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the redis connection gave no answer within ${this.#timeoutMs} ms`);
      // Cleared, then the port looked at again: a reply posted meanwhile set the signal
      // after it was posted, so it is either on the port now or will wake the wait.
      Atomics.store(this.#signal, 0, 0);
      const posted = receiveMessageOnPort(this.#port);
      if (posted !== undefined) {
        if (posted.message.id !== id) continue;
        if (posted.message.error !== undefined) throw new Error(posted.message.error);
        return posted.message.value;
      }
      Atomics.wait(this.#signal, 0, 0, left);
    }
  }

  /** Closes the connection and ends its thread. */
  close() {
    this.#port.postMessage("close");
    setTimeout(() => this.#worker.terminate(), 1000).unref();
  }
}
