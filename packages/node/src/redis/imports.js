// The key-value component's imports, as jco takes them: what it uses of
// `wasi:keyvalue/store`, `atomics` and `batch` (0.2.0-draft2), and
// `session-vault:store/indexes`, over a Redis server
// through a RedisLink (./link.js). Each import sends one operation of the bucket script
// (component/bucket.lua, the Rust host's too) with the key layout the Rust host uses:
// bucket `name` is every key `{name}:…` (a Redis Cluster hash tag).
//
// Everything the server answers is checked before it reaches the component: a reply of
// the wrong shape is an error, never obeyed. A failure is the WIT error `other` (the
// component's `unavailable`), returned, never thrown (a throw would trap the instance).

/** The key inside every bucket whose presence fences it (its store moved out). */
const FENCE = "moving";
/** The key inside every bucket of its version ledger's stream. */
const LEDGER = "l";
/** Keys asked for per SCAN step. */
const SCAN_COUNT = "1000";
// `ignoreBOM`: a leading U+FEFF is part of the text, as the Rust host reads it (a member
// decoded without it would be removed under another name, and never go).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const MAX_CURSOR = 2n ** 64n - 1n;

const ok = (val) => ({ tag: "ok", val });
const failed = (error) => ({ tag: "err", val: { tag: "other", val: error?.message ?? String(error) } });

/** `value` as bytes, or undefined for a nil reply; anything else is refused. */
function bytesOrNone(value) {
  if (value === null || value === undefined) return undefined;
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new Error(`the server answered ${typeof value} where a value or nil was expected`);
}

function integer(value) {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new Error(`the server answered ${String(value)} where a count was expected`);
}

function list(value, length) {
  if (!Array.isArray(value) || (length !== undefined && value.length !== length)) {
    throw new Error("the server answered a reply of the wrong shape");
  }
  return value;
}

/** A stream id as the server gives it: `<ms>-<n>`, or empty. */
function streamId(value) {
  const text = Buffer.from(bytesOrNone(value) ?? []).toString("latin1");
  if (text !== "" && !/^[0-9]{1,20}-[0-9]{1,20}$/.test(text)) {
    throw new Error("the server answered a stream id of the wrong shape");
  }
  return text;
}

/** The ledger page at `reply[from..]`: last id, highest id taken out, highest id given, frames. */
function ledgerPage(reply, from) {
  list(reply);
  if (reply.length < from + 3) throw new Error("the server answered a ledger page of the wrong shape");
  const frames = reply.slice(from + 3).map((frame) => {
    const bytes = bytesOrNone(frame);
    if (bytes === undefined) throw new Error("the server answered nil for a ledger frame");
    return bytes;
  });
  return {
    frames,
    last: streamId(reply[from]),
    maxDeleted: streamId(reply[from + 1]) || "0-0",
    lastGenerated: streamId(reply[from + 2]) || "0-0",
  };
}

/** Runs `f`, its value as `ok`, what it throws as the WIT error `other`. */
function guarded(f) {
  try {
    return ok(f());
  } catch (error) {
    return failed(error);
  }
}

/** The imports of a key-value component instance whose buckets live on `link`'s server. */
export function keyvalueImports(link) {
  class Bucket {
    #prefix;
    constructor(prefix) {
      this.#prefix = prefix;
    }
    /** The full key of `name` in this bucket. */
    key(name) {
      return `${this.#prefix}${name}`;
    }
    get(key) {
      return guarded(() => bytesOrNone(link.request("get", [this.key(key)], [])));
    }
    set(key, value) {
      return guarded(() => {
        link.request("set", [this.key(key)], [value]);
      });
    }
    listKeys(cursor) {
      return guarded(() => {
        if (cursor !== undefined && (!/^[0-9]{1,20}$/.test(cursor) || BigInt(cursor) > MAX_CURSOR)) {
          throw new Error(`the cursor ${JSON.stringify(cursor)} is not one this host gave`);
        }
        const [next, found] = list(
          link.request("scan", [this.key(FENCE)], [cursor ?? "0", `${this.#prefix}*`, SCAN_COUNT]),
          2,
        );
        const keys = [];
        for (const raw of list(found)) {
          // A key that is not UTF-8 is none of the store's: skipped, like any foreign key.
          let text;
          try {
            text = utf8.decode(bytesOrNone(raw));
          } catch {
            continue;
          }
          if (text.startsWith(this.#prefix)) keys.push(text.slice(this.#prefix.length));
        }
        const cursorText = Buffer.from(bytesOrNone(next) ?? []).toString("latin1");
        if (!/^[0-9]{1,20}$/.test(cursorText)) throw new Error("the server answered a cursor that is not a number");
        return { keys, cursor: cursorText === "0" ? undefined : cursorText };
      });
    }
  }

  class Cas {
    #bucket;
    #key;
    #read;
    constructor(bucket, key, read) {
      this.#bucket = bucket;
      this.#key = key;
      this.#read = read;
    }
    static new(bucket, key) {
      return guarded(() => new Cas(bucket, key, bytesOrNone(link.request("get", [bucket.key(key)], []))));
    }
    current() {
      return ok(this.#read);
    }
    /** Applies `change` if the key still holds what this handle read (the bucket script's commit). */
    commit({ value, expiresAt, add, remove, frame }) {
      const bucket = this.#bucket;
      const keys = [bucket.key(this.#key)];
      const args = [
        this.#read === undefined ? "0" : "1",
        this.#read ?? "",
        value === undefined ? "del" : "set",
        value ?? "",
        expiresAt === undefined ? "" : String(expiresAt),
        String(add.length),
      ];
      for (const entry of add) {
        keys.push(bucket.key(entry.index));
        args.push(entry.member, String(entry.score));
      }
      args.push(String(remove.length));
      for (const member of remove) {
        keys.push(bucket.key(member.index));
        args.push(member.member);
      }
      args.push(frame ?? "");
      keys.push(bucket.key(LEDGER), bucket.key(FENCE));
      let outcome;
      try {
        outcome = integer(link.request("commit", keys, args));
      } catch (error) {
        return { tag: "err", val: { tag: "store-error", val: failed(error).val } };
      }
      if (outcome === 1) return ok(undefined);
      // A fenced bucket (its store moved out): `indexes.commit` documents access-denied.
      if (outcome === 2) return { tag: "err", val: { tag: "store-error", val: { tag: "access-denied" } } };
      // The key changed since it was read (or an answer no script gives, taken as the
      // Rust host takes it): the handle is given back, as `swap` does.
      return { tag: "err", val: { tag: "cas-failed", val: this } };
    }
  }

  /** Members of index `key` that are UTF-8; the others (planted) are removed from it. */
  function utf8Members(key, reply) {
    const members = [];
    const junk = [];
    for (const raw of list(reply)) {
      const bytes = bytesOrNone(raw);
      if (bytes === undefined) throw new Error("the server answered nil for an index member");
      try {
        members.push(utf8.decode(bytes));
      } catch {
        junk.push(bytes);
      }
    }
    if (junk.length > 0) link.request("remove", junk.map(() => key), junk);
    return members;
  }

  function open(identifier) {
    // The component checked the name (its trailing colons taken off); checked again
    // here, as anything the component hands over is.
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(identifier) || identifier.endsWith(":")) {
      return { tag: "err", val: { tag: "other", val: `bucket ${JSON.stringify(identifier)} is not a bucket name` } };
    }
    return ok(new Bucket(`{${identifier}}:`));
  }

  return {
    "wasi:keyvalue/store": { Bucket, open },
    "wasi:keyvalue/atomics": { Cas },
    "wasi:keyvalue/batch": {
      getMany: (bucket, keys) =>
        guarded(() => {
          if (keys.length === 0) return [];
          const values = list(link.request("get-many", keys.map((k) => bucket.key(k)), []), keys.length);
          return values.map((value, i) => {
            const bytes = bytesOrNone(value);
            return bytes === undefined ? undefined : [keys[i], bytes];
          });
        }),
      deleteMany: (bucket, keys) =>
        guarded(() => {
          if (keys.length === 0) return;
          link.request("delete-many", keys.map((k) => bucket.key(k)), []);
        }),
    },
    "session-vault:store/indexes": {
      commit: (cas, change) => cas.commit(change),
      ledger: (bucket, after, limit) =>
        guarded(() => ledgerPage(link.request("ledger", [bucket.key(LEDGER)], [after, String(limit)]), 0)),
      read: (bucket, key, after, limit) =>
        guarded(() => {
          const reply = link.request("read", [bucket.key(key), bucket.key(LEDGER)], [after, String(limit)]);
          return [bytesOrNone(list(reply)[0]), ledgerPage(reply, 1)];
        }),
      watch: (bucket, key, after, limit) =>
        guarded(() => {
          const reply = link.request("read", [bucket.key(key), bucket.key(LEDGER)], [after, String(limit)]);
          const value = bytesOrNone(list(reply)[0]);
          return [new Cas(bucket, key, value), value, ledgerPage(reply, 1)];
        }),
      trimLedger: (bucket, before) =>
        guarded(() => {
          integer(link.request("trim-ledger", [bucket.key(LEDGER)], [before]));
        }),
      add: (bucket, entries) =>
        guarded(() => {
          if (entries.length === 0) return;
          link.request(
            "add",
            entries.map((e) => bucket.key(e.index)),
            entries.flatMap((e) => [e.member, String(e.score)]),
          );
        }),
      remove: (bucket, members) =>
        guarded(() => {
          if (members.length === 0) return;
          link.request("remove", members.map((m) => bucket.key(m.index)), members.map((m) => m.member));
        }),
      range: (bucket, index, min, max, limit) =>
        guarded(() => {
          const key = bucket.key(index);
          return utf8Members(key, link.request("range", [key], [String(min), String(max), String(limit)]));
        }),
      membersAfter: (bucket, index, after, limit) =>
        guarded(() => {
          const key = bucket.key(index);
          return utf8Members(key, link.request("members-after", [key], [after, String(limit)]));
        }),
      count: (bucket, index, min, max) =>
        guarded(() => BigInt(integer(link.request("count", [bucket.key(index)], [String(min), String(max)])))),
    },
  };
}
