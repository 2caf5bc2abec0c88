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

/** The catalogue of error codes; docs/errors.md lists the same table. */
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
  E_CONFLICT: EXIT.conflict,
  E_VERIFY: EXIT.conflict,
  E_NO_TTY: EXIT.environment,
  E_CANCELLED: EXIT.cancelled,
  E_SETUP: EXIT.environment,
  E_AUDIT_WRITE: EXIT.environment,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

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
