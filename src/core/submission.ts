/**
 * The submission, `custos-submission/1` (docs/ceremony-format.md): a custodian's share, sealed
 * with age to one ceremony's recipient. The clear header says which ceremony and custodian it is
 * for; the sealed payload repeats both with the share, so an edited header or a submission
 * replayed into another ceremony is caught.
 */
import { CustosError } from './errors.js';
import { NONCE } from './ceremony.js';
import { CUSTODIAN_ID, CUSTODIAN_RECIPIENT } from './policy.js';

export const SUBMISSION_FORMAT = 'custos-submission/1';
const PAYLOAD_FORMAT = 'custos-submission-payload/1';

export interface SubmissionHeader {
  ceremony: string;
  ceremonyDigest: string;
  custodian: string;
  submitted: string;
}

export interface SubmissionPayload extends SubmissionHeader {
  /** The age recipient of the identity that opened the share on the custodian's machine. */
  openedWith: string;
  /** The signed `custos-share/1` document, verbatim. */
  share: string;
}

const HEADER_FIELDS = ['ceremony', 'ceremony-digest', 'custodian', 'submitted'] as const;

function headerLines(h: SubmissionHeader): string {
  const values = [h.ceremony, h.ceremonyDigest, h.custodian, h.submitted];
  return HEADER_FIELDS.map((f, i) => `${f}: ${values[i]}\n`).join('');
}

export function payloadText(p: SubmissionPayload): string {
  return `${PAYLOAD_FORMAT}\n${headerLines(p)}opened-with: ${p.openedWith}\n${p.share}`;
}

export function serialiseSubmission(h: SubmissionHeader, sealed: string): string {
  return `${SUBMISSION_FORMAT}\n${headerLines(h)}${sealed.endsWith('\n') ? sealed : `${sealed}\n`}`;
}

function bad(where: string, problem: string): CustosError {
  return new CustosError(
    'E_SUBMISSION_REJECTED',
    `${where}: ${problem}`,
    'ask the custodian to make the submission again with custos share submit',
  );
}

function readHeader(where: string, lines: string[], from: number): SubmissionHeader {
  const values = HEADER_FIELDS.map((field, i) => {
    const line = lines[from + i] ?? '';
    if (!line.startsWith(`${field}: `))
      throw bad(where, `line ${from + i + 1} should be "${field}: …"`);
    return line.slice(field.length + 2);
  });
  const [ceremony, ceremonyDigest, custodian, submitted] = values as [
    string,
    string,
    string,
    string,
  ];
  if (!NONCE.test(ceremony)) throw bad(where, '"ceremony" is not a ceremony nonce');
  if (!/^[0-9a-f]{64}$/.test(ceremonyDigest))
    throw bad(where, '"ceremony-digest" is not a SHA-256 digest');
  if (!CUSTODIAN_ID.test(custodian)) throw bad(where, '"custodian" is not a custodian id');
  if (Number.isNaN(Date.parse(submitted))) throw bad(where, '"submitted" is not a time');
  return { ceremony, ceremonyDigest, custodian, submitted };
}

/** The clear header and the sealed (age-armored) payload. */
export function parseSubmission(
  where: string,
  text: string,
): { header: SubmissionHeader; sealed: string } {
  const lines = text.split('\n');
  if (lines[0] !== SUBMISSION_FORMAT) throw bad(where, 'not a custos submission');
  const header = readHeader(where, lines, 1);
  const sealed = lines.slice(1 + HEADER_FIELDS.length).join('\n');
  if (!sealed.startsWith('-----BEGIN AGE ENCRYPTED FILE-----'))
    throw bad(where, 'the sealed share is missing');
  return { header, sealed };
}

export function parsePayload(where: string, text: string): SubmissionPayload {
  const lines = text.split('\n');
  if (lines[0] !== PAYLOAD_FORMAT) throw bad(where, 'the sealed part is not a submission payload');
  const header = readHeader(where, lines, 1);
  const opened = lines[1 + HEADER_FIELDS.length] ?? '';
  if (!opened.startsWith('opened-with: ') || !CUSTODIAN_RECIPIENT.test(opened.slice(13)))
    throw bad(where, 'the sealed part names no custodian key');
  return {
    ...header,
    openedWith: opened.slice(13),
    share: lines.slice(2 + HEADER_FIELDS.length).join('\n'),
  };
}

export function sameHeader(a: SubmissionHeader, b: SubmissionHeader): boolean {
  return (
    a.ceremony === b.ceremony &&
    a.ceremonyDigest === b.ceremonyDigest &&
    a.custodian === b.custodian &&
    a.submitted === b.submitted
  );
}
