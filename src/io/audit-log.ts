/**
 * Appending to the audit log (docs/audit-log.md). One writer at a time, by a lock beside the log
 * (io/lock.ts); each append reads only the log's last line (its seq and hash), then writes one line
 * with O_APPEND and syncs it. A log whose last line is not a whole entry is refused: something cut
 * or changed it, and appending would bury that.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import {
  GENESIS,
  lineHash,
  makeEntry,
  parseEntryLine,
  type AuditEntry,
  type AuditFacts,
  type EntrySigner,
} from '../core/audit/entry.js';
import { CustosError } from '../core/errors.js';
import { sha256Hex } from '../crypto/check-values.js';
import { readInputFile, syncDir } from './files.js';
import { acquireLock, describeOwner, type HeldLock } from './lock.js';

const LOCK_WAIT_MS = 10_000;
const TAIL_CHUNK = 64 * 1024;

function writeFailure(path: string, e: unknown): CustosError {
  if (e instanceof CustosError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return new CustosError(
    'E_AUDIT_WRITE',
    `could not append to the audit log ${path} (${code})`,
    'check that its directory exists and is writable by you and that the disk has space',
  );
}

/** The log's lock (io/lock.ts): `<log>.lock`, held for one append. */
function lockLog(path: string): HeldLock {
  const lock = `${path}.lock`;
  return acquireLock(lock, {
    command: 'audit append',
    waitMs: LOCK_WAIT_MS,
    busy: (owner) =>
      new CustosError(
        'E_AUDIT_WRITE',
        `could not append to the audit log ${path} (locked)`,
        `another custos (${describeOwner(owner)}) has held ${lock} for ${LOCK_WAIT_MS / 1000} s; if no custos is running, remove it`,
      ),
  });
}

/** The last line of the file (without its newline), reading backwards from the end in chunks. */
function lastLine(fd: number, size: number, path: string): Buffer | undefined {
  if (size === 0) return undefined;
  const damaged = (what: string) =>
    new CustosError(
      'E_AUDIT_TAMPERED',
      `the audit log ${path} ${what}; nothing was appended`,
      `run custos audit verify ${path} to see what is wrong; keep the file as evidence, and move it aside to start a new log`,
    );
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a)
    throw damaged('does not end with a newline (its last entry was cut short or edited)');
  let chunk = Math.min(TAIL_CHUNK, size);
  for (;;) {
    const start = size - chunk;
    const buf = Buffer.alloc(chunk);
    for (let off = 0; off < chunk;) {
      const n = readSync(fd, buf, off, chunk - off, start + off);
      if (n === 0) throw Object.assign(new Error('short read'), { code: 'EIO' });
      off += n;
    }
    const nl = chunk < 2 ? -1 : buf.lastIndexOf(0x0a, chunk - 2);
    if (nl >= 0 || start === 0) {
      const line = buf.subarray(nl + 1, chunk - 1);
      const parsed = parseEntryLine(line.toString('utf8'));
      if (!parsed.ok) throw damaged(`ends with a line that is not an entry (${parsed.message})`);
      if (!parsed.canonical || !Buffer.from(line.toString('utf8'), 'utf8').equals(line))
        throw damaged('ends with an entry that is not in canonical form');
      return line;
    }
    chunk = Math.min(chunk * 4, size);
  }
}

/**
 * Appends one entry for the facts (signed when a signer is given) and returns it. Creates the log
 * (0600) and its directory (0700) when missing. Fails with E_AUDIT_WRITE when the file cannot be
 * written, and E_AUDIT_TAMPERED when its last line is damaged; in both cases the log is unchanged.
 */
export function appendAudit(path: string, facts: AuditFacts, signer?: EntrySigner): AuditEntry {
  let lock: HeldLock | undefined;
  let fd: number | undefined;
  try {
    const madeDir = makeDir(dirname(path));
    lock = lockLog(path);
    fd = openLog(path);
    const size = fstatSync(fd).size;
    const tail = lastLine(fd, size, path);
    const seq = tail
      ? (parseEntryLine(tail.toString('utf8')) as { ok: true; entry: AuditEntry }).entry.seq + 1
      : 1;
    const prev = tail ? lineHash(tail, sha256Hex) : GENESIS;
    const { entry, line } = makeEntry(facts, seq, new Date().toISOString(), prev, signer);
    const bytes = Buffer.from(`${line}\n`, 'utf8');
    try {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } catch (e) {
      try {
        ftruncateSync(fd, size); // leave no partial line behind
      } catch {
        // the next append will refuse the damaged tail
      }
      throw e;
    }
    if (size === 0 || madeDir) syncDir(dirname(path));
    return entry;
  } catch (e) {
    throw writeFailure(path, e);
  } finally {
    if (fd !== undefined) closeSync(fd);
    lock?.release();
  }
}

/**
 * Opens the log for appending, creating it (0600) if missing. A symbolic link at the log's path is
 * refused, not followed: whoever placed it could send the entries anywhere the user can write.
 */
function openLog(path: string): number {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_RDWR |
        constants.O_APPEND |
        constants.O_CREAT |
        constants.O_NOFOLLOW |
        constants.O_NONBLOCK,
      0o600,
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new CustosError(
        'E_AUDIT_WRITE',
        `could not append to the audit log ${path}: it is a symbolic link, which custos does not follow`,
        "give the log's real path with --audit-log (or CUSTOS_AUDIT_LOG), or replace the link with the log file itself",
      );
    }
    throw e;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new CustosError(
      'E_AUDIT_WRITE',
      `could not append to the audit log ${path}: it is not a regular file`,
      'give the path of the log file (or of one to create) with --audit-log or CUSTOS_AUDIT_LOG',
    );
  }
  return fd;
}

/** Creates the directory (0700) and its missing parents; returns the first one it made. */
function makeDir(dir: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    // mkdir -p reports a file in the way as EEXIST; the cause is a path component that is not a
    // directory
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    throw e;
  }
}

/** The whole log as text. */
export function readLog(path: string): string {
  return readLogBytes(path).toString('utf8');
}

/**
 * The whole log as bytes, for checking (a line that is not UTF-8 is then reported, not replaced).
 */
export function readLogBytes(path: string): Buffer {
  return readInputFile(path, 'audit log');
}
