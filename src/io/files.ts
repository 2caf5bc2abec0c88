/**
 * Writing files so that a crash or a bad input never leaves a partial or overwritten file: each
 * file is written to a temporary name in its directory, synced, then hard-linked into place
 * (which fails rather than replace an existing file).
 */
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { CustosError } from '../core/errors.js';

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

/** Creates `path` (which must not exist) with the data, synced to disk; `created` runs once the file exists. */
function writeSynced(path: string, data: string | Uint8Array, mode: number, created?: () => void): void {
  const fd = openSync(path, 'wx', mode);
  created?.();
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Refuses, naming them, if any of the paths already exists: custos never overwrites its outputs. */
export function refuseExisting(paths: readonly string[]): void {
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) {
    throw new CustosError('E_EXISTS', `refusing to overwrite ${existing.join(', ')}`,
      'custos never overwrites a bundle or share file: choose a new output path, or move the old files away first');
  }
}

/** Creates all the files or none of them. Refuses, before writing anything, if any already exists. */
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
      const temp = join(dirname(f.path), `.${basename(f.path)}.${randomBytes(6).toString('hex')}.tmp`);
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
    // EEXIST while placing means a file appeared during the run; earlier it means a path component is a file.
    throw new CustosError(code === 'EEXIST' && placing ? 'E_EXISTS' : 'E_FILE', `could not write ${files.map((f) => f.path).join(', ')} (${code ?? 'error'})`,
      'nothing was written; check the directory exists, is writable and has space');
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
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmptyTree(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    // not empty: something else lives there
  }
}

export function readInputFile(path: string, what: string): Buffer {
  try {
    if (statSync(path).isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code})`;
    throw new CustosError('E_FILE', `${what} ${path} ${problem}`, 'check the path');
  }
}

/** Replaces a file's contents atomically (temp in the same directory, fsync, rename): for files that grow, like a request gaining approvals. */
export function replaceFileAtomically(path: string, data: string | Uint8Array, mode: number): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeSynced(temp, data, mode);
    renameSync(temp, path);
    syncDir(dirname(path));
  } catch (e) {
    removeQuietly(temp);
    const code = (e as NodeJS.ErrnoException).code;
    throw new CustosError('E_FILE', `could not rewrite ${path} (${code ?? 'error'})`, 'the file is unchanged; check the directory is writable and has space');
  }
}
