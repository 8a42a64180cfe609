// The Redis connection of a store on the `redis` backend, on a thread of its own. The
// component's imports are synchronous (jco) and Node's sockets are not: the component's
// thread (./link.js) sends each request here and blocks on `Atomics.wait` until this
// thread has the reply, which it posts back and signals. Every request is the bucket
// script (component/bucket.lua, the one the Rust host sends too), by EVALSHA.
//
// workerData: { url, timeoutMs, signal (an Int32Array on shared memory), port }.
// Requests on `port`: { id, op, keys, args }; replies: { id, value } or { id, error }.

import { createClient, RESP_TYPES } from "@redis/client";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { workerData } from "node:worker_threads";

const { url, timeoutMs, signal, port } = workerData;
const SCRIPT = readFileSync(new URL("../../component/bucket.lua", import.meta.url), "utf8");
const SHA = createHash("sha1").update(SCRIPT).digest("hex");
/** Bulk strings as bytes: values are sealed records, and keys may be anything on the server. */
const BYTES = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer }, timeout: timeoutMs, rejectInFlight: true };

/** The server's address for errors: host, port and database, never a password. */
function addressOf(text) {
  try {
    const parsed = new URL(text);
    return `${parsed.hostname}:${parsed.port || 6379}${parsed.pathname.length > 1 ? parsed.pathname : "/0"}`;
  } catch {
    return "(an invalid redis url)";
  }
}
const address = addressOf(url);

const client = createClient({
  url,
  // Requests fail at once while the server is away, and the client keeps reconnecting in
  // the background: the store serves again as soon as the server is back.
  disableOfflineQueue: true,
  socket: {
    connectTimeout: timeoutMs,
    reconnectStrategy: (retries) => Math.min(50 * 2 ** Math.min(retries, 4), 1000),
  },
});
// Failures reach each request; the client's own error events would otherwise end the thread.
let lastError;
client.on("error", (error) => {
  lastError = error;
});
const connecting = client.connect().catch((error) => {
  lastError = error;
});

/** Resolves once the client is ready, or after `timeoutMs`; whether it is ready. */
async function ready() {
  if (client.isReady) return true;
  let timer;
  let onReady;
  const waited = await Promise.race([
    new Promise((resolve) => {
      onReady = () => resolve(true);
      client.once("ready", onReady);
    }),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  // A long outage must not pile up one listener per request made during it.
  client.off("ready", onReady);
  return waited;
}

/** An argument as the client sends it: text, or bytes as a Buffer (sealed values). */
const argument = (arg) => (typeof arg === "string" ? arg : Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength));

async function run({ op, keys, args }) {
  const tail = [String(keys.length), ...keys, op, ...args.map(argument)];
  try {
    return await client.sendCommand(["EVALSHA", SHA, ...tail], BYTES);
  } catch (error) {
    if (!String(error?.message).startsWith("NOSCRIPT")) throw error;
    return client.sendCommand(["EVAL", SCRIPT, ...tail], BYTES);
  }
}

async function answer(request) {
  try {
    if (!(await ready())) {
      const cause = lastError?.message ?? "no answer";
      throw new Error(`cannot reach the redis server at ${address} within ${timeoutMs} ms (${cause})`);
    }
    return { id: request.id, value: await run(request) };
  } catch (error) {
    const reason = error?.message ?? String(error);
    return { id: request.id, error: reason.includes(address) ? reason : `redis at ${address}: ${reason}` };
  }
}

port.on("message", async (request) => {
  if (request === "close") {
    await connecting;
    await client.close().catch(() => {});
    port.close();
    return;
  }
  const reply = await answer(request);
  // Posted before the signal: the component's thread, woken, finds it on the port.
  port.postMessage(reply);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});
