/**
 * Checking a whole audit log (its entries are in entry.ts).
 *
 * What the chain shows. Any changed byte in an entry that has a successor breaks the successor's
 * `prev`; a deleted entry leaves a gap in `seq` and a broken link; an inserted entry repeats a
 * `seq` or stands outside the chain; moved entries run out of order. checkLog names each of these
 * with its line. A signed entry cannot be edited, or forged, without the ceremony's private key.
 *
 * What it cannot show on its own. The chain is made of public hashes, so anyone who can write the
 * file can rewrite every entry after some point (or cut the tail off) and the result is again a
 * valid chain: the last entry can be edited, and the last entries deleted, without a trace. Only an
 * anchor kept outside the file shows that: the head hash that `custos audit verify` prints
 * (recorded elsewhere, e.g. in a ticket or a copy of the log), and the signatures of ceremony
 * entries, which nobody without the ceremony key can re-make. A signature proves its entry;
 * the absence of one proves nothing.
 *
 * Pure: hashing and signature checks are passed in (see src/crypto).
 */
import { canonicalBase64 } from '../envelope.js';
import {
  AUDIT_FORMAT,
  GENESIS,
  parseEntryLine,
  signedBytes,
  type AuditEntry,
  type HashHex,
} from './entry.js';

export type ProblemKind =
  'malformed' | 'edited' | 'deleted' | 'inserted' | 'reordered' | 'bad-signature' | 'wrong-key';

export interface Problem {
  /** 1-based line of the file the finding is about. */
  line: number;
  /** seq of the entry on that line, when the line holds one. */
  seq?: number;
  kind: ProblemKind;
  message: string;
}

export interface LogCheck {
  /** Every line that parsed as an entry, in file order (including ones with problems). */
  entries: AuditEntry[];
  /** The 1-based line of each entry in `entries`. */
  lines: number[];
  problems: Problem[];
  /** SHA-256 of the last complete line, or GENESIS for an empty log. */
  head: string;
  /**
   * Entries whose signature verified with the key their ceremony's ceremony-open entry in this log
   * names.
   */
  signed: number;
  /**
   * Entries with a valid signature by a key no ceremony-open entry in this log names (not counted
   * in signed).
   */
  unanchored: number;
}

export type VerifySig = (publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array) => boolean;

interface Slot {
  line: number;
  hash: string;
  entry?: AuditEntry;
}

type Node = Slot & { entry: AuditEntry };

function range(seqs: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && (seqs[j + 1] as number) === (seqs[j] as number) + 1) j++;
    parts.push(i === j ? `${seqs[i]}` : `${seqs[i]}-${seqs[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function entries(n: number): string {
  return n === 1 ? 'entry' : 'entries';
}

/** Indices into `xs` of one longest strictly increasing subsequence. */
function longestIncreasing(xs: readonly number[]): Set<number> {
  const tails: number[] = []; // index into xs of the smallest tail of each length
  const back: number[] = new Array<number>(xs.length).fill(-1);
  xs.forEach((x, i) => {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[tails[mid] as number] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) back[i] = tails[lo - 1] as number;
    tails[lo] = i;
  });
  const keep = new Set<number>();
  for (
    let i = tails.length ? (tails[tails.length - 1] as number) : -1;
    i >= 0;
    i = back[i] as number
  )
    keep.add(i);
  return keep;
}

/**
 * Checks a whole log: every line, the chain, the order, and every signature. Never throws on bad
 * input: each finding is a problem with its line. An empty input is a valid, empty log.
 */
export function checkLog(text: string | Uint8Array, verifySig: VerifySig, hash: HashHex): LogCheck {
  const bytes =
    typeof text === 'string'
      ? Buffer.from(text, 'utf8')
      : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  const problems: Problem[] = [];
  const reported = new Set<string>();
  /** One problem of each kind per line: the first finding, which is the most specific. */
  const report = (p: Problem) => {
    const key = `${p.line}:${p.kind}`;
    if (!reported.has(key)) problems.push(p);
    reported.add(key);
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });

  // 1. Lines: each parsed on its own.
  const slots: Slot[] = [];
  let head = GENESIS;
  for (let start = 0, n = 1; start < bytes.length; n++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const slot: Slot = { line: n, hash: hash(raw) };
    slots.push(slot);
    if (nl < 0) {
      report({
        line: n,
        kind: 'malformed',
        message:
          'the log ends in the middle of this line (no newline): a write was cut short or the file was truncated',
      });
      continue;
    }
    head = slot.hash;
    let line: string;
    try {
      line = decoder.decode(raw);
    } catch {
      report({
        line: n,
        kind: 'malformed',
        message: `not a ${AUDIT_FORMAT} entry: not UTF-8 text`,
      });
      continue;
    }
    const parsed = parseEntryLine(line);
    if (!parsed.ok) {
      report({
        line: n,
        kind: 'malformed',
        message: `not a ${AUDIT_FORMAT} entry: ${parsed.message}`,
      });
      continue;
    }
    slot.entry = parsed.entry;
    if (!parsed.canonical) {
      report({
        line: n,
        seq: parsed.entry.seq,
        kind: 'edited',
        message: `entry ${parsed.entry.seq} is not in canonical form (spacing, key order or number format changed): its bytes were edited after it was written`,
      });
    }
  }
  const nodes = slots.filter((s): s is Node => s.entry !== undefined);
  const bySeq = new Map<number, Node[]>();
  for (const n of nodes) {
    const same = bySeq.get(n.entry.seq);
    if (same) same.push(n);
    else bySeq.set(n.entry.seq, [n]);
  }
  const slotIndex = new Map<Slot, number>(slots.map((s, i) => [s, i]));
  const hashesOf = (seq: number) => new Set((bySeq.get(seq) ?? []).map((n) => n.hash));
  const linksBack = (n: Node) =>
    n.entry.seq === 1 ? n.entry.prev === GENESIS : hashesOf(n.entry.seq - 1).has(n.entry.prev);

  // 2. A seq that appears more than once: keep the copy the chain vouches for, the others were
  // inserted.
  const inserted = new Set<Node>();
  for (const [seq, group] of bySeq) {
    if (group.length < 2) continue;
    const referenced = new Set((bySeq.get(seq + 1) ?? []).map((n) => n.entry.prev));
    const score = (n: Node) => {
      const i = slotIndex.get(n) as number;
      const before = slots[i - 1];
      const after = slots[i + 1];
      return (
        (referenced.has(n.hash) ? 4 : 0) +
        (linksBack(n) ? 2 : 0) +
        (before?.entry && before.entry.seq === seq - 1 && before.hash === n.entry.prev ? 1 : 0) +
        (after?.entry && after.entry.prev === n.hash ? 1 : 0)
      );
    };
    const ranked = [...group].sort((a, b) => score(b) - score(a) || a.line - b.line);
    const genuine = ranked[0] as Node;
    const sure = score(genuine) > score(ranked[1] as Node);
    for (const n of ranked.slice(1)) {
      inserted.add(n);
      report({
        line: n.line,
        seq,
        kind: 'inserted',
        message: sure
          ? `a second entry ${seq} (entry ${seq} is on line ${genuine.line}, which the chain links): this one was inserted`
          : `a second entry ${seq} (also on line ${genuine.line}): one of the two was inserted`,
      });
    }
  }

  // 3. Order. Out of place are either the entries outside a longest run in rising seq (one entry
  // moved far), or the lines not holding the seq that sorting would put there (two swapped),
  // whichever
  // names fewer lines; the rest are in place. Out-of-place entries were moved, or inserted.
  const kept = nodes.filter((n) => !inserted.has(n));
  const seqs = kept.map((n) => n.entry.seq);
  const sorted = [...seqs].sort((a, b) => a - b);
  const byRun = longestIncreasing(seqs);
  const byPlace = new Set(seqs.flatMap((s, i) => (s === sorted[i] ? [i] : [])));
  const inOrder = byPlace.size >= byRun.size ? byPlace : byRun;
  const keptIndex = new Map<Node, number>(kept.map((n, i) => [n, i]));
  const chain = kept.filter((_, i) => inOrder.has(i));
  const moved = new Set(kept.filter((_, i) => !inOrder.has(i)));
  const lastInPlace = chain.length ? (chain[chain.length - 1] as Node).entry.seq : 0;
  const lineOfSeq = (seq: number) => bySeq.get(seq)?.find((n) => !inserted.has(n))?.line;
  for (const n of moved) {
    const seq = n.entry.seq;
    if (seq > lastInPlace && !linksBack(n)) {
      report({
        line: n.line,
        seq,
        kind: 'inserted',
        message: `entry ${seq} is out of sequence and links to no entry ${seq - 1}: it was inserted`,
      });
      inserted.add(n);
      continue;
    }
    const where =
      seq === 1
        ? 'it belongs first'
        : lineOfSeq(seq - 1) !== undefined
          ? `it belongs after entry ${seq - 1} (line ${lineOfSeq(seq - 1)})`
          : `entry ${seq - 1} is not in the log`;
    report({
      line: n.line,
      seq,
      kind: 'reordered',
      message: `entry ${seq} is out of order: ${where}`,
    });
  }
  const present = new Set(kept.filter((n) => !inserted.has(n)).map((n) => n.entry.seq));

  // 4. The chain, walked in file order over the entries in place and the unreadable lines between
  // them.
  let last: Node | undefined;
  let beforeLast: Node | undefined;
  let damaged = 0;
  for (const slot of slots) {
    if (!slot.entry) {
      damaged++;
      continue;
    }
    const n = slot as Node;
    const k = keptIndex.get(n);
    if (k === undefined || !inOrder.has(k) || inserted.has(n)) continue;
    const from = last ? last.entry.seq : 0;
    const seq = n.entry.seq;
    const missing: number[] = [];
    for (let s = from + 1; s < seq; s++) if (!present.has(s)) missing.push(s);
    const expectedPrev = last ? last.hash : GENESIS;
    if (missing.length > damaged) {
      const after = last ? `after entry ${from} (line ${last.line})` : 'at the start of the log';
      const also = damaged
        ? ` (${damaged} unreadable ${damaged === 1 ? 'line lies' : 'lines lie'} in between)`
        : '';
      report({
        line: n.line,
        seq,
        kind: 'deleted',
        message: `${entries(missing.length)} ${range(missing)} ${missing.length === 1 ? 'is' : 'are'} missing ${after}, before this entry ${seq}${also}: deleted`,
      });
    } else if (seq === from + 1 && damaged === 0 && n.entry.prev !== expectedPrev) {
      if (!last) {
        report({
          line: n.line,
          seq,
          kind: 'edited',
          message:
            'entry 1 does not start the chain: its prev is not 64 zeros, so it was edited (or entries before it were deleted and it was renumbered)',
        });
      } else if (beforeLast && n.entry.prev === beforeLast.hash) {
        report({
          line: last.line,
          seq: last.entry.seq,
          kind: 'inserted',
          message: `entry ${last.entry.seq} is not in the chain: the next entry ${seq} (line ${n.line}) links past it to entry ${beforeLast.entry.seq} (line ${beforeLast.line}), so it was inserted (and later entries renumbered)`,
        });
      } else {
        report({
          line: last.line,
          seq: last.entry.seq,
          kind: 'edited',
          message: `entry ${last.entry.seq} was changed after it was written: its hash does not match the prev that entry ${seq} (line ${n.line}) recorded, unless entry ${seq}'s prev was changed instead`,
        });
      }
    } else if (
      seq > from + 1 &&
      missing.length === 0 &&
      damaged === 0 &&
      last &&
      n.entry.prev === last.hash
    ) {
      report({
        line: n.line,
        seq,
        kind: 'edited',
        message: `entry on this line says seq ${seq} but links directly to entry ${from} (line ${last.line}): its seq was changed`,
      });
    }
    beforeLast = last;
    last = n;
    damaged = 0;
  }

  // 5. Signatures, and the ceremony keys they must be made with.
  const ceremonyKeys = new Map<string, { key: string; line: number }>();
  for (const n of [...kept]
    .filter((k) => !inserted.has(k))
    .sort((a, b) => a.entry.seq - b.entry.seq)) {
    const e = n.entry;
    const key = e.detail?.signingKey;
    if (
      e.op === 'ceremony-open' &&
      e.ceremony &&
      typeof key === 'string' &&
      !ceremonyKeys.has(e.ceremony)
    )
      ceremonyKeys.set(e.ceremony, { key, line: n.line });
  }
  let signed = 0;
  let unanchored = 0;
  for (const n of nodes) {
    const e = n.entry;
    const opened = e.ceremony ? ceremonyKeys.get(e.ceremony) : undefined;
    if (
      e.op === 'ceremony-open' &&
      opened &&
      opened.line !== n.line &&
      e.detail?.signingKey !== opened.key
    ) {
      report({
        line: n.line,
        seq: e.seq,
        kind: 'wrong-key',
        message: `opens ceremony ${e.ceremony} again with a different signing key than line ${opened.line}`,
      });
    }
    if (!e.sig) continue;
    // Canonical base64 only: no other spelling of the same key or signature passes.
    const key = canonicalBase64(e.sig.key, 32);
    const value = canonicalBase64(e.sig.value, 64);
    if (!key || !value) {
      report({
        line: n.line,
        seq: e.seq,
        kind: 'bad-signature',
        message: `entry ${e.seq}'s sig is not an Ed25519 key (32 bytes) and signature (64 bytes) in canonical base64`,
      });
      continue;
    }
    if (!verifySig(key, signedBytes(e), value)) {
      report({
        line: n.line,
        seq: e.seq,
        kind: 'bad-signature',
        message: `entry ${e.seq}'s signature does not verify: the entry was changed after it was signed`,
      });
      continue;
    }
    if (opened && e.sig.key !== opened.key) {
      report({
        line: n.line,
        seq: e.seq,
        kind: 'wrong-key',
        message: `entry ${e.seq} of ceremony ${e.ceremony} is signed by a key other than the ceremony's signing key (opened on line ${opened.line})`,
      });
      continue;
    }
    // A signature under a key no ceremony-open in this log names proves only that someone signed
    // it.
    if (!opened) {
      unanchored++;
      continue;
    }
    signed++;
  }

  problems.sort((a, b) => a.line - b.line);
  return {
    entries: nodes.map((n) => n.entry),
    lines: nodes.map((n) => n.line),
    problems,
    head,
    signed,
    unanchored,
  };
}
