/**
 * The run marker: a private data object custos puts on a token it is about to write to, before it
 * looks at what the token holds, and removes when the run ends. It names the run (id, command,
 * host, pid, start) and, once the run has made its plan, every object the run is going to create.
 *
 * It does two things the host-local lock (io/token-lock.ts) cannot:
 * - Two hosts sharing a network HSM: a run that finds another live run's marker on the token backs
 *   off (removing its own), waits, and is refused at the end of the wait. Both create first and
 *   look second, so two runs that start together both back off rather than both go on; they then
 *   try again after a random pause.
 * - A run killed part-way (SIGKILL, power loss) leaves its marker behind. A later run that finds
 *   the marker of a process that is gone (same host, pid dead) takes the objects it names as that
 *   run's own: any of them that cannot be proved to be the recorded object is a half-written
 *   leftover, removed and made again. Markers from another host are never judged dead: the
 *   operator removes one with the command the refusal names.
 *
 * A module that keeps no data objects gets the same marker as a file beside the token's lock
 * (host-local only: the run says so).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { CustosError } from '../core/errors.js';
import { Refused } from '../hsm/call.js';
import {
  createDataObject,
  destroyObject,
  findDataObjects,
  unnamedOtherObjects,
} from '../hsm/objects.js';
import type { Token } from '../hsm/token.js';
import { describeOwner, ownerGone, processStart, type LockOwner } from '../io/lock.js';
import { lockToken, lockWaitMs, shellQuote, type TokenLockPlace } from '../io/token-lock.js';
import { pause } from '../core/pause.js';

export const MARKER_APPLICATION = 'custos';
export const MARKER_LABEL_PREFIX = 'custos run ';
const MARKER_FORMAT = 'custos-run/1';

/** An object a run creates: its class ("secret", "private", "public", "certificate"), label, id. */
export interface PlannedObject {
  class: 'secret' | 'private' | 'public' | 'certificate';
  label: string;
  id: string;
}

export function plannedKey(o: PlannedObject): string {
  return `${o.class}\u0000${o.label}\u0000${o.id}`;
}

interface MarkerBody extends LockOwner {
  format: typeof MARKER_FORMAT;
  runId: string;
  creates: [PlannedObject['class'], string, string][];
}

/** Another run's marker as found on the token (or in the state directory). */
interface FoundMarker {
  label: string;
  body?: MarkerBody;
  /** No value at all: a marker whose creation was cut short. */
  empty: boolean;
  remove(): void;
}

/** Where markers are kept: on the token, or (a module with no data objects) in files. */
interface MarkerStore {
  readonly onToken: boolean;
  create(label: string, body: MarkerBody): boolean;
  update(body: MarkerBody): void;
  removeOwn(): void;
  others(): FoundMarker[];
}

function parseBody(value: Buffer): MarkerBody | undefined {
  try {
    const b = JSON.parse(value.toString('utf8')) as MarkerBody;
    if (b.format !== MARKER_FORMAT || typeof b.pid !== 'number' || typeof b.host !== 'string')
      return undefined;
    if (!Array.isArray(b.creates)) return undefined;
    return b;
  } catch {
    return undefined;
  }
}

class TokenStore implements MarkerStore {
  readonly onToken = true;
  private handle: Buffer | undefined;
  private label = '';
  constructor(private readonly token: Token) {}

  create(label: string, body: MarkerBody): boolean {
    this.label = label;
    const h = createDataObject(
      this.token,
      MARKER_APPLICATION,
      label,
      Buffer.from(JSON.stringify(body)),
    );
    if (h instanceof Refused) return false;
    this.handle = h;
    return true;
  }

  /**
   * A module may keep a data object's value read-only (SoftHSM 2.6 does): the marker is made again
   * with the new value, then the old one removed, so that the token is never without it.
   */
  update(body: MarkerBody): void {
    const old = this.handle;
    if (!old) return;
    if (!this.create(this.label, body))
      throw new CustosError(
        'E_HSM',
        `token "${this.token.identity.label}" no longer accepts custos's run marker`,
        'check the token and run again',
      );
    destroyObject(this.token, old);
  }

  removeOwn(): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    destroyObject(this.token, h);
  }

  others(): FoundMarker[] {
    const mine = this.handle?.toString('hex');
    return findDataObjects(this.token, MARKER_APPLICATION)
      .filter((o) => o.label.startsWith(MARKER_LABEL_PREFIX) && o.handle.toString('hex') !== mine)
      .map((o) => ({
        label: o.label,
        body: parseBody(o.value),
        empty: o.value.length === 0,
        remove: () => destroyObject(this.token, o.handle),
      }));
  }
}

class FileStore implements MarkerStore {
  readonly onToken = false;
  private own: string | undefined;
  constructor(private readonly base: string) {}

  private path(runId: string): string {
    return `${this.base}.run-${runId}`;
  }

  create(_label: string, body: MarkerBody): boolean {
    this.own = this.path(body.runId);
    this.update(body);
    return true;
  }

  update(body: MarkerBody): void {
    if (!this.own) return;
    const tmp = `${this.own}.tmp`;
    writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 });
    renameSync(tmp, this.own);
  }

  removeOwn(): void {
    if (this.own) rmSync(this.own, { force: true });
    this.own = undefined;
  }

  others(): FoundMarker[] {
    const dir = dirname(this.base);
    const prefix = `${basename(this.base)}.run-`;
    return readdirSync(dir)
      .filter((f) => f.startsWith(prefix) && !f.endsWith('.tmp'))
      .map((f) => join(dir, f))
      .filter((p) => p !== this.own)
      .map((p) => {
        let value: Buffer;
        try {
          value = readFileSync(p);
        } catch {
          value = Buffer.alloc(0);
        }
        return {
          label: p,
          body: parseBody(value),
          empty: value.length === 0,
          remove: () => rmSync(p, { force: true }),
        };
      });
  }
}

export interface MarkerOptions {
  command: string;
  /** How long to wait for another run's marker to go, in milliseconds. */
  waitMs: number;
  place: TokenLockPlace;
  note: (line: string) => void;
  warn: (line: string) => void;
}

/** A run's marker on a token, from before its plan until its end. */
export class RunMarker {
  /** Objects that interrupted runs of custos planned to create (plannedKey), and who they were. */
  readonly leftovers = new Map<string, string>();
  private readonly stale: FoundMarker[] = [];
  private body: MarkerBody;

  private constructor(
    private readonly store: MarkerStore,
    body: MarkerBody,
  ) {
    this.body = body;
  }

  /** Whether the marker is on the token itself (else host-local, in a file). */
  get onToken(): boolean {
    return this.store.onToken;
  }

  /**
   * Puts this run's marker on the token, waiting (up to `waitMs`) while another live run's marker
   * is there, and gathers what the markers of dead runs name. Throws E_BUSY at the end of the wait.
   */
  static begin(token: Token, opts: MarkerOptions): RunMarker {
    const runId = randomBytes(8).toString('hex');
    const body: MarkerBody = {
      format: MARKER_FORMAT,
      runId,
      command: opts.command,
      pid: process.pid,
      host: hostname(),
      started: processStart(process.pid),
      since: new Date().toISOString(),
      creates: [],
    };
    const label = `${MARKER_LABEL_PREFIX}${runId}`;
    let store: MarkerStore = new TokenStore(token);
    // SoftHSM 2.6 (file store) notices other processes' writes when it searches, but a write of its
    // own first makes it miss those made since its last search, for good: so search, then write.
    store.others();
    if (!store.create(label, body)) {
      store = new FileStore(opts.place.lockPath);
      store.create(label, body);
      opts.note(
        `token "${token.identity.label}" keeps no data objects: this run's marker is a file on this host, so only runs on this host are kept apart`,
      );
    }
    const deadline = Date.now() + opts.waitMs;
    let told = false;
    for (;;) {
      const live: FoundMarker[] = [];
      const stale: FoundMarker[] = [];
      for (const m of store.others()) {
        if (m.body ? ownerGone(m.body) : isEmptyShell(m)) stale.push(m);
        else live.push(m);
      }
      if (live.length === 0) {
        const marker = new RunMarker(store, body);
        for (const m of stale) marker.adopt(m);
        const shells = unnamedOtherObjects(token);
        if (shells)
          opts.warn(
            `token "${token.identity.label}" holds ${shells === 1 ? '1 object' : `${shells} objects`} with no label and no id that ${shells === 1 ? 'is' : 'are'} not a key, such as a process killed while creating an object leaves behind; check and delete ${shells === 1 ? 'it' : 'them'} (pkcs11-tool --list-objects)`,
          );
        return marker;
      }
      // Back off: another run is writing (or about to). Remove this marker so that run can go on.
      store.removeOwn();
      const other = live[0] as FoundMarker;
      if (Date.now() >= deadline) throw busy(token, opts.place, other, store.onToken);
      if (!told) {
        told = true;
        opts.note(
          `waiting for another custos run (${other.body ? describeOwner(other.body) : 'unknown'}) to finish with token "${token.identity.label}"`,
        );
      }
      pause(150, 500);
      body.since = new Date().toISOString();
      store.others();
      if (!store.create(label, body))
        throw new CustosError(
          'E_HSM',
          `token "${token.identity.label}" no longer accepts custos's run marker`,
          'check the token and run again',
        );
    }
  }

  private adopt(m: FoundMarker): void {
    this.stale.push(m);
    if (!m.body) return;
    const who = `an interrupted custos ${m.body.command} (pid ${m.body.pid}, started ${m.body.since})`;
    for (const [cls, label, id] of m.body.creates)
      this.leftovers.set(plannedKey({ class: cls, label, id }), who);
  }

  /** Records, before the first write, every object this run is going to create. */
  planned(objects: readonly PlannedObject[]): void {
    this.body = { ...this.body, creates: objects.map((o) => [o.class, o.label, o.id]) };
    this.store.update(this.body);
  }

  /**
   * The run ended: its marker goes, and (when it completed) so do the markers of the interrupted
   * runs whose leftovers it has dealt with.
   */
  finish(completed: boolean): void {
    this.store.removeOwn();
    if (!completed) return;
    for (const m of this.stale.splice(0)) m.remove();
  }
}

/** A marker with no value: one whose creation was interrupted. */
function isEmptyShell(m: FoundMarker): boolean {
  return m.body === undefined && m.empty;
}

function busy(
  token: Token,
  place: TokenLockPlace,
  other: FoundMarker,
  onToken: boolean,
): CustosError {
  const who = other.body ? describeOwner(other.body) : 'unknown';
  const remove = onToken
    ? `pkcs11-tool --module ${shellQuote(place.module)} --token-label ${shellQuote(token.identity.label)} --login --delete-object --type data --label ${shellQuote(other.label)}`
    : `rm ${shellQuote(other.label)}`;
  return new CustosError(
    'E_BUSY',
    `token "${token.identity.label}" is in use by another custos run (${who})`,
    `wait for that run to end and try again; if it is known to have stopped (a crash on another host), remove its marker: ${remove}`,
  );
}

/** A token this run holds: its host-local lock and its run marker. */
export interface HeldToken {
  marker: RunMarker;
  /** Ends the hold: the marker goes (see RunMarker.finish), then the lock. */
  release(completed: boolean): void;
}

/**
 * Takes the token for a run that writes to it — the host-local lock, then the run marker — before
 * the run looks at what the token holds. Waits (saying so) while another run holds it, up to
 * CUSTOS_LOCK_WAIT seconds, then refuses with E_BUSY.
 */
export function holdToken(
  ctx: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    out: { note(text: string): void; warn(text: string): void };
  },
  token: Token,
  command: string,
): HeldToken {
  const waitMs = lockWaitMs(ctx.env);
  const note = (line: string) => ctx.out.note(line);
  const { lock, place } = lockToken(ctx.cwd, token, command, waitMs, note);
  let marker: RunMarker;
  try {
    marker = RunMarker.begin(token, {
      command,
      waitMs,
      place,
      note,
      warn: (line) => ctx.out.warn(line),
    });
  } catch (e) {
    lock.release();
    throw e;
  }
  return {
    marker,
    release(completed) {
      try {
        marker.finish(completed);
      } finally {
        lock.release();
      }
    },
  };
}
