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
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  fsyncSync,
  linkSync,
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

/** Whether the holder `record` describes has gone, so its lock can be taken over. */
function gone(record) {
  if (!record || record.host !== os.hostname() || !Number.isSafeInteger(record.pid)) {
    // Unreadable (being written, or damaged) or another host's: treated as held.
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
  try {
    locks = readFileSync("/proc/locks", "utf8");
  } catch {
    return false;
  }
  const { ino } = statSync(dir, { bigint: true });
  // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": the inode closes the device field.
  return locks
    .split("\n")
    .some((line) => /\bFLOCK\b/.test(line) && line.split(/\s+/).some((f) => f.endsWith(`:${ino}`)));
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
  const record = {
    host: os.hostname(),
    pid: process.pid,
    started: startTime(process.pid),
    token,
  };
  let fd;
  try {
    fd = openSync(file, "wx", 0o600);
  } catch (e) {
    if (e.code !== "EEXIST") throw storeError("io", { operation: `creating ${file}`, reason: e.message });
    takeOverIfGone(file);
    return null;
  }
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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
 * Removes the lock file if its holder is gone. It is first renamed aside, and removed only
 * if it still names the gone holder: two processes that both found it stale cannot remove
 * the lock one of them has just taken.
 */
function takeOverIfGone(file) {
  const seen = readRecord(file);
  if (!gone(seen)) return;
  const aside = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.stale`;
  try {
    renameSync(file, aside);
  } catch {
    return;
  }
  const moved = readRecord(aside);
  if (moved?.token === seen.token) {
    unlinkSync(aside);
    return;
  }
  // Someone else's fresh lock: put it back (a hard link fails rather than replace a
  // newer one), then drop the copy aside.
  try {
    linkSync(aside, file);
  } catch {
    // A newer lock is in place: its holder goes on.
  }
  unlinkSync(aside);
}
