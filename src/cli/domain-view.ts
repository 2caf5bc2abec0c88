/** How a domain and its shares read on a terminal: short lines, nothing over 80 columns. */
import type { DomainBody, Enrolment } from '../core/domain.js';
import { tokenName } from '../hsm/quirks.js';

export function domainSummary(
  path: string,
  body: DomainBody,
  enrolments: readonly Enrolment[],
): string[] {
  const seal =
    body.seal.type === 'age-x25519'
      ? 'age X25519'
      : 'age post-quantum hybrid (ML-KEM-768 + X25519)';
  return [
    `domain ${path}`,
    `  id          ${body.domainId}`,
    `  generation  ${body.generation}`,
    `  quorum      ${body.escrow.threshold} of ${body.escrow.total} custodians`,
    `  sealed with ${seal}`,
    // One token a line, so a domain with many source HSMs still fits the terminal.
    ...(enrolments.length ? enrolments : [undefined]).map(
      (e, i) =>
        `  ${i === 0 ? 'enrolled   ' : '           '} ${e ? `${tokenName(e.source)}` : 'no source HSM yet'}`,
    ),
  ];
}

export function shareLines(
  shares: readonly { custodian: string; index: number; path: string }[],
): string[] {
  const width = Math.max(...shares.map((s) => s.custodian.length));
  return shares.map((s) => `  ${s.custodian.padEnd(width)}  ${s.path}`);
}

/** The first fields of a domain command's JSON: the file written, the domain and its generation. */
export function domainJson(
  rel: (path: string) => string,
  r: { domainPath: string; body: Pick<DomainBody, 'domainId' | 'generation'> },
) {
  return { domain: rel(r.domainPath), domainId: r.body.domainId, generation: r.body.generation };
}
