/**
 * stdout carries data; stderr carries diagnostics. Colour only on a TTY and never with NO_COLOR.
 *
 * This is the one place text is made safe for a terminal. Every string written here, whatever
 * its source (labels and names from bundles and tokens, audit log text, paths), has its control
 * characters, bidirectional marks and line separators shown escaped (`printable`), in data,
 * tables, notes, warnings, errors and progress lines alike; JSON output escapes them as JSON
 * (`\u202e`). Call sites pass raw text and never escape it themselves. A line break is made only
 * by giving `data` several lines; a line break inside a line is shown as `\x0a`.
 */
import type { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { CustosError } from '../core/errors.js';
import { UNSAFE_TEXT, printable } from '../core/text.js';
import { displayWidth, layoutTable, layoutWidth, wrapText } from '../core/layout.js';

const STYLES = {
  bold: ['1', '22'],
  dim: ['2', '22'],
  red: ['31', '39'],
  green: ['32', '39'],
  yellow: ['33', '39'],
} as const;
export type Style = keyof typeof STYLES;

/**
 * Marks text to be shown in a style; the marks are resolved (to colour, or to nothing) by Output
 * only.
 */
export type Painter = Record<Style, (text: string) => string>;

export class Output {
  /**
   * Styles for data and tables. The text they return carries marks that only this Output knows
   * (a random token per run), so a style cannot be forged by text from a file: such text is
   * escaped like any other.
   */
  readonly colour: Painter;
  readonly interactive: boolean;
  /** The columns lines are laid out for: the terminal's, else COLUMNS, else 80. */
  readonly width: number;
  private readonly coloured: boolean;
  private readonly marks: RegExp;

  constructor(
    private readonly stdout: Writable & { isTTY?: boolean },
    private readonly stderr: Writable & { isTTY?: boolean },
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.interactive = !!stderr.isTTY;
    const columns = (s: Writable & { isTTY?: boolean; columns?: number }) =>
      s.isTTY ? s.columns : undefined;
    this.width = layoutWidth(columns(stdout) ?? columns(stderr), env);
    this.coloured = !!stdout.isTTY && !('NO_COLOR' in env) && env.TERM !== 'dumb';
    const token = randomBytes(8).toString('hex');
    this.marks = new RegExp(`\u0000${token}([a-z]+)([+-])\u0000`, 'g');
    const paint = (style: Style) => (text: string) =>
      `\u0000${token}${style}+\u0000${text}\u0000${token}${style}-\u0000`;
    this.colour = {
      bold: paint('bold'),
      dim: paint('dim'),
      red: paint('red'),
      green: paint('green'),
      yellow: paint('yellow'),
    };
  }

  /**
   * The text made safe for a terminal, with this Output's own style marks turned into colour (or
   * dropped).
   */
  private render(text: string): string {
    let out = '';
    let at = 0;
    for (const m of text.matchAll(this.marks)) {
      out += printable(text.slice(at, m.index));
      const style = STYLES[m[1] as Style];
      if (style && this.coloured) out += `\u001b[${m[2] === '+' ? style[0] : style[1]}m`;
      at = (m.index as number) + m[0].length;
    }
    return out + printable(text.slice(at));
  }

  /** Lines of data: one line per element (one line for a string; a final newline is allowed). */
  data(lines: string | readonly string[]): void {
    const list =
      typeof lines === 'string' ? [lines.endsWith('\n') ? lines.slice(0, -1) : lines] : lines;
    this.stdout.write(list.map((l) => `${this.render(l)}\n`).join(''));
  }

  /**
   * JSON for machines: strings escaped by JSON, and the characters JSON leaves as they are (DEL,
   * C1, bidi marks, separators) as \uNNNN.
   */
  json(value: unknown): void {
    this.stdout.write(`${jsonText(value)}\n`);
  }

  /**
   * A table that fits this.width: boxed, its columns of words wrapped, or as a list when even that
   * is too wide (core/layout.ts).
   */
  table(head: string[], rows: (string | number)[][]): void {
    const { lines } = layoutTable(
      head.map((h) => this.render(this.colour.bold(h))),
      rows.map((r) => r.map((cell) => this.render(String(cell)))),
      this.width,
    );
    this.stdout.write(lines.map((l) => `${l}\n`).join(''));
  }

  /**
   * Lines for the person at the terminal to read before a question: stderr, without the custos:
   * prefix.
   */
  say(lines: string | readonly string[]): void {
    const list = typeof lines === 'string' ? [lines] : lines;
    this.stderr.write(list.map((l) => `${this.render(l)}\n`).join(''));
  }

  /**
   * `prefix` and the text on stderr. On a terminal it is wrapped to the terminal's width, the lines
   * it continues on starting `custos:` and indented under the text; a log or a pipe gets one line.
   */
  private diagnostic(prefix: string, text: string, hang = 0): void {
    if (!this.interactive) {
      this.stderr.write(`${prefix}${this.render(text)}\n`);
      return;
    }
    const width = layoutWidth((this.stderr as { columns?: number }).columns, this.env);
    const [first = '', ...rest] = wrapText(
      this.render(text),
      Math.max(20, width - displayWidth(prefix) - hang),
    );
    const more = `custos:${' '.repeat(Math.max(1, displayWidth(prefix) - 7 + hang))}`;
    this.stderr.write(`${prefix}${first}\n${rest.map((l) => `${more}${l}\n`).join('')}`);
  }

  note(text: string): void {
    this.diagnostic('custos: ', text, 4);
  }

  warn(text: string): void {
    this.diagnostic('custos: warning: ', text);
  }

  /** A progress line, rewritten in place; only when stderr is a terminal. */
  progress(text: string): void {
    if (this.interactive) this.stderr.write(`\r\x1b[2K${this.render(text)}`);
  }

  progressDone(): void {
    if (this.interactive) this.stderr.write('\r\x1b[2K');
  }

  error(e: CustosError): void {
    this.diagnostic('custos: error: ', `${e.message} [${e.code}]`);
    for (const d of e.details) this.diagnostic('custos:   ', d, 2);
    if (e.hint) this.diagnostic('custos: hint: ', e.hint);
  }
}

/** What printable() escapes that JSON.stringify writes as it is (it escapes C0 controls itself). */
const JSON_RAW_UNSAFE = new RegExp(UNSAFE_TEXT.source.replace('\\u0000-\\u001f', ''), 'g');

/**
 * JSON.stringify(value, null, 2), with every character printable() would escape written as a JSON
 * \u escape.
 */
export function jsonText(value: unknown): string {
  // Outside strings JSON text is ASCII (its only control is the newline of indentation), so each
  // match is inside a string.
  return JSON.stringify(value, null, 2).replace(
    JSON_RAW_UNSAFE,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}
