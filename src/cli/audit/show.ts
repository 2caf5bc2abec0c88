/** custos audit show: an audit log as a table, or one block per entry when a table will not fit. */
import type { AuditEntry } from '../../core/audit/entry.js';
import { CustosError } from '../../core/errors.js';
import { layoutTable, wrapText } from '../../core/layout.js';
import type { Context } from '../../ops/context.js';
import { checkedLog, plural } from './verify.js';

const DETAIL_WIDTH = 60;

/** The entry's detail on one line, cut to DETAIL_WIDTH characters (raw: the table escapes it). */
function detailSummary(e: AuditEntry): string {
  const text = [
    ...Object.entries(e.detail ?? {})
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(' '),
  ];
  return text.length > DETAIL_WIDTH
    ? `${text.slice(0, DETAIL_WIDTH - 1).join('')}…`
    : text.join('') || '-';
}

export async function run(
  ctx: Context,
  o: { log: string; ceremony?: string; json?: boolean },
): Promise<void> {
  const r = checkedLog(ctx, o.log);
  let rows = r.entries.map((entry, i) => ({ entry, line: r.lines[i] as number }));
  if (o.ceremony !== undefined) {
    const nonce = o.ceremony;
    rows = rows.filter((row) => row.entry.ceremony === nonce);
    if (rows.length === 0) {
      const like = [
        ...new Set(
          r.entries
            .map((e) => e.ceremony)
            .filter((c): c is string => !!c && nonce !== '' && c.startsWith(nonce)),
        ),
      ];
      throw new CustosError(
        'E_USAGE',
        `no entry of the audit log ${o.log} belongs to ceremony ${nonce}`,
        like.length > 0
          ? `give the whole nonce: ${like.join(', ')}`
          : `run custos audit show ${o.log} to see the ceremonies it records`,
      );
    }
  }
  if (r.problems.length > 0)
    ctx.out.warn(
      `the log fails verification (${plural(r.problems.length, 'problem', 'problems')}): run custos audit verify ${o.log}`,
    );
  if (o.json) return ctx.out.json(rows.map((row) => row.entry));
  if (rows.length === 0) return ctx.out.note(`audit log ${o.log} has no entries`);
  const badLines = new Set(
    r.problems
      .filter((p) => p.kind === 'bad-signature' || p.kind === 'wrong-key')
      .map((p) => p.line),
  );
  const head = ['seq', 'time', 'op', 'actor', 'outcome', 'ceremony', 'bundle', 'detail', 'signed'];
  const table = rows.map(({ entry: e, line }) => [
    String(e.seq),
    `${e.time.slice(0, 19)}Z`,
    e.op,
    e.actor,
    e.outcome === 'ok' || !e.code ? e.outcome : `${e.outcome} (${e.code})`,
    e.ceremony ? e.ceremony.slice(0, 8) : '-',
    e.bundle ? e.bundle.slice(0, 8) : '-',
    detailSummary(e),
    !e.sig ? '-' : badLines.has(line) ? 'BAD' : 'yes',
  ]);
  if (layoutTable(head, table, ctx.out.width).shape === 'box') return ctx.out.table(head, table);
  // Too wide for this terminal: one entry per block, its whole detail wrapped below it.
  ctx.out.data(
    rows.flatMap(({ entry: e }, i) => {
      const [seq, time, op, actor, outcome, ceremony, bundle, , signed] = table[i] as string[];
      const detail = Object.entries(e.detail ?? {})
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
        .join(' ');
      return [
        `${seq}  ${time}  ${op}  ${outcome}${signed === 'yes' ? '  signed' : signed === 'BAD' ? '  BAD SIGNATURE' : ''}`,
        `    by ${actor}${ceremony !== '-' ? `   ceremony ${ceremony}` : ''}${bundle !== '-' ? `   bundle ${bundle}` : ''}`,
        ...(detail ? wrapText(detail, ctx.out.width - 4).map((l) => `    ${l}`) : []),
      ];
    }),
  );
}
