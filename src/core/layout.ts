/**
 * Fitting text to a terminal's width: every screen is read on an 80-column terminal, so no line
 * custos writes may be wider than the terminal it is written to. Pure: the width is given.
 *
 * A table whose columns fit is drawn as a box; one too wide first has its columns of words
 * wrapped (never a word cut); one that still does not fit becomes a list, one block per row:
 * the first cell on a line of its own, then `heading: value` pairs filled into lines.
 */

/** The width a terminal gives a line when nothing says otherwise (not a TTY, no COLUMNS). */
export const DEFAULT_WIDTH = 80;

/** The narrowest width anything is laid out for. */
export const MIN_WIDTH = 40;

// SGR colour sequences, the only escapes custos itself puts in text it writes.
const SGR = /\u001b\[[0-9;]*m/g;

export function stripStyle(text: string): string {
  return text.replace(SGR, '');
}

function wide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x1f900 && code <= 0x1f9ff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  );
}

/**
 * Columns a line takes on a terminal: colour escapes take none, combining marks none, East Asian
 * wide characters two.
 */
export function displayWidth(text: string): number {
  let n = 0;
  for (const ch of stripStyle(text)) {
    const code = ch.codePointAt(0) as number;
    if (
      /\p{M}/u.test(ch) ||
      code === 0x200b ||
      code === 0x200c ||
      code === 0x200d ||
      code === 0xfeff
    )
      continue;
    n += wide(code) ? 2 : 1;
  }
  return n;
}

/** The width to lay out for: a terminal's own, else COLUMNS, else 80; never below MIN_WIDTH. */
export function layoutWidth(columns: number | undefined, env: NodeJS.ProcessEnv): number {
  const fromEnv = Number.parseInt(env.COLUMNS ?? '', 10);
  const w =
    columns && columns > 0
      ? columns
      : Number.isFinite(fromEnv) && fromEnv > 0
        ? fromEnv
        : DEFAULT_WIDTH;
  return Math.max(MIN_WIDTH, w);
}

/** Cuts a word that is wider than `width` into pieces that fit. */
function breakWord(word: string, width: number): string[] {
  const out: string[] = [];
  let piece = '';
  for (const ch of word) {
    if (piece && displayWidth(piece + ch) > width) {
      out.push(piece);
      piece = '';
    }
    piece += ch;
  }
  if (piece) out.push(piece);
  return out;
}

/**
 * Text filled into lines of at most `width` columns, broken at blanks; a word wider than the
 * line is cut. Colour escapes are kept only when the text needs no breaking.
 */
export function wrapText(text: string, width: number): string[] {
  if (displayWidth(text) <= width) return [text];
  // An indented text keeps its indent on every line.
  const lead = /^ */.exec(stripStyle(text))?.[0] ?? '';
  if (lead && lead.length < width / 2)
    return wrapText(stripStyle(text).slice(lead.length), width - lead.length).map(
      (l) => `${lead}${l}`,
    );
  const words = stripStyle(text)
    .split(/ +/)
    .filter((w) => w !== '');
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    for (const part of displayWidth(word) > width ? breakWord(word, width) : [word]) {
      if (line && displayWidth(`${line} ${part}`) <= width) line = `${line} ${part}`;
      else {
        if (line) lines.push(line);
        line = part;
      }
    }
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * `label` followed by `text`, wrapped to `width`, the lines after the first indented to where the
 * text began: `label` carries its own trailing blanks (`"purpose:   "`).
 */
export function hangingLines(label: string, text: string, width: number): string[] {
  const indent = displayWidth(label);
  if (indent > width / 2)
    return [label.trimEnd(), ...wrapText(text, width - 2).map((l) => `  ${l}`)];
  const [first = '', ...rest] = wrapText(text, width - indent);
  return [`${label}${first}`, ...rest.map((l) => `${' '.repeat(indent)}${l}`)];
}

/** Lines of text, each wrapped to `width` with `indent` blanks before the lines it continues on. */
export function fitLines(lines: readonly string[], width: number, indent = 2): string[] {
  return lines.flatMap((line) => {
    if (displayWidth(line) <= width) return [line];
    const lead = /^ */.exec(stripStyle(line))?.[0] ?? '';
    const [first = '', ...rest] = wrapText(
      stripStyle(line).slice(lead.length),
      width - lead.length,
    );
    return [
      `${lead}${first}`,
      ...wrapText(rest.join(' '), width - lead.length - indent)
        .filter((l) => l !== '')
        .map((l) => `${lead}${' '.repeat(indent)}${l}`),
    ];
  });
}

const BOX = {
  top: ['┌', '┬', '┐'],
  mid: ['├', '┼', '┤'],
  bottom: ['└', '┴', '┘'],
  bar: '│',
  line: '─',
} as const;

/** Width of a box with columns of these widths: a blank each side of every cell, and the bars. */
function boxWidth(widths: readonly number[]): number {
  return widths.reduce((n, w) => n + w + 3, 1);
}

function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

function rule(widths: readonly number[], [left, cross, right]: readonly string[]): string {
  return `${left}${widths.map((w) => BOX.line.repeat(w + 2)).join(cross)}${right}`;
}

function drawBox(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  widths: readonly number[],
): string[] {
  const cellLines = (row: readonly string[]) =>
    row.map((cell, c) => wrapText(cell, widths[c] as number));
  const physical = (row: readonly string[]) => {
    const cells = cellLines(row);
    const height = Math.max(1, ...cells.map((l) => l.length));
    return Array.from(
      { length: height },
      (_, i) =>
        `${BOX.bar}${cells.map((l, c) => ` ${pad(l[i] ?? '', widths[c] as number)} `).join(BOX.bar)}${BOX.bar}`,
    );
  };
  const body = rows.map(physical);
  // Rows that take several lines are told apart by a rule between them.
  const ruled = body.some((lines) => lines.length > 1);
  return [
    rule(widths, BOX.top),
    ...physical(head),
    rule(widths, BOX.mid),
    ...body.flatMap((lines, i) => (ruled && i > 0 ? [rule(widths, BOX.mid), ...lines] : lines)),
    rule(widths, BOX.bottom),
  ];
}

/**
 * Each row as a block: its first cell alone, then the other cells as `heading: value`, filled into
 * lines.
 */
function drawList(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  width: number,
): string[] {
  const out: string[] = [];
  const inner = width - 2;
  for (const row of rows) {
    out.push(...wrapText(row[0] ?? '', width));
    let line = '';
    for (const [c, cell] of row.entries()) {
      if (c === 0) continue;
      const pair = `${stripStyle(head[c] ?? '')}: ${cell}`;
      if (line && displayWidth(`${line}   ${pair}`) <= inner) {
        line = `${line}   ${pair}`;
        continue;
      }
      if (line) out.push(`  ${line}`);
      if (displayWidth(pair) <= inner) line = pair;
      else {
        out.push(...hangingLines(`  ${stripStyle(head[c] ?? '')}: `, cell, width));
        line = '';
      }
    }
    if (line) out.push(`  ${line}`);
  }
  return out;
}

export type TableShape = 'box' | 'wrapped' | 'list';

/**
 * Lays a table out in `width` columns: as it is when it fits; else with its columns of several
 * words narrowed (wrapped at blanks, each at least as wide as its widest word); else as a list.
 * Cells are single lines, already made safe to print (they may carry colour escapes).
 */
export function layoutTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  width: number,
): { shape: TableShape; lines: string[] } {
  const all = [head, ...rows];
  const columns = head.length;
  const natural = Array.from({ length: columns }, (_, c) =>
    Math.max(1, ...all.map((r) => displayWidth(r[c] ?? ''))),
  );
  if (boxWidth(natural) <= width) return { shape: 'box', lines: drawBox(head, rows, natural) };
  const longestWord = (text: string) =>
    Math.max(1, ...stripStyle(text).split(/ +/).map(displayWidth));
  const least = Array.from({ length: columns }, (_, c) =>
    Math.max(...all.map((r) => longestWord(r[c] ?? ''))),
  );
  const widths = [...natural];
  while (boxWidth(widths) > width) {
    // Narrow the widest column that can still give up a column.
    let pick = -1;
    for (let c = 0; c < columns; c++)
      if (
        (widths[c] as number) > (least[c] as number) &&
        (pick < 0 || (widths[c] as number) > (widths[pick] as number))
      )
        pick = c;
    if (pick < 0) return { shape: 'list', lines: drawList(head, rows, width) };
    widths[pick] = (widths[pick] as number) - 1;
  }
  // A cell squeezed into a tall column reads worse than a list.
  if (
    all.some((r) =>
      r.some((cell, c) => wrapText(cell, widths[c] as number).length > MAX_CELL_LINES),
    )
  )
    return { shape: 'list', lines: drawList(head, rows, width) };
  return { shape: 'wrapped', lines: drawBox(head, rows, widths) };
}

/** The most lines one wrapped cell may take before the table is shown as a list instead. */
export const MAX_CELL_LINES = 3;
