/**
 * How every file that lists keys names one: its class, type, label and CKA_ID, read in that order
 * (so a body re-serialised from what was read keeps the order it was written in).
 */
import { HEX, type FieldReader } from './fields.js';

export interface KeyName {
  class: 'secret' | 'private';
  keyType: string;
  label: string;
  /** CKA_ID, hex. */
  id: string;
}

export function readKeyName(r: FieldReader, o: Record<string, unknown>, path: string): KeyName {
  return {
    class: r.literal(o, 'class', path, ['secret', 'private'] as const),
    keyType: r.string(o, 'keyType', path),
    label: r.string(o, 'label', path),
    id: r.string(o, 'id', path, HEX),
  };
}
