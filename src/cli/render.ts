/** Small renderers shared by the command outputs. */
import type { CheckValue, KeyClass } from '../core/keys.js';

export function checkValueText(cv: CheckValue): string {
  switch (cv.method) {
    case 'none':
      return '-';
    case 'aes-ecb-zero':
      return `KCV ${cv.value}`;
    case 'hmac-sha256':
      return `HMAC ${cv.value}`;
    case 'token':
      return `token ${cv.value}`;
    case 'spki-sha256':
      return `SPKI ${cv.value}`;
  }
}

export function yesNo(value: boolean, cls: KeyClass): string {
  return cls === 'public' ? '-' : value ? 'yes' : 'no';
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text from a file someone else wrote (a label, a matter, a name), made safe to print: control
 * characters, escapes and line breaks shown as \xNN, so nothing can fake or hide a line on the
 * terminal of the person asked to approve it.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** "1 key", "2 keys". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
