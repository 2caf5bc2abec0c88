/**
 * The custodial policy's handover section and the rules a request is judged by, without an HSM:
 * line-numbered refusals of bad policies, and each rule of evaluateRequest met and unmet, with
 * approvals signed by real Ed25519 keys made with node:crypto.
 */
import { describe, expect, test } from 'vitest';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { parsePolicy, type Policy } from '../../src/core/policy.js';
import {
  approvalSignedBytes,
  evaluateRequest,
  parseRequest,
  requestSignedBytes,
  serialiseRequest,
  type Approval,
  type CeremonyFacts,
  type RequestBody,
} from '../../src/core/handover.js';
import { verifyEd25519 } from '../../src/crypto/ed25519.js';
import { catchCustos, lineOf, RECIPIENTS } from './helpers.js';

const [R1, R2, R3] = RECIPIENTS;

function approverKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { line: spki.toString('base64'), raw: spki.subarray(12), privateKey };
}

const gc = approverKey();
const firmA = approverKey();
const firmB = approverKey();
const firmA2 = approverKey();

function policyText(handover: string, extraApprovers = ''): string {
  return `version: 1
threshold: 2
custodians:
  - id: firm-a
    organisation: Firm A
    recipient: ${R1}
    approver-key: ${firmA.line}
  - id: firm-b
    organisation: Firm B
    recipient: ${R2}
    approver-key: ${firmB.line}
  - id: firm-a-second
    organisation: Firm A
    recipient: ${R3}
    approver-key: ${firmA2.line}
approvers:
  - id: gc
    organisation: Bank
    role: general-counsel
    key: ${gc.line}
${extraApprovers}handover:
${handover}`;
}

const RULES = `  bases: [subpoena, court-order]
  approvals:
    - role: general-counsel
      count: 1
    - role: custodian
      count: 2
      organisations: 2
  notice: 72h
  quorum: 2
  recipients:
    min-rsa-bits: 3072
  max-keys: 2
  keys:
    exclude: ["root-*"]
`;

/**
 * Expects E_POLICY at the line of `marker` (the line the fault is on, found in the text itself).
 */
function policyError(text: string, marker: string, fragment: string): void {
  const err = catchCustos(() => parsePolicy('p.yaml', text), 'E_POLICY');
  expect(err.message).toMatch(new RegExp(`^p\\.yaml:${lineOf(text, marker)}: `));
  expect(err.message).toContain(fragment);
}

describe('the handover section of a policy', () => {
  test('reads approvers (custodians with approver keys count as role custodian) and every rule', () => {
    const p = parsePolicy('p.yaml', policyText(RULES));
    expect(p.approvers.map((a) => `${a.id}:${a.role}:${a.organisation}`)).toEqual([
      'firm-a:custodian:Firm A',
      'firm-b:custodian:Firm B',
      'firm-a-second:custodian:Firm A',
      'gc:general-counsel:Bank',
    ]);
    expect(p.approvers.find((a) => a.id === 'gc')?.key).toBe(gc.raw.toString('base64'));
    expect(p.handover).toMatchObject({
      bases: ['subpoena', 'court-order'],
      quorum: 2,
      maxKeys: 2,
      notice: { text: '72h', ms: 72 * 3_600_000 },
      recipients: { minRsaBits: 3072, allow: null },
    });
    expect(p.handover?.approvals).toEqual([
      { role: 'general-counsel', count: 1, organisations: 1 },
      { role: 'custodian', count: 2, organisations: 2 },
    ]);
    expect(p.handover?.keys).toEqual({ include: ['*'], exclude: ['root-*'] });
  });

  test('a policy without a handover section allows none', () => {
    expect(
      parsePolicy(
        'p.yaml',
        `threshold: 2\ncustodians:\n  - id: a\n    recipient: ${R1}\n  - id: b\n    recipient: ${R2}\n`,
      ).handover,
    ).toBeUndefined();
  });

  test('an approval rule for a role nobody has is refused at its line', () => {
    policyError(
      policyText(RULES.replace('role: general-counsel', 'role: ciso')),
      '- role: ciso',
      'no approver has the role "ciso"',
    );
  });

  test('a count above the number of approvers with the role is refused', () => {
    policyError(
      policyText(RULES.replace('count: 2\n      organisations', 'count: 4\n      organisations')),
      'count: 4',
      'between 1 and 3',
    );
  });

  test('more distinct organisations than the approvers of the role span is refused', () => {
    policyError(
      policyText(RULES.replace('organisations: 2', 'organisations: 3')),
      'organisations: 3',
      'between 1 and 2',
    );
  });

  test('a handover quorum below the backup threshold, or above the number of custodians, is refused', () => {
    policyError(
      policyText(RULES.replace('quorum: 2', 'quorum: 1')),
      'quorum: 1',
      'between 2 and 3',
    );
    policyError(
      policyText(RULES.replace('quorum: 2', 'quorum: 4')),
      'quorum: 4',
      'between 2 and 3',
    );
  });

  test('an approver who holds no share cannot take the custodian role', () => {
    const text = policyText(
      RULES,
      `  - id: partner\n    organisation: Firm C\n    role: custodian\n    key: ${approverKey().line}\n`,
    );
    const line = lineOf(text, '- id: partner') + 2;
    expect(catchCustos(() => parsePolicy('p.yaml', text), 'E_POLICY').message).toMatch(
      new RegExp(
        `^p\\.yaml:${line}: role "custodian" belongs to custodians .* approver "partner" holds none$`,
      ),
    );
  });

  test('no approval rule, two rules for one role, or an empty allow list are refused', () => {
    const empty = policyText(
      RULES.replace(/ {2}approvals:\n[\s\S]*? {2}notice/, '  approvals: []\n  notice'),
    );
    policyError(empty, 'approvals: []', 'handover.approvals is empty');
    const twice = policyText(
      RULES.replace('  notice: 72h', '    - role: general-counsel\n      count: 1\n  notice: 72h'),
    );
    const lines = twice.split('\n');
    const second =
      lines.findIndex(
        (l, i) =>
          i > lines.findIndex((x) => x.includes('- role: general-counsel')) &&
          l.includes('- role: general-counsel'),
      ) + 1;
    const err = catchCustos(() => parsePolicy('p.yaml', twice), 'E_POLICY');
    expect(err.message).toBe(
      `p.yaml:${second}: a second rule for role "general-counsel": put the count and organisations in one rule`,
    );
    policyError(
      policyText(RULES.replace('    min-rsa-bits: 3072', '    min-rsa-bits: 3072\n    allow: []')),
      'allow: []',
      'allow is empty',
    );
  });

  test('a malformed approver key, a bad notice and a too-small RSA minimum are refused at their lines', () => {
    policyError(
      policyText(RULES).replace(gc.line, 'not-a-key'),
      'not-a-key',
      'must be an Ed25519 public key',
    );
    policyError(
      policyText(RULES.replace('notice: 72h', 'notice: soon')),
      'notice: soon',
      'handover.notice must be hours or days',
    );
    policyError(
      policyText(RULES.replace('min-rsa-bits: 3072', 'min-rsa-bits: 1024')),
      'min-rsa-bits: 1024',
      'between 2048 and 16384',
    );
  });

  test('two approvers sharing one key are refused', () => {
    policyError(
      policyText(
        RULES,
        `  - id: deputy\n    organisation: Bank\n    role: general-counsel\n    key: ${firmA.line}\n`,
      ),
      '- id: deputy',
      'have the same key',
    );
  });

  test('an approver key for a custodian needs their organisation', () => {
    policyError(
      policyText(RULES).replace('    organisation: Firm B\n', ''),
      '- id: firm-b',
      'missing "organisation"',
    );
  });
});

// ---------------------------------------------------------------- evaluateRequest

const policy: Policy = parsePolicy('p.yaml', policyText(RULES));
const NOW = new Date('2026-12-10T12:00:00Z');

function body(over: Partial<RequestBody> = {}): RequestBody {
  return {
    requestId: '0'.repeat(32),
    created: '2026-12-01T00:00:00.000Z',
    requestedBy: 'ops',
    matter: 'M-1',
    authority: 'NY DFS',
    basis: 'subpoena',
    document: { name: 'subpoena.pdf', sha256: 'a'.repeat(64) },
    bundle: { file: 'b.bundle', bundleId: 'b'.repeat(32), bundleDigest: 'c'.repeat(64) },
    scope: [
      {
        class: 'secret',
        keyType: 'AES',
        label: 'payments',
        id: '01',
        checkValue: { method: 'aes-ecb-zero', value: 'abcdef' },
      },
    ],
    recipient: { spki: 'AAAA', sha256: 'd'.repeat(64), bits: 3072 },
    noticeGiven: '2026-12-01T00:00:00.000Z',
    policy: { name: 'p.yaml', sha256: 'e'.repeat(64), text: 'x' },
    ...over,
  };
}

function digestOf(b: RequestBody): string {
  return createHash('sha256').update(requestSignedBytes(b)).digest('hex');
}

function approval(
  b: RequestBody,
  who: { privateKey: ReturnType<typeof approverKey>['privateKey'] },
  approver: string,
  role: string,
): Approval {
  const a = { role, approver, time: '2026-12-02T00:00:00.000Z' };
  return {
    ...a,
    signature: sign(null, approvalSignedBytes(digestOf(b), a), who.privateKey).toString('base64'),
  };
}

function judge(
  b: RequestBody,
  approvals: Approval[],
  ceremony?: Partial<CeremonyFacts>,
  now = NOW,
) {
  const parsed = parseRequest('r', serialiseRequest(requestSignedBytes(b), approvals));
  const facts = ceremony
    ? {
        purpose: 'handover',
        request: digestOf(b),
        bundleId: b.bundle.bundleId,
        bundleDigest: b.bundle.bundleDigest,
        accepted: 2,
        expired: false,
        ...ceremony,
      }
    : undefined;
  const checks = evaluateRequest(
    parsed,
    policy,
    digestOf(b),
    verifyEd25519,
    now,
    (l) => !l.startsWith('root-'),
    facts,
    2,
  );
  return { checks, unmet: checks.filter((c) => !c.met).map((c) => c.rule) };
}

const ALL = (b: RequestBody) => [
  approval(b, gc, 'gc', 'general-counsel'),
  approval(b, firmA, 'firm-a', 'custodian'),
  approval(b, firmB, 'firm-b', 'custodian'),
];

describe('evaluateRequest: every rule', () => {
  test('a request with every approval, the notice elapsed and a bound ceremony at quorum meets every rule', () => {
    const b = body();
    expect(judge(b, ALL(b), {}).unmet).toEqual([]);
  });

  test('each missing piece is named, and only that one', () => {
    const b = body();
    const [g, a, f] = ALL(b);
    expect(judge(b, [a as Approval, f as Approval], {}).unmet).toEqual([
      'approvals: general-counsel',
    ]);
    expect(judge(b, ALL(b)).unmet).toEqual(['custodian quorum']);
    expect(judge(b, ALL(b), { accepted: 1 }).unmet).toEqual(['custodian quorum']);
    expect(judge(b, ALL(b), { request: 'f'.repeat(64) }).unmet).toEqual(['ceremony']);
    expect(judge(b, ALL(b), { purpose: 'restore' }).unmet).toEqual(['ceremony']);
    expect(judge(b, ALL(b), { bundleDigest: 'f'.repeat(64) }).unmet).toEqual(['ceremony']);
    expect(judge(b, ALL(b), { expired: true }).unmet).toEqual(['ceremony']);
    expect(judge(body({ basis: 'letter' }), ALL(body({ basis: 'letter' })), {}).unmet).toEqual([
      'legal basis',
    ]);
    expect(g).toBeDefined();
  });

  test('two custodian approvals from one organisation do not meet a two-organisation rule', () => {
    const b = body();
    const checks = judge(
      b,
      [
        approval(b, gc, 'gc', 'general-counsel'),
        approval(b, firmA, 'firm-a', 'custodian'),
        approval(b, firmA2, 'firm-a-second', 'custodian'),
      ],
      {},
    );
    expect(checks.unmet).toEqual(['approvals: custodian']);
    expect(checks.checks.find((c) => c.rule === 'approvals: custodian')?.detail).toContain(
      'from 1 of 2 distinct organisations',
    );
  });

  test('the same approver twice counts once', () => {
    const b = body();
    expect(
      judge(
        b,
        [
          approval(b, gc, 'gc', 'general-counsel'),
          approval(b, firmA, 'firm-a', 'custodian'),
          approval(b, firmA, 'firm-a', 'custodian'),
        ],
        {},
      ).unmet,
    ).toEqual(['approvals: custodian']);
  });

  test('the notice period counts from noticeGiven: one minute short is refused, and says how long is left', () => {
    const b = body({
      noticeGiven: new Date(NOW.getTime() - 72 * 3_600_000 + 60_000).toISOString(),
    });
    const { checks, unmet } = judge(b, ALL(b), {});
    expect(unmet).toEqual(['notice period']);
    expect(checks.find((c) => c.rule === 'notice period')?.detail).toContain('1 h still to run');
    const exact = body({ noticeGiven: new Date(NOW.getTime() - 72 * 3_600_000).toISOString() });
    expect(judge(exact, ALL(exact), {}).unmet).toEqual([]);
  });

  test('scope: too many keys, or a key the policy never allows, is refused', () => {
    const k = (label: string) => ({
      class: 'secret' as const,
      keyType: 'AES',
      label,
      id: '02',
      checkValue: { method: 'aes-ecb-zero' as const, value: '000000' },
    });
    const many = body({ scope: [k('a'), k('b'), k('c')] });
    expect(judge(many, ALL(many), {}).unmet).toEqual(['scope']);
    const root = body({ scope: [k('root-kek')] });
    expect(judge(root, ALL(root), {}).checks.find((c) => c.rule === 'scope')?.detail).toContain(
      'never allows handing over root-kek',
    );
  });

  test('a recipient key below the minimum size is refused', () => {
    const small = body({ recipient: { spki: 'AAAA', sha256: 'd'.repeat(64), bits: 2048 } });
    expect(judge(small, ALL(small), {}).unmet).toEqual(['recipient']);
  });

  test('approvals of a request changed afterwards no longer verify, each named', () => {
    const b = body();
    const approvals = ALL(b);
    const changed = body({ document: { name: 'subpoena.pdf', sha256: '9'.repeat(64) } });
    const { unmet } = judge(changed, approvals, {});
    expect(unmet).toEqual(
      expect.arrayContaining([
        'approval by gc',
        'approval by firm-a',
        'approval by firm-b',
        'approvals: general-counsel',
        'approvals: custodian',
      ]),
    );
    const wider = body({
      scope: [
        ...b.scope,
        {
          class: 'secret',
          keyType: 'AES',
          label: 'more',
          id: '03',
          checkValue: { method: 'aes-ecb-zero', value: '111111' },
        },
      ],
    });
    expect(judge(wider, approvals, {}).unmet).toContain('approval by gc');
  });

  test("an approval signed by a key that is not the approver's, or under another role, does not count", () => {
    const b = body();
    const forged = approval(b, firmB, 'gc', 'general-counsel');
    expect(judge(b, [forged, ...ALL(b).slice(1)], {}).unmet).toEqual([
      'approval by gc',
      'approvals: general-counsel',
    ]);
    const wrongRole = approval(b, firmA, 'firm-a', 'general-counsel');
    expect(judge(b, [wrongRole, ...ALL(b).slice(1)], {}).unmet).toEqual(
      expect.arrayContaining(['approval by firm-a', 'approvals: general-counsel']),
    );
  });
});

describe('parseRequest', () => {
  test('round-trips a request with approvals, and refuses a body edited by hand', () => {
    const b = body();
    const file = serialiseRequest(requestSignedBytes(b), ALL(b));
    const parsed = parseRequest('r', file);
    expect(parsed.body).toEqual(b);
    expect(parsed.approvals.map((a) => a.approver)).toEqual(['gc', 'firm-a', 'firm-b']);
    const reformatted = Buffer.from(file.toString('utf8').replace('\n "matter"', '\n  "matter"'));
    expect(
      catchCustos(() => parseRequest('r', reformatted), 'E_HANDOVER_FORMAT').message,
    ).toContain("not in custos's form");
    expect(
      catchCustos(() => parseRequest('r', file.subarray(0, file.length - 1)), 'E_HANDOVER_FORMAT')
        .message,
    ).toContain('truncated');
  });
});

describe('parseRequest: approval lines as custos writes them, times as toISOString writes them', () => {
  const b = body();
  const signed = requestSignedBytes(b);
  const [gcApproval] = ALL(b) as [Approval];
  const line = JSON.stringify({
    role: gcApproval.role,
    approver: gcApproval.approver,
    time: gcApproval.time,
    signature: gcApproval.signature,
  });
  const withLine = (value: string) =>
    Buffer.concat([signed, Buffer.from(`--- approval ${value}\n`, 'utf8')]);

  test('the line custos writes parses, and its approval counts', () => {
    const parsed = parseRequest('r', withLine(line));
    expect(parsed.approvals).toEqual([gcApproval]);
    expect(judge(b, [gcApproval], {}).unmet).not.toContain('approvals: general-counsel');
  });

  test('any other spelling of the same approval is refused: members added or reordered, spaces, escapes, a CR', () => {
    const sig = gcApproval.signature;
    for (const value of [
      JSON.stringify({ ...gcApproval, note: 'reviewed' }),
      JSON.stringify({
        approver: gcApproval.approver,
        role: gcApproval.role,
        time: gcApproval.time,
        signature: sig,
      }),
      line.replace(/","/g, '", "'),
      ` ${line}`,
      line.replace('"role":"general-counsel"', '"role":"\\u0067eneral-counsel"'),
      line.replace('"role":"general-counsel"', '"role":"general-counsel","role":"general-counsel"'),
      `${line}\r`,
    ]) {
      expect(
        catchCustos(() => parseRequest('r', withLine(value)), 'E_HANDOVER_FORMAT').message,
        value,
      ).toBe("r: approval 1 is not in custos's form (it was edited by hand)");
    }
  });

  test('the signature: canonical base64 of 64 bytes, nothing else', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    // 86 digits carry 516 bits for 512: the last digit's lowest bit is unused, so flipping it
    // spells the same bytes.
    const twin = `${gcApproval.signature.slice(0, 85)}${alphabet[alphabet.indexOf(gcApproval.signature[85] as string) ^ 1]}==`;
    expect(Buffer.from(twin, 'base64').equals(Buffer.from(gcApproval.signature, 'base64'))).toBe(
      true,
    );
    const raw = Buffer.from(gcApproval.signature, 'base64');
    for (const signature of [
      twin,
      gcApproval.signature.replace(/==$/, ''),
      raw.subarray(0, 63).toString('base64'),
      Buffer.concat([raw, raw.subarray(0, 1)]).toString('base64'),
      raw.toString('base64url'),
      '',
    ]) {
      expect(
        catchCustos(
          () => parseRequest('r', withLine(JSON.stringify({ ...gcApproval, signature }))),
          'E_HANDOVER_FORMAT',
        ).message,
        signature,
      ).toBe('r: approval 1.signature must be canonical base64 of an Ed25519 signature (64 bytes)');
    }
  });

  test('created and noticeGiven: only a UTC time as toISOString writes it, so no NaN reaches the notice period', () => {
    for (const t of ['2026-12-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z']) {
      expect(
        parseRequest(
          'r',
          serialiseRequest(requestSignedBytes(body({ noticeGiven: t, created: t })), []),
        ).body.noticeGiven,
      ).toBe(t);
    }
    for (const t of [
      'last Tuesday',
      '2026-12-01',
      '2026-12-01T00:00:00Z',
      '2026-12-01T01:00:00.000+01:00',
      '2026-11-31T00:00:00.000Z',
      '2026-12-01T24:00:00.000Z',
      '2026-12-01T00:00:00.000z',
    ]) {
      for (const key of ['created', 'noticeGiven'] as const) {
        const file = serialiseRequest(requestSignedBytes(body({ [key]: t })), []);
        expect(
          catchCustos(() => parseRequest('r', file), 'E_HANDOVER_FORMAT').message,
          `${key} ${t}`,
        ).toBe(
          `r: body.${key} must be a UTC time as custos writes it, e.g. 2026-12-02T09:48:24.411Z`,
        );
      }
    }
  });
});
