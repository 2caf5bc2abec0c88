/**
 * Typed errors: every failure a user can cause has a stable code, an exit status and a hint.
 * Messages never carry secrets; callers pass only names, paths and counts.
 */

export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  input: 3,
  integrity: 4,
  quorum: 5,
  hsm: 6,
  conflict: 7,
  environment: 8,
  cancelled: 130,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/**
 * Every error code and its exit status. docs/errors.md is generated from this and ERROR_CATALOGUE
 * (npm run errors-doc); test/unit/errors-doc.test.ts fails when the two disagree.
 */
export const ERROR_CODES = {
  E_INTERNAL: EXIT.internal,
  E_USAGE: EXIT.usage,
  E_CONFIG: EXIT.input,
  E_POLICY: EXIT.input,
  E_FILE: EXIT.input,
  E_EXISTS: EXIT.input,
  E_BUNDLE_FORMAT: EXIT.input,
  E_SHARE_FORMAT: EXIT.input,
  E_IDENTITY: EXIT.input,
  E_PIN_SOURCE: EXIT.input,
  E_DOMAIN: EXIT.input,
  E_DOMAIN_SUPERSEDED: EXIT.input,
  E_BUNDLE_TAMPERED: EXIT.integrity,
  E_BUNDLE_SIGNER: EXIT.integrity,
  E_DOMAIN_TAMPERED: EXIT.integrity,
  E_KEK_MISMATCH: EXIT.integrity,
  E_SHARE_REJECTED: EXIT.integrity,
  E_AUDIT_TAMPERED: EXIT.integrity,
  E_CEREMONY_FORMAT: EXIT.input,
  E_SUBMISSION_REJECTED: EXIT.integrity,
  E_CEREMONY: EXIT.input,
  E_HANDOVER_FORMAT: EXIT.input,
  E_HANDOVER_REFUSED: EXIT.quorum,
  E_PACKAGE_INVALID: EXIT.integrity,
  E_QUORUM: EXIT.quorum,
  E_HSM_MODULE: EXIT.hsm,
  E_TOKEN_NOT_FOUND: EXIT.hsm,
  E_TOKEN_EXISTS: EXIT.hsm,
  E_PIN_INCORRECT: EXIT.hsm,
  E_PIN_LOCKED: EXIT.hsm,
  E_MECHANISM: EXIT.hsm,
  E_HSM: EXIT.hsm,
  E_CUSTODIAN_KEY: EXIT.hsm,
  E_CONFLICT: EXIT.conflict,
  E_VERIFY: EXIT.conflict,
  E_NO_TTY: EXIT.environment,
  E_CANCELLED: EXIT.cancelled,
  E_SETUP: EXIT.environment,
  E_BUSY: EXIT.environment,
  E_AUDIT_WRITE: EXIT.environment,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * What a code means and what to do about it, one plain line each: for an operator, not a parser.
 */
export interface ErrorEntry {
  /** What happened, without quoting any message (messages change; the code does not). */
  readonly meaning: string;
  /** The next step, in plain words. */
  readonly action: string;
}

/**
 * One entry per code: a code missing here, or an entry for a code that does not exist, fails to
 * compile. docs/errors.md is generated from it; keep each text to one line and quote no message.
 */
export const ERROR_CATALOGUE: Readonly<Record<ErrorCode, ErrorEntry>> = {
  E_INTERNAL: {
    meaning: 'An unexpected failure: a defect in custos, not your mistake.',
    action: 'Run again with CUSTOS_DEBUG=1 set; report the output, secrets removed.',
  },
  E_USAGE: {
    meaning: 'The command cannot be carried out as given. Nothing was changed.',
    action: 'Correct the command as the hint says (custos COMMAND --help).',
  },
  E_CONFIG: {
    meaning: 'custos.yaml (or the --config file) is invalid; every command stops.',
    action: 'Fix the line named (docs/configuration.md). Never put a PIN in it.',
  },
  E_POLICY: {
    meaning: 'The policy file is invalid, a recipient is mistyped, or no handover is allowed.',
    action: 'Fix the line named; custos policy check tests a policy.',
  },
  E_FILE: {
    meaning: 'A file cannot be read, or an output cannot be written.',
    action: 'Check the path, permissions and free space. A failed write left nothing.',
  },
  E_EXISTS: {
    meaning:
      'An output file already exists, or appeared while custos ran; custos never overwrites. Nothing was written.',
    action: 'Choose a new output path, or move the old files away.',
  },
  E_BUNDLE_FORMAT: {
    meaning: 'The bundle is not a readable custos bundle (wrong, truncated or malformed).',
    action: 'Use an intact copy (docs/bundle-format.md).',
  },
  E_SHARE_FORMAT: {
    meaning: "A share's contents are not a valid custos share (usually shown as a rejected share).",
    action: 'Ask the custodian for their own copy.',
  },
  E_IDENTITY: {
    meaning: 'An identity file or key cannot be used: wrong file, damaged, wrong passphrase.',
    action: 'Pass the file age-keygen made for your role; clear any pasted key from shell history.',
  },
  E_PIN_SOURCE: {
    meaning: 'The PIN cannot be read from its source, or its escrow is void or for another token.',
    action:
      "Fix the profile's pin: source (escrow: the newest escrow for this token), or name the escrowed token.",
  },
  E_DOMAIN: {
    meaning:
      'A domain file is malformed or not a custos domain, or the token is not enrolled in it.',
    action: 'Use the file domain init or rotate wrote; enrol with custos domain enroll.',
  },
  E_DOMAIN_SUPERSEDED: {
    meaning: 'A rotation replaced this domain file with the newer one the error names.',
    action: 'Run again with --domain set to the newer file.',
  },
  E_BUNDLE_TAMPERED: {
    meaning: 'The bundle was changed since the backup. Nothing was written.',
    action: 'Restore from another copy; keep this one as evidence.',
  },
  E_BUNDLE_SIGNER: {
    meaning:
      'A domain bundle is unsigned or signed by a key the domain does not list: possibly forged. Nothing was written.',
    action: 'Do not use it. Restore an intact copy; keep this one as evidence.',
  },
  E_DOMAIN_TAMPERED: {
    meaning: 'A signature in the domain file does not verify: it was changed.',
    action: 'Use an intact copy from whoever keeps the domain.',
  },
  E_KEK_MISMATCH: {
    meaning: 'Authentic shares do not rebuild the key the bundle or domain expects.',
    action: 'Check shares and bundle belong together; if so, keep everything and report it.',
  },
  E_SHARE_REJECTED: {
    meaning: "A share was refused: not opened by the identity, another backup's, or damaged.",
    action: 'Use your own identity; otherwise keep the file and tell the ceremony lead.',
  },
  E_AUDIT_TAMPERED: {
    meaning: 'audit verify found the audit log changed after it was written.',
    action: 'Keep it as evidence, compare with other copies, then move it aside.',
  },
  E_CEREMONY_FORMAT: {
    meaning: 'A ceremony file is damaged, of another version, or edited.',
    action: 'Ask the lead to send it again; compare its digest by phone.',
  },
  E_SUBMISSION_REJECTED: {
    meaning: 'ceremony add rejected some submissions; the accepted ones are kept.',
    action: 'Ask each custodian named to submit again with the right share.',
  },
  E_CEREMONY: {
    meaning: 'The ceremony cannot go on here: expired, closed, opened elsewhere, changed, or busy.',
    action: 'Follow the hint. If a killed run holds it, look for its output; never just rerun it.',
  },
  E_HANDOVER_FORMAT: {
    meaning: 'A handover request is damaged or was edited.',
    action: 'Do not approve or execute it; get the request as made.',
  },
  E_HANDOVER_REFUSED: {
    meaning: "A handover rule is not met, or a file is not the request's. Nothing was released.",
    action: "Meet each rule listed (custos handover status), or use the request's files.",
  },
  E_PACKAGE_INVALID: {
    meaning: 'A handover package is changed, or not what it claims.',
    action: 'Do not use it or its keys; ask the institution for the original.',
  },
  E_QUORUM: {
    meaning: 'Too few valid shares or submissions to meet the quorum. Nothing was written.',
    action:
      'Fix what the rejected lines name, or bring more custodians; run again with all shares.',
  },
  E_HSM_MODULE: {
    meaning: 'The PKCS#11 module in custos.yaml is missing or cannot be loaded.',
    action: 'Fix module: in custos.yaml (SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so).',
  },
  E_TOKEN_NOT_FOUND: {
    meaning: 'No profile or token matches the name, or several tokens share the label.',
    action: 'Check the profile and token label, or create one with custos hsm init.',
  },
  E_TOKEN_EXISTS: {
    meaning: 'The embedded store already has a token with that label.',
    action: 'Pick another label, or use that token.',
  },
  E_PIN_INCORRECT: {
    meaning: 'The token refused the PIN (an escrowed one: perhaps from an older escrow).',
    action: 'Check the PIN source before retrying: wrong tries lock the token.',
  },
  E_PIN_LOCKED: {
    meaning: "The token's PIN is locked after too many wrong tries.",
    action: 'The security officer resets the user PIN (vendor tools, or custos escrow-pin).',
  },
  E_MECHANISM: {
    meaning:
      'A token lacks a mechanism or PKCS#11 function custos needs (AES key wrap with padding, RSA-OAEP).',
    action: 'Use a token, firmware or HSM policy that offers what the hint names.',
  },
  E_HSM: {
    meaning:
      'The token refused or failed an operation (PKCS#11 code given). A restore or copy removed what it made.',
    action:
      'Usual causes: a key that may not be wrapped, attributes the token refuses, a full or read-only token.',
  },
  E_CUSTODIAN_KEY: {
    meaning:
      'custodian enroll refused a token key: it can be exported, read, used without the PIN, or do more than decrypt.',
    action: 'Give a new --label so custos makes a decrypt-only RSA-3072 key on the token.',
  },
  E_CONFLICT: {
    meaning:
      'The target holds objects with the same class, label and id that custos cannot prove identical. Nothing was written.',
    action: 'Restore into an empty token, or remove or relabel the listed objects.',
  },
  E_VERIFY: {
    meaning: 'A check after the work failed: a restored key, new shares, a new PIN or a signature.',
    action: 'Read the hint for what was kept; keep the output and report it.',
  },
  E_NO_TTY: {
    meaning: 'custos had to ask for a PIN, passphrase or confirmation without a terminal.',
    action:
      'Answer another way, as the hint says (pin: env: or file:, CUSTOS_PIN, CUSTOS_PASSPHRASE, --yes).',
  },
  E_CANCELLED: {
    meaning: 'Stopped at a prompt before anything changed.',
    action: 'Run the command again when ready.',
  },
  E_SETUP: {
    meaning: 'The embedded HSM needs SoftHSM2, which is not installed.',
    action: 'apt-get install softhsm2, or name a PKCS#11 module in custos.yaml.',
  },
  E_BUSY: {
    meaning: 'Another custos run is writing to the same token. Nothing was written.',
    action: 'Wait for it and run again; the error names it, and how to clear a crashed one.',
  },
  E_AUDIT_WRITE: {
    meaning: 'The operation was done, but its audit entry could not be appended.',
    action: 'Do not run it again: record by hand that it ran, then fix the log.',
  },
};

export class CustosError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Extra lines shown before the hint, e.g. one per rejected share. */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, hint?: string, details: readonly string[] = []) {
    super(message);
    this.name = 'CustosError';
    this.code = code;
    this.hint = hint;
    this.details = details;
  }

  get exitStatus(): ExitStatus {
    return ERROR_CODES[this.code];
  }
}

export function isCustosError(e: unknown): e is CustosError {
  return e instanceof CustosError;
}
