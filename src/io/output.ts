/** stdout carries data; stderr carries diagnostics. Colour only on a TTY and never with NO_COLOR. */
import type { Writable } from 'node:stream';
import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { CustosError } from '../core/errors.js';
import { printable } from '../core/text.js';

export class Output {
  readonly colour: ChalkInstance;
  readonly interactive: boolean;

  constructor(
    private readonly stdout: Writable & { isTTY?: boolean },
    private readonly stderr: Writable & { isTTY?: boolean },
    env: NodeJS.ProcessEnv,
  ) {
    this.interactive = !!stderr.isTTY;
    const coloured = !!stdout.isTTY && !('NO_COLOR' in env) && env.TERM !== 'dumb';
    this.colour = new Chalk({ level: coloured ? 1 : 0 });
  }

  data(text: string): void {
    this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  json(value: unknown): void {
    this.data(JSON.stringify(value, null, 2));
  }

  table(head: string[], rows: (string | number)[][]): void {
    const t = new Table({
      head: head.map((h) => this.colour.bold(h)),
      style: { head: [], border: [], compact: true },
    });
    t.push(...rows.map((r) => r.map(String)));
    this.data(t.toString());
  }

  // Diagnostics quote labels, names and paths from files: shown escaped, never obeyed.
  note(text: string): void {
    this.stderr.write(`custos: ${printable(text)}\n`);
  }

  warn(text: string): void {
    this.stderr.write(`custos: warning: ${printable(text)}\n`);
  }

  /** A progress line, rewritten in place; only when stderr is a terminal. */
  progress(text: string): void {
    if (this.interactive) this.stderr.write(`\r\x1b[2K${text}`);
  }

  progressDone(): void {
    if (this.interactive) this.stderr.write('\r\x1b[2K');
  }

  error(e: CustosError): void {
    this.stderr.write(`custos: error: ${printable(e.message)} [${e.code}]\n`);
    for (const d of e.details) this.stderr.write(`custos:   ${printable(d)}\n`);
    if (e.hint) this.stderr.write(`custos: hint: ${printable(e.hint)}\n`);
  }
}
