/**
 * Locks between custos processes on one host: the one home of locking (the audit log, the tokens
 * custos writes to). A lock is a directory made with mkdir by proper-lockfile, which keeps it fresh
 * while the process lives and releases it when the process exits; beside it, an owner file says
 * who holds it (pid, host, command, since when).
 *
 * A process killed with SIGKILL cannot release its lock. A waiter clears such a lock at once when
 * its owner ran on this host and is gone (its pid is dead, or now belongs to a later process), and
 * otherwise only once proper-lockfile's own staleness time has passed without the owner keeping it
 * fresh.
 */
import {
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { pause } from '../core/pause.js';

/** Who holds a lock, as its owner file records it. */
export interface LockOwner {
  pid: number;
  host: string;
  /** The process's start time as the kernel counts it (Linux), telling a reused pid apart. */
  started?: string;
  /** The command that holds it ("restore", "audit append"). */
  command: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
  /** The lock directory's inode when its owner wrote this, so a stale owner file is never read. */
  lockIno?: number;
}

export interface HeldLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Releases the lock (idempotent). */
  release(): void;
}

export interface LockOptions {
  /** The command taking the lock, recorded for anyone who has to wait for it. */
  command: string;
  /** How long to wait for another holder before giving up, in milliseconds (0: do not wait). */
  waitMs: number;
  /** Called once, when the lock is found held by a live owner and this process starts waiting. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** The error to throw when the wait is over; given the owner, if known. */
  busy: (owner: LockOwner | undefined) => Error;
  /**
   * On release, remove the directory that holds the lock if it is then empty (a directory kept
   * only for locks, such as .custos/locks).
   */
  tidy?: boolean;
}

/**
 * A lock not kept fresh for this long is stale whoever held it. Long, because custos works
 * synchronously: a long call into a PKCS#11 module keeps the timer that refreshes it from running.
 */
const STALE_MS = 10 * 60_000;
const UPDATE_MS = 30_000;
/** A lock directory with no owner file yet is someone's fresh lock, unless older than this. */
const NO_OWNER_STALE_MS = 10_000;
const RETRY_MS = 50;

/** Locks this process holds now, by lock path. */
const held = new Map<string, HeldLock>();

/** The start time of a process as /proc records it (field 22 of stat), where there is /proc. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process an owner record names is gone. Only answerable for this host: an owner on
 * another host (a lock directory on a shared file system) is taken to be alive.
 */
export function ownerGone(owner: Pick<LockOwner, 'pid' | 'host' | 'started'>): boolean {
  if (owner.host !== hostname()) return false;
  if (owner.pid === process.pid) {
    const now = processStart(process.pid);
    return owner.started !== undefined && now !== undefined && owner.started !== now;
  }
  if (!pidAlive(owner.pid)) return true;
  const now = processStart(owner.pid);
  return owner.started !== undefined && now !== undefined && owner.started !== now;
}

export function ownerPath(lockPath: string): string {
  return `${lockPath}.owner`;
}

function readOwner(lockPath: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(ownerPath(lockPath), 'utf8')) as LockOwner;
    if (typeof o.pid !== 'number' || typeof o.host !== 'string') return undefined;
    return o;
  } catch {
    return undefined;
  }
}

function writeOwner(lockPath: string, owner: LockOwner): void {
  const path = ownerPath(lockPath);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(owner)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * What is at the lock path when mkdir found it taken: a live owner (wait), or a lock to clear.
 * Earlier versions of custos made the audit log's lock a file holding the owner's pid; such a file
 * is judged by that pid.
 */
function judge(lockPath: string): { stale: boolean; owner?: LockOwner } {
  let st;
  try {
    st = lstatSync(lockPath);
  } catch {
    return { stale: false }; // released meanwhile: try again
  }
  if (!st.isDirectory()) {
    let text: string;
    try {
      text = readFileSync(lockPath, 'utf8').trim();
    } catch {
      return { stale: false };
    }
    if (!/^\d+$/.test(text)) return { stale: Date.now() - st.mtimeMs > NO_OWNER_STALE_MS };
    const pid = Number(text);
    const owner: LockOwner = { pid, host: hostname(), command: 'custos', since: '' };
    // This process holds no lock by this path, so its own pid in one is an earlier process's.
    const stale = pid === process.pid ? !held.has(lockPath) : !pidAlive(pid);
    return { stale, owner };
  }
  const owner = readOwner(lockPath);
  if (!owner || (owner.lockIno !== undefined && owner.lockIno !== st.ino))
    return { stale: Date.now() - st.mtimeMs > NO_OWNER_STALE_MS };
  if (owner.host === hostname() && owner.pid === process.pid && !held.has(lockPath))
    return { stale: true, owner };
  return { stale: ownerGone(owner), owner };
}

function clear(lockPath: string): void {
  try {
    const st = lstatSync(lockPath);
    if (st.isDirectory()) rmSync(lockPath, { recursive: true, force: true });
    else unlinkSync(lockPath);
  } catch {
    // someone else cleared it
  }
  try {
    unlinkSync(ownerPath(lockPath));
  } catch {
    // none
  }
}

/**
 * Takes the lock at `lockPath` (a directory, made with its parents, 0700), waiting as `opts` says.
 * Synchronous: custos's work under a lock is synchronous too.
 */
export function acquireLock(lockPath: string, opts: LockOptions): HeldLock {
  mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  for (;;) {
    try {
      lockfile.lockSync(lockPath, {
        lockfilePath: lockPath,
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        // Compromised means someone removed or replaced the lock: nothing to do but note it; the
        // on-token run marker (ops/run-marker.ts) still keeps two writers apart.
        onCompromised: () => held.delete(lockPath),
      });
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // another process tidied the directory away between our mkdir and the lock's
        mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
        continue;
      }
      if (code !== 'ELOCKED' && code !== 'EEXIST' && code !== 'ENOTDIR') throw e;
    }
    const { stale, owner } = judge(lockPath);
    if (stale) {
      clear(lockPath);
      continue;
    }
    if (Date.now() >= deadline) throw opts.busy(owner);
    if (!told) {
      told = true;
      opts.onWait?.(owner);
    }
    pause(RETRY_MS, 2 * RETRY_MS);
  }
  let ino: number | undefined;
  try {
    ino = lstatSync(lockPath).ino;
  } catch {
    ino = undefined;
  }
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    started: processStart(process.pid),
    command: opts.command,
    since: new Date().toISOString(),
    lockIno: ino,
  };
  try {
    writeOwner(lockPath, owner);
  } catch (e) {
    lockfile.unlockSync(lockPath, { lockfilePath: lockPath, realpath: false });
    throw e;
  }
  let released = false;
  const lock: HeldLock = {
    path: lockPath,
    owner,
    release() {
      if (released) return;
      released = true;
      held.delete(lockPath);
      try {
        unlinkSync(ownerPath(lockPath));
      } catch {
        // already gone
      }
      try {
        lockfile.unlockSync(lockPath, { lockfilePath: lockPath, realpath: false });
      } catch {
        // released or cleared by someone else
      }
      if (opts.tidy) {
        try {
          rmdirSync(dirname(lockPath));
        } catch {
          // not empty: another lock lives there
        }
      }
    },
  };
  held.set(lockPath, lock);
  return lock;
}

/** "restore, pid 4242 on this host, since 14:02:11 UTC": who holds a lock, for messages. */
export function describeOwner(owner: LockOwner | undefined): string {
  if (!owner) return 'a custos process that is starting';
  const where = owner.host === hostname() ? 'on this host' : `on host ${owner.host}`;
  const since = /T(\d\d:\d\d:\d\d)/.exec(owner.since)?.[1];
  return `${owner.command}, pid ${owner.pid} ${where}${since ? `, since ${since} UTC` : ''}`;
}
