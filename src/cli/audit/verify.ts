/**
 * custos audit verify: the hash chain and every signature of an audit log checked, and its head
 * printed to be kept elsewhere.
 */
import { resolve } from 'node:path';
import { checkLog, type LogCheck, type Problem } from '../../core/audit/check.js';
import { CustosError } from '../../core/errors.js';
import { fitLines } from '../../core/layout.js';
import { sha256Hex } from '../../crypto/check-values.js';
import { verifyEd25519 } from '../../crypto/ed25519.js';
import { readLogBytes } from '../../io/audit-log.js';
import type { Context } from '../../ops/context.js';

/** The log as read and checked: what audit show lists, too. */
export function checkedLog(ctx: Context, log: string): LogCheck {
  return checkLog(readLogBytes(resolve(ctx.cwd, log)), verifyEd25519, sha256Hex);
}

export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function problemLine(p: Problem): string {
  return `line ${p.line}${p.seq !== undefined ? ` (entry ${p.seq})` : ''}: ${p.kind} — ${p.message}`;
}

const MAX_DETAILS = 100;

/** One line per problem; a log damaged throughout is cut short (all of them are in --json). */
function problemLines(problems: readonly Problem[]): string[] {
  const shown = problems.slice(0, MAX_DETAILS).map(problemLine);
  if (problems.length > MAX_DETAILS)
    shown.push(`… and ${problems.length - MAX_DETAILS} more (--json lists them all)`);
  return shown;
}

export async function run(ctx: Context, o: { log: string; json?: boolean }): Promise<void> {
  const r = checkedLog(ctx, o.log);
  if (o.json)
    ctx.out.json({
      entries: r.entries.length,
      signed: r.signed,
      unanchored: r.unanchored,
      head: r.head,
      problems: r.problems,
    });
  if (r.problems.length > 0) {
    throw new CustosError(
      'E_AUDIT_TAMPERED',
      `audit log ${o.log} fails verification: ${plural(r.problems.length, 'problem', 'problems')}`,
      'the log was changed after it was written; compare it with a copy kept elsewhere, and keep this one as evidence',
      problemLines(r.problems),
    );
  }
  if (o.json) return;
  ctx.out.data(
    fitLines(
      [
        `audit log ${o.log}: ${plural(r.entries.length, 'entry', 'entries')}, chain intact, ${plural(r.signed, 'signed entry', 'signed entries')} verified` +
          (r.unanchored
            ? `; ${plural(r.unanchored, 'signature', 'signatures')} by a key no ceremony in this log names, so not counted`
            : ''),
        `head: ${r.head}`,
      ],
      ctx.out.width,
    ),
  );
}
