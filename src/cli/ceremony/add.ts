/** custos ceremony add: each submission's verdict, the quorum, and what comes next. */
import { resolve } from 'node:path';
import { CustosError } from '../../core/errors.js';
import { requiredQuorum } from '../../core/ceremony.js';
import { fitLines } from '../../core/layout.js';
import { whatToDo } from '../../core/advice.js';
import { readInputFile } from '../../io/files.js';
import { loadCeremony, openHost, type LoadedCeremony } from '../../ops/ceremony/host.js';
import { ceremonyStatus, type CeremonyStatus } from '../../ops/ceremony/status.js';
import { addSubmissions, type AddResult } from '../../ops/ceremony/add.js';
import { closeHint } from '../../ops/ceremony/close.js';
import { subjectOf } from '../../ops/submit.js';
import type { Context } from '../../ops/context.js';
import { quorumLine } from '../ceremony-view.js';
import { count } from '../render.js';

export async function run(
  ctx: Context,
  o: { ceremony: string; submissions: string[]; json?: boolean },
): Promise<void> {
  const c = loadCeremony(ctx, o.ceremony);
  const host = await openHost(ctx, c);
  const incoming = o.submissions.map((p) => ({
    source: p,
    bytes: readInputFile(resolve(ctx.cwd, p), 'submission'),
  }));
  const r = await addSubmissions(ctx, c, host, incoming);
  // A second copy of a share already in is harmless: said, not an error.
  const duplicates = r.rejected.filter((x) => x.reason === 'duplicate');
  const rejected = r.rejected.filter((x) => x.reason !== 'duplicate');
  const status = ceremonyStatus(ctx, c);
  const width = ctx.out.width;
  if (o.json) ctx.out.json(addJson(r, requiredQuorum(c.body)));
  else {
    ctx.out.data(
      fitLines(
        [
          ...r.accepted.map((a) => `accepted ${a.source}: ${a.custodian}'s share`),
          ...duplicates.map(
            (d) =>
              `already in ${d.source}: ${d.custodian ?? 'this custodian'}'s share already counts; nothing to do`,
          ),
          quorumLine(status),
          ...addNext(c, status),
        ],
        width,
        6,
      ),
    );
  }
  if (rejected.length > 0) {
    const subject = subjectOf(c);
    throw new CustosError(
      'E_SUBMISSION_REJECTED',
      `${count(rejected.length, 'submission')} rejected`,
      'the accepted submissions are kept; for each rejected file, do what its line says',
      rejected.flatMap((x) => [
        `rejected ${x.source} (${x.custodian ?? 'sender not proven'}): ${x.message}`,
        `  what to do: ${whatToDo(x, subject)}`,
      ]),
    );
  }
}

/**
 * The "next:" lines after an add: close when the quorum is in, else where the missing shares come
 * from.
 */
function addNext(c: LoadedCeremony, s: CeremonyStatus): string[] {
  if (s.closed || s.expired) return [];
  const more = Math.max(0, requiredQuorum(c.body) - s.accepted);
  if (more === 0) return [`next: ${closeHint(c)}`];
  const missing = s.custodians.filter((x) => x.state !== 'accepted').map((x) => x.id);
  return [
    `next: as each submission arrives: custos ceremony add ${c.path} FILE...`,
    `      not given yet: ${missing.join(', ')}`,
  ];
}

function addJson(r: AddResult, quorum: number) {
  const duplicate = (x: AddResult['rejected'][number]) => x.reason === 'duplicate';
  return {
    accepted: r.accepted,
    rejected: r.rejected
      .filter((x) => !duplicate(x))
      .map((x) => ({
        source: x.source,
        custodian: x.custodian ?? null,
        reason: x.reason,
        message: x.message,
      })),
    duplicates: r.rejected
      .filter(duplicate)
      .map((x) => ({ source: x.source, custodian: x.custodian ?? null, message: x.message })),
    quorum: {
      accepted: r.state.accepted.length,
      needed: quorum,
      missing: Math.max(0, quorum - r.state.accepted.length),
    },
  };
}
