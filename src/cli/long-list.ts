/**
 * A list of keys for people: in full when it is short, when stdout is not a terminal (a file or a
 * pipe keeps every row), or with --full; summarised on a terminal when it is long, because ten
 * thousand rows are no use to a reader there (and slow to draw).
 */
import type { Context } from '../ops/context.js';
import { count } from './render.js';

/** Longer lists than this are summarised on a terminal. */
export const SUMMARY_ABOVE = 50;

export interface ListOptions {
  /** --full: every row, even on a terminal. */
  full?: boolean;
  /** The columns (by index) whose values group the rows of the summary. */
  groupBy: number[];
  noun: string;
}

export function keyList(
  ctx: Context,
  head: string[],
  rows: (string | number)[][],
  o: ListOptions,
): void {
  const terminal = !!process.stdout.isTTY;
  if (o.full || !terminal || rows.length <= SUMMARY_ABOVE) {
    ctx.out.table(head, rows);
    return;
  }
  const groups = new Map<string, { cells: (string | number)[]; n: number }>();
  for (const row of rows) {
    const cells = o.groupBy.map((i) => row[i] ?? '');
    const key = JSON.stringify(cells);
    const g = groups.get(key);
    if (g) g.n++;
    else groups.set(key, { cells, n: 1 });
  }
  ctx.out.table(
    [...o.groupBy.map((i) => head[i] ?? ''), `${o.noun}s`],
    [...groups.values()].map((g) => [...g.cells, g.n]),
  );
  ctx.out.note(
    `${count(rows.length, o.noun)}, summarised on a terminal: --full lists each one, --json gives them all as JSON`,
  );
}
