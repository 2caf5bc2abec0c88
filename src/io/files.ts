/**
 * Writing files so that a crash or a bad input never leaves a partial or overwritten file: each
 * file is written to a temporary name in its directory, synced, then hard-linked into place
 * (which fails rather than replace an existing file).
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { CustosError, type ErrorCode } from '../core/errors.js';
import { MAX_ENVELOPE_BYTES } from '../core/envelope.js';

export interface NewFile {
  path: string;
  data: string | Uint8Array;
  /** 0o600 for anything secret or custody-relevant. */
  mode: number;
}

/** fsyncs a directory, so a file just created or renamed in it survives a crash. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` (which must not exist) with the data, synced to disk; `created` runs once the file
 * exists.
 */
function writeSynced(
  path: string,
  data: string | Uint8Array,
  mode: number,
  created?: () => void,
): void {
  const fd = openSync(path, 'wx', mode);
  created?.();
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * True if something is at the path, a dangling symbolic link included (which a write would follow).
 */
function occupied(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is a file, so nothing is there to overwrite; writing will say so (E_FILE).
    return code !== 'ENOENT' && code !== 'ENOTDIR';
  }
}

/**
 * Refuses, naming them, if any of the paths already exists: custos never overwrites its outputs.
 * A symbolic link counts as existing even when what it points to does not exist.
 */
export function refuseExisting(paths: readonly string[]): void {
  const existing = paths.filter(occupied);
  if (existing.length > 0) {
    throw new CustosError(
      'E_EXISTS',
      `refusing to overwrite ${existing.join(', ')}`,
      'custos never overwrites a bundle or share file: choose a new output path, or move the old files away first',
    );
  }
}

/**
 * Creates all the files or none of them. Refuses, before writing anything, if any already exists.
 */
export function createFilesAtomically(files: readonly NewFile[]): void {
  refuseExisting(files.map((f) => f.path));
  const temps: string[] = [];
  const placed: string[] = [];
  const madeDirs: string[] = [];
  let placing = false;
  try {
    for (const f of files) {
      const made = mkdirSync(dirname(f.path), { recursive: true, mode: 0o700 });
      if (made) madeDirs.push(made);
      const temp = join(
        dirname(f.path),
        `.${basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`,
      );
      writeSynced(temp, f.data, f.mode, () => temps.push(temp));
    }
    placing = true;
    files.forEach((f, i) => {
      linkSync(temps[i] as string, f.path);
      placed.push(f.path);
    });
    for (const dir of new Set(files.map((f) => dirname(f.path)))) syncDir(dir);
  } catch (e) {
    for (const p of placed) removeQuietly(p);
    for (const t of temps) removeQuietly(t);
    for (const d of madeDirs.reverse()) removeEmptyTree(d);
    if (e instanceof CustosError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    // EEXIST while placing means a file appeared during the run; earlier it means a path component
    // is a file.
    throw new CustosError(
      code === 'EEXIST' && placing ? 'E_EXISTS' : 'E_FILE',
      `could not write ${files.map((f) => f.path).join(', ')} (${code ?? 'error'})`,
      'nothing was written; check the directory exists, is writable and has space',
    );
  } finally {
    for (const t of temps) removeQuietly(t);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Removes a directory this run created, and those below it, as far as they are empty. */
function removeEmptyTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) removeEmptyTree(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    // not empty: something else lives there
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The largest file custos reads, by what it is called in messages. Anything larger is refused
 * before it is read, so no input can make custos read without end or hold more than this.
 */
export const INPUT_LIMITS: Readonly<Record<string, number>> = {
  bundle: MAX_ENVELOPE_BYTES,
  'handover package': MAX_ENVELOPE_BYTES,
  'ceremony file': MAX_ENVELOPE_BYTES,
  'handover request': MAX_ENVELOPE_BYTES,
  'domain file': 4 * MiB,
  'share file': 64 * KiB,
  'identity file': 1 * MiB,
  submission: 1 * MiB,
  'policy file': 1 * MiB,
  'configuration file': 1 * MiB,
  'recipient public key': 1 * MiB,
  'recipient private key': 1 * MiB,
  'approver key': 1 * MiB,
  'audit log': 1024 * MiB,
  'legal document': 1024 * MiB,
};
/** For a kind of file not listed above. */
export const DEFAULT_INPUT_LIMIT = MAX_ENVELOPE_BYTES;
/** PIN files: a PIN is at most a few hundred characters. */
const PIN_FILE_LIMIT = 64 * KiB;

export function inputLimit(what: string): number {
  return INPUT_LIMITS[what] ?? (what.startsWith('PIN file') ? PIN_FILE_LIMIT : DEFAULT_INPUT_LIMIT);
}

export interface ReadOptions {
  /** The largest size accepted; by default the limit for `what` (INPUT_LIMITS). */
  maxBytes?: number;
  /** The code for a file over the limit (default E_FILE), e.g. the format's own code. */
  tooLargeCode?: ErrorCode;
  tooLargeHint?: string;
}

function kindOf(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'is a directory';
  if (st.isFIFO()) return 'is a named pipe (FIFO), not a regular file';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device, not a regular file';
  if (st.isSocket()) return 'is a socket, not a regular file';
  return 'is not a regular file';
}

/**
 * Reads a whole input file. Only regular files are read: the file is opened without blocking (a
 * FIFO with no writer would otherwise hang the open) and checked with fstat, so a named pipe, a
 * device such as /dev/zero, a socket or a directory is refused by name. A file larger than its
 * limit is refused before it is read, and a file that grows while it is read is refused too.
 */
export function readInputFile(path: string, what: string, options: ReadOptions = {}): Buffer {
  const limit = options.maxBytes ?? inputLimit(what);
  const fail = (problem: string, hint = 'check the path') =>
    new CustosError('E_FILE', `${what} ${path} ${problem}`, hint);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fail(
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'cannot be read (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : code === 'ENXIO'
              ? 'is a socket or device, not a regular file'
              : code === 'ELOOP'
                ? 'is a loop of symbolic links'
                : `cannot be read (${code ?? 'error'})`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail(kindOf(st), `give the path of a regular file holding the ${what}`);
    const tooLarge = (size: string) =>
      new CustosError(
        options.tooLargeCode ?? 'E_FILE',
        `${what} ${path} is ${size}, more than a custos ${what} can be (${limit} bytes)`,
        options.tooLargeHint ?? `check that ${path} is the ${what} you meant`,
      );
    if (st.size > limit) throw tooLarge(`${st.size} bytes`);
    // Read to the end, never past limit + 1 bytes: the size fstat gave may be stale.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(
        Math.min(Math.max(st.size - total + 1, 64 * KiB), limit + 1 - total, 4 * MiB),
      );
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > limit) throw tooLarge('more bytes than that (it grew while being read)');
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof CustosError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw fail(code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? 'error'})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * The directories from which anyone on the host could replace or remove files written to `dir`:
 * `dir` itself when anyone may write to it (even with the sticky bit, as /tmp has, anyone may
 * place files there), and any directory above it that anyone may write to without the sticky bit
 * (anyone may then rename the directories below it). Empty when the path is private.
 */
export function exposedDirectories(dir: string): string[] {
  const out: string[] = [];
  let current = resolve(dir);
  for (let first = true; ; first = false) {
    try {
      const st = statSync(current);
      const worldWritable = (st.mode & 0o002) !== 0;
      const sticky = (st.mode & 0o1000) !== 0;
      if (worldWritable && (first || !sticky)) out.push(current);
    } catch {
      // not there (yet) or not visible: nothing to say about it
    }
    const parent = dirname(current);
    if (parent === current) return out;
    current = parent;
  }
}

/**
 * Replaces a file's contents atomically (temp in the same directory, fsync, rename): for files that
 * grow, like a request gaining approvals.
 *
 * Kept by hand rather than taken from write-file-atomic (8.0), which opens a temp name derived from
 * the process id with a plain create-or-truncate (a link planted at that name is followed),
 * resolves the target through symbolic links, and does not sync the directory after the rename.
 */
export function replaceFileAtomically(path: string, data: string | Uint8Array, mode: number): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeSynced(temp, data, mode);
    renameSync(temp, path);
    syncDir(dirname(path));
  } catch (e) {
    removeQuietly(temp);
    const code = (e as NodeJS.ErrnoException).code;
    throw new CustosError(
      'E_FILE',
      `could not rewrite ${path} (${code ?? 'error'})`,
      'the file is unchanged; check the directory is writable and has space',
    );
  }
}
