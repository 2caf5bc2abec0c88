/**
 * Text from files someone else wrote, made safe to show on the terminal of a person asked to act on
 * it.
 */

/**
 * C0 and C1 controls (escapes, line breaks), and the Unicode marks that reorder or break lines
 * (bidirectional marks, embeddings, overrides and isolates, line and paragraph separators): any of
 * them can fake or hide part of a line.
 */
export const UNSAFE_TEXT =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function hasUnsafeText(text: string): boolean {
  return new RegExp(UNSAFE_TEXT.source).test(text);
}

/** Each unsafe character shown as \xNN or \u{NNNN}, so it is seen, not obeyed. */
export function printable(text: string): string {
  return text.replace(UNSAFE_TEXT, (c) => {
    const code = c.codePointAt(0) as number;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
