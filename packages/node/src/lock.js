// One process at a time per store directory. WASI has no file locks, so the package
// takes one itself: a lock file created with O_EXCL (`wx`) in the store directory,
// naming its holder (host, pid, the process's start time and a random token). A lock
// whose holder is gone (killed with SIGKILL, say) is taken over; one held by a live
// process, or by another host (whose processes cannot be checked from here), is not.
// The Rust host's lock (flock on the directory, shown in /proc/locks) counts as held too,
// so the CLI and a Node server never write one store at once.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
  fsyncSync,
  linkSync,
  readlinkSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { LockedError, storeError } from "./errors.js";

/** The lock file's name in the store directory (the store leaves it alone). */
export const LOCK_FILE = "session-vault.lock";

/** When a process started (clock ticks since boot, Linux), or null where unknown. */
function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the command name, which may hold spaces but ends at ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

/** This process's pid namespace: pids mean nothing across namespaces (containers). */
function pidNamespace() {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return null;
  }
}

/** What a lock file says of its holder, this process being it. */
function holder(token) {
  return {
    host: os.hostname(),
    pid: process.pid,
    started: startTime(process.pid),
    pidns: pidNamespace(),
    token,
  };
}

/** Whether the holder `record` describes has gone, so its lock can be taken over. */
function gone(record) {
  if (!record || record.host !== os.hostname() || !Number.isSafeInteger(record.pid)) {
    // Unreadable (damaged) or another host's: treated as held.
    return false;
  }
  if (record.pidns !== undefined && record.pidns !== pidNamespace()) {
    // Another container on this host: its pids cannot be checked from here.
    return false;
  }
  if (!alive(record.pid)) return true;
  // The pid is in use: by the holder, or by a process that reused it.
  const started = startTime(record.pid);
  return started !== null && record.started !== null && started !== record.started;
}

function readRecord(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** Whether a process holds an flock on `dir` (the Rust host's lock), per /proc/locks. */
function flocked(dir) {
  let locks;
  let stats;
  try {
    locks = readFileSync("/proc/locks", "utf8");
    stats = statSync(dir, { bigint: true });
  } catch {
    return false;
  }
  // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": major:minor in hex, then the inode.
  const { dev, ino } = stats;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const hex = (n) => n.toString(16).padStart(2, "0");
  const file = `${hex(major)}:${hex(minor)}:${ino}`;
  return locks
    .split("\n")
    .some((line) => /\bFLOCK\b/.test(line) && line.split(/\s+/).includes(file));
}

/**
 * Creates `file` holding `text`, or returns false if it exists. The text is written to a
 * temporary file first and linked into place, so the file never exists empty or half
 * written (a crash leaves only the temporary, which the store removes at its next open).
 */
function createWith(file, text) {
  const temp = `${file}.${randomBytes(8).toString("hex")}.tmp`;
  const fd = openSync(temp, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, file);
    return true;
  } catch (e) {
    // ENOENT: the temporary was swept away by a store opening meanwhile; try again later.
    if (e.code === "EEXIST" || e.code === "ENOENT") return false;
    throw e;
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // Swept already.
    }
  }
}

/** A lock that is held; `release()` lets it go (once). */
class Held {
  #file;
  #token;
  constructor(file, token) {
    this.#file = file;
    this.#token = token;
  }
  /** Removes the lock file if it is still ours. */
  release() {
    if (this.#file === undefined) return;
    const file = this.#file;
    this.#file = undefined;
    if (readRecord(file)?.token === this.#token) {
      try {
        unlinkSync(file);
      } catch {
        // Gone already: nothing to release.
      }
    }
  }
}

/**
 * Takes the lock of store directory `dir`, retrying for up to `timeoutMs` while another
 * live process holds it; then rejects with LockedError.
 */
export async function lock(dir, timeoutMs) {
  const file = path.join(dir, LOCK_FILE);
  const deadline = Date.now() + timeoutMs;
  let pause = 1;
  for (;;) {
    const held = tryLock(dir, file);
    if (held) return held;
    if (Date.now() >= deadline) throw new LockedError("locked", `${dir} is held by another process`);
    await sleep(Math.min(pause, Math.max(deadline - Date.now(), 0)));
    pause = Math.min(pause * 2, 20);
  }
}

function tryLock(dir, file) {
  const token = randomBytes(16).toString("hex");
  let created;
  try {
    created = createWith(file, `${JSON.stringify(holder(token))}\n`);
  } catch (e) {
    throw storeError("io", { operation: `creating ${file}`, reason: e.message });
  }
  if (!created) {
    takeOverIfGone(file);
    return null;
  }
  const held = new Held(file, token);
  // Taken the other way round by the Rust host (flock, then this file): whichever looks
  // second sees the other and lets go.
  if (flocked(dir)) {
    held.release();
    return null;
  }
  return held;
}

/**
 * Removes the lock file if its holder is gone. Takeovers are serialised by a guard file
 * (`<lock>.takeover`, created like the lock), and the lock is removed only if, under the
 * guard, it still names the same gone holder: two starters that both found it stale cannot
 * remove the lock one of them has just taken. A guard whose own holder has gone (a crash
 * in the middle of a takeover) is removed in turn.
 */
function takeOverIfGone(file) {
  const seen = readRecord(file);
  if (!gone(seen)) return;
  const guard = `${file}.takeover`;
  const token = randomBytes(16).toString("hex");
  if (!createWith(guard, `${JSON.stringify(holder(token))}\n`)) {
    const other = readRecord(guard);
    if (gone(other)) removeIf(guard, other.token);
    return;
  }
  try {
    const now = readRecord(file);
    if (now?.token === seen.token && gone(now)) unlinkSync(file);
  } catch {
    // Gone already: the next attempt creates it.
  } finally {
    removeIf(guard, token);
  }
}

/** Removes `file` if it still holds `token`. */
function removeIf(file, token) {
  if (readRecord(file)?.token !== token) return;
  try {
    unlinkSync(file);
  } catch {
    // Gone already.
  }
}
