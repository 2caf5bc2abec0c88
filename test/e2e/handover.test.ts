/**
 * Handover under legal process, end to end against a real SoftHSM2 token: a custodial policy
 * (three firms, one of them with two partners holding shares, any two restore; general counsel
 * and two custodians from two different firms approve; 72h notice; quorum 2; RSA-3072 recipients
 * on an allow list; at most 5 keys; root-* never), backup, request,
 * approvals, a handover ceremony with sealed submissions, execute, and the package opened by the
 * recipient with the openssl CLI alone. Every rule of the policy is broken once and must be named
 * in a refusal that writes nothing. A request edited after approval is caught. The shipped dfs
 * policy is run with the fixture keys. The audit log is checked for its entries and for secrets.
 *
 * Outside oracles: openssl (recipient key, approver keys, OAEP decrypt, AES-KWP unwrap, KCV, HMAC,
 * signatures, SHA-256 of the recipient SPKI), pkcs11-tool (the source HSM's own KCVs, HMAC and
 * public keys), age (share files), node:crypto (Ed25519 signatures of hand-made approval lines).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, createPrivateKey, sign } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { processStart } from '../../src/io/lock.js';
import {
  ROOT,
  TIMEOUT,
  tokenAesKcv,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  ed25519VerifyArgs,
  exists,
  expectNoSecrets,
  expectOk,
  expectUserError,
  findLeaks,
  initToken,
  json,
  makeCustodians,
  makeKey,
  modeOf,
  mustRun,
  openShare,
  opensslUnwrap,
  p11,
  profileFor,
  publicKeyDer,
  publicKeyPem,
  snapshot,
  workspace,
  writeConfig,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const REQUEST_HEADER = 'custos-handover-request/1';
const APPROVAL_PREFIX = '--- approval ';
const HOST_LOG = join('.custos', 'audit.jsonl');
const CUSTODIAN_LOG = 'custodian-side-audit.jsonl';
const MATTER = 'SEC-2026-0417';
const AUTHORITY = 'US District Court, S.D.N.Y.';
/** Notice given 80 hours ago: the policy's 72 hours have run. */
const PAST = new Date(Date.now() - 80 * 3_600_000).toISOString();
const SCOPE = ['aes-key', 'hmac-key', 'rsa-key', 'ec-key'];
const OUT_OF_SCOPE = ['other-key', 'extra-key', 'root-kek'];

let ws: Workspace;
let vault: TokenRef;
let custodians: Custodian[];
const profiles: Profile[] = [];

interface Approver {
  id: string;
  pem: string;
  pub: string;
}
const approvers: Record<string, Approver> = {};
interface Rsa {
  key: string;
  pub: string;
  sha: string;
  modulusBytes: number;
}
let r3072: Rsa;
let other3072: Rsa;
let r2048: Rsa;

/**
 * Every key material value the recipient unwrapped, and the ephemeral AES keys: must appear
 * nowhere.
 */
const keyMaterial = new Set<string>();

// ---------------------------------------------------------------- small tools

function plainEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir, LANG: 'C.UTF-8' };
}

function sh(cmd: string, args: string[], input?: Buffer | string): Buffer {
  return mustRun(cmd, args, { env: plainEnv(), cwd: ws.dir, input });
}

function run(args: string[], env: Record<string, string | undefined> = {}): Run {
  return custos(ws, args, { cwd: ws.dir, env });
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const path = (p: string) => join(ws.dir, p);

function makeApprover(id: string): Approver {
  const pem = path(`approvers/${id}.pem`);
  sh('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', pem]);
  const pub = sh('openssl', ['pkey', '-in', pem, '-pubout']).toString().split('\n')[1] as string;
  ws.secrets.add(readFileSync(pem, 'utf8').split('\n')[1] as string);
  const a = { id, pem, pub };
  approvers[id] = a;
  return a;
}

function makeRsa(name: string, bits: number): Rsa {
  const key = path(`recipient/${name}.key`);
  const pub = path(`recipient/${name}.pub`);
  sh('openssl', [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    `rsa_keygen_bits:${bits}`,
    '-out',
    key,
  ]);
  sh('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
  const der = sh('openssl', ['pkey', '-pubin', '-in', pub, '-outform', 'DER']);
  const sha = (
    /^([0-9a-f]{64})/.exec(
      sh('openssl', ['dgst', '-sha256', '-r'], der).toString(),
    ) as RegExpExecArray
  )[1] as string;
  const modulus = (
    /Modulus=([0-9A-F]+)/.exec(
      sh('openssl', ['rsa', '-in', key, '-noout', '-modulus']).toString(),
    ) as RegExpExecArray
  )[1] as string;
  return { key, pub, sha, modulusBytes: modulus.length / 2 };
}

/** AES(key, 0^128) computed by the source HSM (pkcs11-tool), first 3 bytes. */
function hsmKcv(id: string): string {
  return tokenAesKcv(ws, vault, id);
}

function auditLines(file = HOST_LOG): any[] {
  const p = path(file);
  if (!exists(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

/** The workspace without the audit logs, which a refusal is expected to append to. */
function quietSnapshot(): Record<string, string> {
  const s = snapshot(ws.dir);
  delete s[HOST_LOG];
  delete s[CUSTODIAN_LOG];
  return s;
}

/**
 * A refusal: the exit status, the error code and message, nothing written anywhere in the
 * workspace (tokens, request, ceremony state, scratch dir, package), and one audit entry that
 * records the refusal.
 */
function expectRefusal(
  args: string[],
  status: number,
  op: string,
  code: string,
  ...patterns: RegExp[]
): Run {
  const before = quietSnapshot();
  const logBefore = auditLines().length;
  const r = run(args);
  expectUserError(r, status, new RegExp(`\\[${code}\\]`), ...patterns);
  expect(quietSnapshot(), describeRun(r)).toEqual(before);
  const log = auditLines();
  expect(log.length, describeRun(r)).toBe(logBefore + 1);
  expect(log.at(-1), describeRun(r)).toMatchObject({ op, code });
  // a policy refusal is a refusal (docs/audit-log.md: declined), not a failure
  if (code === 'E_HANDOVER_REFUSED') expect(log.at(-1).outcome).toBe('refused');
  else expect(['refused', 'failed']).toContain(log.at(-1).outcome);
  return r;
}

/** handover execute is refused by the policy (exit 5), naming exactly these rules. */
function expectExecuteRefused(args: string[], rules: Record<string, RegExp>): Run {
  const n = Object.keys(rules).length;
  const count = new RegExp(`${n} ${n === 1 ? 'rule is' : 'rules are'} not met`);
  const r = expectRefusal(args, 5, 'handover-execute', 'E_HANDOVER_REFUSED', count);
  expectRules(r, rules);
  return r;
}

/** The rule lines (`custos:   RULE: DETAIL`) of a refusal. */
function ruleLines(r: Run): string[] {
  return r.stderr
    .split('\n')
    .filter((l) => l.startsWith('custos:   '))
    .map((l) => l.slice('custos:   '.length));
}

/** The refusal names exactly these rules, each with a detail matching its pattern. */
function expectRules(r: Run, rules: Record<string, RegExp>): void {
  const lines = ruleLines(r);
  expect(lines, describeRun(r)).toHaveLength(Object.keys(rules).length);
  for (const [rule, detail] of Object.entries(rules)) {
    const line = lines.find((l) => l.startsWith(`${rule}: `));
    expect(line, `${rule} in\n${describeRun(r)}`).toBeDefined();
    expect((line as string).slice(rule.length + 2)).toMatch(detail);
  }
}

function requestArgs(
  out: string,
  o: {
    basis?: string;
    keys?: string[];
    recipient?: string;
    notice?: string | null;
    document?: string;
    policy?: string;
    bundle?: string;
  } = {},
): string[] {
  return [
    'handover',
    'request',
    '--bundle',
    o.bundle ?? 'vault.bundle',
    '--policy',
    o.policy ?? 'policy.yaml',
    '--matter',
    MATTER,
    '--authority',
    AUTHORITY,
    '--basis',
    o.basis ?? 'subpoena',
    '--document',
    o.document ?? 'subpoena.pdf',
    '--keys',
    ...(o.keys ?? SCOPE),
    '--recipient',
    o.recipient ?? r3072.pub,
    '--out',
    out,
    ...(o.notice === null ? [] : ['--notice-given', o.notice ?? PAST]),
  ];
}

/** `handover execute` of a request through a ceremony, into a package. */
function executeArgs(
  req: string,
  out: string,
  ceremony = 'handover.ceremony',
  extra: string[] = [],
): string[] {
  return ['handover', 'execute', req, '--ceremony', ceremony, '--out', out, ...extra];
}

/** `handover approve` of a request in a role, with the approver's key. */
function approveArgs(req: string, id: string, role: string, extra: string[] = []): string[] {
  return [
    'handover',
    'approve',
    req,
    '--as',
    role,
    '--key',
    (approvers[id] as Approver).pem,
    ...extra,
  ];
}

function approve(req: string, id: string, role: string, extra: string[] = []): Run {
  return expectOk(run(approveArgs(req, id, role, extra)));
}

/** Opens a handover ceremony; registers its host secrets (which must never appear anywhere). */
function openCeremony(req: string, out: string, bundle = 'vault.bundle'): string {
  expectOk(
    run([
      'ceremony',
      'open',
      '--bundle',
      bundle,
      '--purpose',
      'handover',
      '--request',
      req,
      '--out',
      out,
    ]),
  );
  const nonce = (
    /"nonce": "([0-9a-f]{32})"/.exec(readFileSync(path(out), 'utf8')) as RegExpExecArray
  )[1] as string;
  const hostKey = readFileSync(path(`.custos/ceremonies/${nonce}/host.key`), 'utf8');
  for (const l of hostKey.split('\n')) {
    if (l.startsWith('AGE-SECRET-KEY-')) ws.secrets.add(l);
    if (l.startsWith('ed25519-pkcs8: ')) ws.secrets.add(l.slice(15));
  }
  return nonce;
}

/** A custodian, on their own machine (their own audit log), seals their share for the ceremony. */
function submit(ceremony: string, share: string, identity: string, out: string): string {
  mkdirSync(path('submissions'), { recursive: true });
  expectOk(
    run(
      [
        'share',
        'submit',
        '--ceremony',
        ceremony,
        '--share',
        share,
        '--identity',
        identity,
        '--out',
        `submissions/${out}`,
        '--yes',
      ],
      { CUSTOS_AUDIT_LOG: path(CUSTODIAN_LOG) },
    ),
  );
  return `submissions/${out}`;
}

function custodian(id: string): Custodian {
  return custodians.find((c) => c.id === id) as Custodian;
}

/** A request file read independently: header + body (the signed part) and the approval lines. */
function readRequest(file: string): { head: string; body: any; approvals: string[] } {
  const text = readFileSync(path(file), 'utf8');
  expect(text.startsWith(`${REQUEST_HEADER}\n`)).toBe(true);
  const at = text.indexOf(`\n${APPROVAL_PREFIX}`);
  const head = at < 0 ? text : text.slice(0, at + 1);
  const approvals = text
    .slice(head.length)
    .split('\n')
    .filter((l) => l !== '');
  return { head, body: JSON.parse(head.slice(REQUEST_HEADER.length + 1)), approvals };
}

/**
 * Re-serialises a request exactly as custos does: header line, JSON.stringify(body, null, 1), then
 * the approval lines.
 */
function writeRequest(file: string, body: any, approvals: string[]): void {
  writeFileSync(
    path(file),
    `${REQUEST_HEADER}\n${JSON.stringify(body, null, 1)}\n${approvals.map((l) => `${l}\n`).join('')}`,
  );
}

function approvalOf(lines: string[], approver: string): string {
  const line = lines.find((l) => JSON.parse(l.slice(APPROVAL_PREFIX.length)).approver === approver);
  expect(line, `approval by ${approver}`).toBeDefined();
  return line as string;
}

/**
 * An approval line made here with node:crypto: Ed25519 over the approval statement for the
 * request's digest.
 */
function craftApproval(head: string, role: string, approver: string, keyPem: string): string {
  const time = new Date().toISOString();
  const statement = `custos-handover-approval/1\nrequest: ${sha256(head)}\nrole: ${role}\napprover: ${approver}\ntime: ${time}\n`;
  const signature = sign(
    null,
    Buffer.from(statement, 'utf8'),
    createPrivateKey(readFileSync(keyPem)),
  ).toString('base64');
  return `${APPROVAL_PREFIX}${JSON.stringify({ role, approver, time, signature })}`;
}

function unmetRules(req: string, ceremony?: string): string[] {
  const s = json(
    run(['handover', 'status', req, ...(ceremony ? ['--ceremony', ceremony] : []), '--json']),
  );
  return s.rules
    .filter((x: { met: boolean }) => !x.met)
    .map((x: { rule: string }) => x.rule)
    .sort();
}

function packageBody(file: string): any {
  const text = readFileSync(path(file), 'utf8');
  expect(text.split('\n')[0]).toBe('custos-handover/1');
  return JSON.parse(text.slice(text.indexOf('\n') + 1, text.lastIndexOf('\n--- ed25519 ') + 1));
}

interface Unwrapped {
  label: string;
  bytes: Buffer;
  ephemeral: Buffer;
}

/**
 * The recipient's side, with the openssl CLI only: split each blob at the modulus length,
 * RSA-OAEP-decrypt the ephemeral AES key, AES-KWP-unwrap the key.
 */
function recipientUnwrap(pkg: string, rsa: Rsa, dir: string): Unwrapped[] {
  const body = packageBody(pkg);
  const md = body.oaep.hash === 'SHA-256' ? 'sha256' : 'sha1';
  expect(['SHA-1', 'SHA-256']).toContain(body.oaep.hash);
  mkdirSync(path(dir), { recursive: true });
  return body.keys.map((k: { label: string; wrapped: string }) => {
    const blob = Buffer.from(k.wrapped, 'base64');
    expect(blob.length).toBeGreaterThan(rsa.modulusBytes);
    const { ephemeral, bytes } = opensslUnwrap(ws, blob, rsa, md, path(`${dir}/${k.label}`));
    for (const b of [bytes, ephemeral]) {
      keyMaterial.add(b.toString('hex'));
      keyMaterial.add(b.toString('base64'));
    }
    return { label: k.label, bytes, ephemeral };
  });
}

// ---------------------------------------------------------------- the world

let mainPolicyText: string;

beforeAll(() => {
  ws = workspace('handover');
  // custos's scratch token goes under TMPDIR: keep it inside the workspace, where snapshots see it
  mkdirSync(path('tmp'), { mode: 0o700 });
  ws.env.TMPDIR = path('tmp');
  ws.env.CUSTOS_ACTOR = 'ceremony-lead';
  mkdirSync(path('approvers'));
  mkdirSync(path('recipient'));

  vault = initToken(ws, 'vault');
  makeKey(ws, vault, { kind: 'aes', label: 'aes-key', id: '01' });
  makeKey(ws, vault, { kind: 'generic', label: 'hmac-key', id: '02' });
  makeKey(ws, vault, { kind: 'rsa', label: 'rsa-key', id: '03' });
  makeKey(ws, vault, { kind: 'ec', label: 'ec-key', id: '04' });
  makeKey(ws, vault, { kind: 'aes', label: 'root-kek', id: '05' });
  makeKey(ws, vault, { kind: 'aes', label: 'other-key', id: '06' });
  makeKey(ws, vault, { kind: 'aes', label: 'extra-key', id: '07' });
  profileFor(ws, profiles, vault, 'vault');
  writeConfig(ws, profiles);

  // three firms; Hale LLP has two partners who each hold a share (two custodians, one organisation)
  custodians = makeCustodians(ws, ['hale', 'hale-partner', 'okafor', 'lind']);
  for (const id of ['gc', 'hale', 'okafor', 'lind', 'hale-partner', 'rogue']) makeApprover(id);
  r3072 = makeRsa('r', 3072);
  other3072 = makeRsa('other', 3072);
  r2048 = makeRsa('small', 2048);
  writeFileSync(path('subpoena.pdf'), `%PDF-1.4 subpoena duces tecum, matter ${MATTER}\n`);
  writeFileSync(path('other.pdf'), `%PDF-1.4 a different document, matter ${MATTER}\n`);

  const orgs: Record<string, string> = {
    hale: 'Hale LLP',
    'hale-partner': 'Hale LLP',
    okafor: 'Okafor Law Group',
    lind: 'Lindqvist Advokatbyra',
  };
  const names: Record<string, string> = {
    hale: 'Hale LLP',
    'hale-partner': 'Hale LLP (second partner)',
    okafor: 'Okafor Law Group',
    lind: 'Lindqvist Advokatbyra',
  };
  mainPolicyText = [
    '# custodial test policy: three firms, any two restore; handover under legal process only',
    'version: 1',
    'name: three-firms',
    'threshold: 2',
    'custodians:',
    ...custodians.flatMap((c) => [
      `  - id: ${c.id}`,
      `    name: ${JSON.stringify(names[c.id])}`,
      `    organisation: ${JSON.stringify(orgs[c.id])}`,
      `    recipient: ${c.recipient}`,
      `    approver-key: ${(approvers[c.id] as Approver).pub}`,
    ]),
    'approvers:',
    '  - id: gc',
    '    name: General Counsel, Example Bank',
    '    organisation: Example Bank',
    '    role: general-counsel',
    `    key: ${(approvers.gc as Approver).pub}`,
    'keys:',
    '  include: ["*"]',
    'handover:',
    '  bases: [subpoena, court-order]',
    '  approvals:',
    '    - role: general-counsel',
    '      count: 1',
    '    - role: custodian',
    '      count: 2',
    '      organisations: 2',
    '  notice: 72h',
    '  quorum: 2',
    '  recipients:',
    '    min-rsa-bits: 3072',
    `    allow: [${r3072.sha}]`,
    '  max-keys: 5',
    '  keys:',
    '    include: ["*"]',
    '    exclude: ["root-*"]',
    '',
  ].join('\n');
  writeFileSync(path('policy.yaml'), mainPolicyText);
  expectOk(run(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'vault.bundle']));
  // The KEK, reassembled outside custos (age CLI + secrets.js), so no output may ever show it.
  const kek = combineKek(
    ws,
    ['hale', 'okafor'].map((id) =>
      openShare(ws, path(`vault.bundle.shares/${id}.share`), custodian(id).identity),
    ),
  );
  expect(aesKcv(kek)).toBe(bundleBody(path('vault.bundle')).kek.kcv);
});

afterAll(() => cleanup(ws));

// ---------------------------------------------------------------- policy files

describe('policy check', () => {
  it('the shipped policies pass, and the dfs approver keys are the public halves of the fixture approver keys (openssl)', () => {
    const dfs = json(run(['policy', 'check', join(ROOT, 'policies/dfs-custodial.yaml'), '--json']));
    const dr = json(run(['policy', 'check', join(ROOT, 'policies/dr-3-of-5.yaml'), '--json']));
    expect(dr.threshold).toBe(3);
    expect(dr.custodians.map((c: { id: string }) => c.id)).toEqual([
      'hale-llp',
      'okafor-law',
      'lindqvist',
      'dr-lead',
      'ciso',
    ]);
    expect(dr.handover).toBeNull();
    expect(dfs.threshold).toBe(2);
    expect(dfs.handover).toMatchObject({
      bases: ['subpoena', 'court-order', 'regulatory-demand'],
      notice: '72h',
      quorum: 2,
      maxKeys: 5,
      approvals: [
        { role: 'general-counsel', count: 1, organisations: 1 },
        { role: 'custodian', count: 2, organisations: 2 },
      ],
    });
    expect(
      new Set(
        dfs.approvers
          .filter((a: { role: string }) => a.role === 'custodian')
          .map((a: { organisation: string }) => a.organisation),
      ).size,
    ).toBe(3);
    for (const id of ['general-counsel', 'hale-llp', 'okafor-law', 'lindqvist']) {
      const der = sh('openssl', [
        'pkey',
        '-in',
        join(ROOT, 'fixtures/approvers', `${id}.pem`),
        '-pubout',
        '-outform',
        'DER',
      ]);
      expect(dfs.approvers.find((a: { id: string }) => a.id === id)?.key, id).toBe(
        der.subarray(12).toString('base64'),
      );
    }
    // the fixture age identities are the dfs custodians' recipients (age-keygen -y)
    for (const c of dfs.custodians as { id: string; recipient: string }[]) {
      expect(
        sh('age-keygen', ['-y', join(ROOT, 'fixtures/custodians', `${c.id}.key`)])
          .toString()
          .trim(),
        c.id,
      ).toBe(c.recipient);
    }
  });

  it("this file's policy passes, with the organisations and roles it was written with", () => {
    const p = json(run(['policy', 'check', 'policy.yaml', '--json']));
    expect(p.custodians.map((c: { id: string }) => c.id)).toEqual([
      'hale',
      'hale-partner',
      'okafor',
      'lind',
    ]);
    expect(
      p.approvers
        .map(
          (a: { id: string; role: string; organisation: string }) =>
            `${a.id}/${a.role}/${a.organisation}`,
        )
        .sort(),
    ).toEqual([
      'gc/general-counsel/Example Bank',
      'hale-partner/custodian/Hale LLP',
      'hale/custodian/Hale LLP',
      'lind/custodian/Lindqvist Advokatbyra',
      'okafor/custodian/Okafor Law Group',
    ]);
    expect(p.handover.recipients).toEqual({ minRsaBits: 3072, allow: [r3072.sha] });
  });

  const broken: [string, (text: string) => string, string, RegExp][] = [
    [
      'an approver key that is an RSA key',
      (t) =>
        t.replace(
          `key: ${(approvers.gc as Approver).pub}`,
          `key: ${readFileSync(r2048.pub, 'utf8').split('\n')[1]}`,
        ),
      '    key: MII',
      /key of approver "gc" must be an Ed25519 public key/,
    ],
    [
      'an approval rule for a role nobody has',
      (t) => t.replace('    - role: general-counsel\n', '    - role: auditor\n'),
      '    - role: auditor',
      /no approver has the role "auditor"/,
    ],
    [
      'a notice that is not hours or days',
      (t) => t.replace('notice: 72h', 'notice: 3 weeks'),
      '  notice: 3 weeks',
      /handover\.notice.*must be hours or days/,
    ],
    [
      'an allow-list entry that is not a SHA-256',
      (t) => t.replace(`allow: [${r3072.sha}]`, 'allow:\n      - not-a-digest'),
      '      - not-a-digest',
      /SHA-256/,
    ],
    [
      'a quorum below the threshold',
      (t) => t.replace('quorum: 2', 'quorum: 1'),
      '  quorum: 1',
      /handover\.quorum/,
    ],
  ];
  for (const [what, change, marker, message] of broken) {
    it(`policy check names the line of ${what} (exit 3, E_POLICY)`, () => {
      const text = change(mainPolicyText);
      expect(text).not.toBe(mainPolicyText);
      const line = text.split('\n').findIndex((l) => l.startsWith(marker)) + 1;
      expect(line).toBeGreaterThan(0);
      writeFileSync(path('broken.yaml'), text);
      const before = quietSnapshot();
      expectUserError(
        run(['policy', 'check', 'broken.yaml']),
        3,
        /\[E_POLICY\]/,
        new RegExp(`broken\\.yaml:${line}: `),
        message,
      );
      expect(quietSnapshot()).toEqual(before);
    });
  }
});

// ---------------------------------------------------------------- the request, approvals and
// ceremony

let reqDigest: string;
let ceremonyNonce: string;
let subs: Record<string, string> = {};

describe('request, approvals and the handover ceremony', () => {
  it("request writes the legal process, the scope, the recipient and the policy; the digests match openssl's and node's", () => {
    const r = expectOk(run(requestArgs('req.handover')));
    const { head, body, approvals } = readRequest('req.handover');
    reqDigest = sha256(head);
    expect(r.stdout).toContain(reqDigest);
    expect(approvals).toEqual([]);
    expect(body).toMatchObject({
      matter: MATTER,
      authority: AUTHORITY,
      basis: 'subpoena',
      requestedBy: 'ceremony-lead',
      noticeGiven: PAST,
      document: { name: 'subpoena.pdf', sha256: sha256(readFileSync(path('subpoena.pdf'))) },
    });
    expect(body.recipient.sha256).toBe(r3072.sha);
    expect(body.recipient.bits).toBe(3072);
    expect(body.policy.text).toBe(mainPolicyText);
    expect(body.scope.map((k: { label: string }) => k.label)).toEqual(SCOPE);
    const inBundle = bundleBody(path('vault.bundle')).keys;
    for (const k of body.scope) {
      expect(k.checkValue, k.label).toEqual(
        inBundle.find((b: { label: string }) => b.label === k.label).checkValue,
      );
    }
    expect(body.scope.find((k: { label: string }) => k.label === 'aes-key').checkValue.value).toBe(
      hsmKcv('01'),
    );
  });

  it('status lists the approvals and the quorum as not met, everything else as met', () => {
    expect(unmetRules('req.handover')).toEqual([
      'approvals: custodian',
      'approvals: general-counsel',
      'custodian quorum',
    ]);
  });

  it('approve refuses a key that is not in the policy (exit 3), and writes nothing', () => {
    expectRefusal(
      approveArgs('req.handover', 'rogue', 'custodian'),
      3,
      'handover-approve',
      'E_IDENTITY',
      /belongs to no approver in the request's policy/,
    );
  });

  it('approve refuses a role the key does not have (exit 2), and writes nothing', () => {
    expectRefusal(
      approveArgs('req.handover', 'hale', 'general-counsel'),
      2,
      'handover-approve',
      'E_USAGE',
      /hale approves as "custodian", not "general-counsel"/,
    );
  });

  it('approve --document refuses a document other than the one the request names (exit 5), and writes nothing', () => {
    const seen = sha256(readFileSync(path('other.pdf'))).slice(0, 16);
    expectRefusal(
      approveArgs('req.handover', 'gc', 'general-counsel', ['--document', 'other.pdf']),
      5,
      'handover-approve',
      'E_HANDOVER_REFUSED',
      /other\.pdf is not the document the request names/,
      new RegExp(seen),
    );
  });

  it('general counsel (having checked the document) and two custodian firms approve; each approval verifies with openssl', () => {
    approve('req.handover', 'gc', 'general-counsel', ['--document', 'subpoena.pdf']);
    approve('req.handover', 'hale', 'custodian');
    approve('req.handover', 'okafor', 'custodian');
    const { head, approvals } = readRequest('req.handover');
    expect(sha256(head)).toBe(reqDigest);
    expect(approvals).toHaveLength(3);
    for (const line of approvals) {
      const a = JSON.parse(line.slice(APPROVAL_PREFIX.length));
      const statement = path(`approval-${a.approver}.txt`);
      const sig = path(`approval-${a.approver}.sig`);
      writeFileSync(
        statement,
        `custos-handover-approval/1\nrequest: ${reqDigest}\nrole: ${a.role}\napprover: ${a.approver}\ntime: ${a.time}\n`,
      );
      writeFileSync(sig, Buffer.from(a.signature, 'base64'));
      const pub = path(`approvers/${a.approver}.pub.pem`);
      sh('openssl', [
        'pkey',
        '-in',
        (approvers[a.approver] as Approver).pem,
        '-pubout',
        '-out',
        pub,
      ]);
      expect(sh('openssl', ed25519VerifyArgs(pub, statement, sig)).toString()).toMatch(
        /Signature Verified Successfully/,
      );
    }
    expect(unmetRules('req.handover')).toEqual(['custodian quorum']);
  });

  it('a second approval by the same approver is refused and writes nothing', () => {
    expectRefusal(
      approveArgs('req.handover', 'hale', 'custodian'),
      2,
      'handover-approve',
      'E_USAGE',
      /hale has already approved this request/,
    );
  });

  it('the handover ceremony is opened for the request; two custodians submit from their machines', () => {
    ceremonyNonce = openCeremony('req.handover', 'handover.ceremony');
    expect(readFileSync(path('handover.ceremony'), 'utf8')).toContain(`"request": "${reqDigest}"`);
    subs = {
      hale: submit(
        'handover.ceremony',
        'vault.bundle.shares/hale.share',
        custodian('hale').identity,
        'hale.submission',
      ),
      lind: submit(
        'handover.ceremony',
        'vault.bundle.shares/lind.share',
        custodian('lind').identity,
        'lind.submission',
      ),
    };
    // the custodians' commands wrote to their own log, not the host's
    expect(auditLines(CUSTODIAN_LOG).map((e) => e.op)).toEqual(['share-submit', 'share-submit']);
    expectOk(run(['ceremony', 'add', 'handover.ceremony', subs.hale as string]));
  });
});

// ---------------------------------------------------------------- every rule, broken once

describe('every rule of the policy, broken once: refused, naming the rule, nothing written', () => {
  it('quorum not reached: one submission of two (exit 5)', () => {
    const r = expectRefusal(
      executeArgs('req.handover', 'quorum.pkg'),
      5,
      'handover-execute',
      'E_HANDOVER_REFUSED',
      /the handover is refused: 1 rule is not met/,
    );
    expectRules(r, { 'custodian quorum': /^1 of 2 custodians have given their shares/ });
    expect(exists(path('quorum.pkg'))).toBe(false);
    // the second custodian's submission completes the quorum
    expectOk(run(['ceremony', 'add', 'handover.ceremony', subs.lind as string]));
    expect(unmetRules('req.handover', 'handover.ceremony')).toEqual([]);
  });

  it('legal basis not allowed', () => {
    const r = expectRefusal(
      requestArgs('warrant.req', { basis: 'search-warrant' }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /the policy does not allow this request \(legal basis\)/,
    );
    expectRules(r, {
      'legal basis': /^search-warrant is not an accepted basis \(accepted: subpoena, court-order\)/,
    });
  });

  it('more keys than max-keys', () => {
    const r = expectRefusal(
      requestArgs('many.req', { keys: [...SCOPE, 'other-key', 'extra-key'] }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /the policy does not allow this request \(scope\)/,
    );
    expectRules(r, { scope: /^6 keys named \(at most 5 in one request\)/ });
  });

  it('a key the policy excludes from handover (root-*)', () => {
    const r = expectRefusal(
      requestArgs('root.req', { keys: ['aes-key', 'root-kek'] }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /\(scope\)/,
    );
    expectRules(r, { scope: /^the policy never allows handing over root-kek$/ });
  });

  it('--notice-given with an offset is recorded in UTC as toISOString writes it, which every reader takes; one with no such UTC form is refused (exit 2)', () => {
    // 100 h ago, written in +01:00 without fractional seconds: the request records the same instant
    // in UTC, with milliseconds.
    const given = new Date(Math.floor((Date.now() - 100 * 3_600_000) / 1000) * 1000);
    const local = `${new Date(given.getTime() + 3_600_000).toISOString().slice(0, 19)}+01:00`;
    expectOk(run(requestArgs('offset.req', { notice: local })));
    expect(readRequest('offset.req').body.noticeGiven).toBe(given.toISOString());
    expect(unmetRules('offset.req')).not.toContain('notice period');
    // The first hour of year 0000 at +01:00 is in year -1 in UTC: toISOString writes
    // -000001-12-31T23:00:00.000Z, which no reader takes.
    expectRefusal(
      requestArgs('year0.req', { notice: '0000-01-01T00:00:00+01:00' }),
      2,
      'handover-request',
      'E_USAGE',
      /--notice-given 0000-01-01T00:00:00\+01:00 is not a time custos can record/,
    );
    expect(exists(path('year0.req'))).toBe(false);
  });

  it('a recipient key with public exponent 3, which no later step would accept, is refused at request time (exit 2)', () => {
    const key = path('recipient/e3.key');
    const pub = path('recipient/e3.pub');
    sh('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:3072',
      '-pkeyopt',
      'rsa_keygen_pubexp:3',
      '-out',
      key,
    ]);
    sh('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
    expect(sh('openssl', ['rsa', '-pubin', '-in', pub, '-noout', '-text']).toString()).toMatch(
      /Exponent: 3 \(0x3\)/,
    );
    expectRefusal(
      requestArgs('e3.req', { recipient: pub }),
      2,
      'handover-request',
      'E_USAGE',
      /has public exponent 0x03; custos wraps only to RSA keys with an odd exponent of at least 65537/,
    );
  });

  it('a recipient key below min-rsa-bits (RSA-2048)', () => {
    const r = expectRefusal(
      requestArgs('small.req', { recipient: r2048.pub }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /\(recipient\)/,
    );
    expectRules(r, { recipient: /^RSA-2048 is below the policy's 3072 bits/ });
  });

  it('a recipient key that is not on the allow list (its SHA-256 as openssl computes it)', () => {
    const r = expectRefusal(
      requestArgs('other.req', { recipient: other3072.pub }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /\(recipient\)/,
    );
    expectRules(r, {
      recipient: new RegExp(
        `^recipient key ${other3072.sha.slice(0, 16)}… is not on the policy's allow list`,
      ),
    });
  });

  it('every request-time rule broken at once gives one line per rule', () => {
    const r = expectRefusal(
      requestArgs('all.req', { basis: 'letter', keys: ['root-kek'], recipient: r2048.pub }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /\(legal basis, scope, recipient\)/,
    );
    expectRules(r, { 'legal basis': /letter/, scope: /root-kek/, recipient: /RSA-2048/ });
  });

  it("general counsel's approval missing (the request without that line; same digest, same ceremony)", () => {
    const { body, approvals } = readRequest('req.handover');
    writeRequest('no-gc.req', body, [
      approvalOf(approvals, 'hale'),
      approvalOf(approvals, 'okafor'),
    ]);
    expectExecuteRefused(executeArgs('no-gc.req', 'no-gc.pkg'), {
      'approvals: general-counsel': /^0 of 1$/,
    });
  });

  it('two custodian approvals from one organisation when two are required', () => {
    const { body, approvals } = readRequest('req.handover');
    writeRequest('same-org.req', body, [
      approvalOf(approvals, 'gc'),
      approvalOf(approvals, 'hale'),
    ]);
    approve('same-org.req', 'hale-partner', 'custodian');
    expect(readRequest('same-org.req').approvals).toHaveLength(3);
    expectExecuteRefused(executeArgs('same-org.req', 'same-org.pkg'), {
      'approvals: custodian': /^2 of 2, from 1 of 2 distinct organisations \(hale, hale-partner\)/,
    });
  });

  it('approvals signed with a key that is not in the policy do not count; the same line signed with the right key does', () => {
    const { head, body, approvals } = readRequest('req.handover');
    // positive control: a line made here with okafor's real key counts, so the format is right
    writeRequest('crafted.req', body, [
      approvalOf(approvals, 'gc'),
      approvalOf(approvals, 'hale'),
      craftApproval(head, 'custodian', 'okafor', (approvers.okafor as Approver).pem),
    ]);
    expect(unmetRules('crafted.req', 'handover.ceremony')).toEqual([]);
    // forged: lind's name, the rogue key; and an approver the policy does not know
    writeRequest('forged.req', body, [
      ...approvals,
      craftApproval(head, 'custodian', 'lind', (approvers.rogue as Approver).pem),
      craftApproval(head, 'general-counsel', 'mallory', (approvers.rogue as Approver).pem),
    ]);
    expectExecuteRefused(executeArgs('forged.req', 'forged.pkg'), {
      'approval by lind': /its signature does not verify/,
      'approval by mallory': /mallory is not an approver in the policy/,
    });
  });

  let noticeNonce: string;
  it('notice period not elapsed (notice given now), with everything else in place', () => {
    expectOk(run(requestArgs('now.req', { notice: null })));
    for (const [id, role] of [
      ['gc', 'general-counsel'],
      ['okafor', 'custodian'],
      ['lind', 'custodian'],
    ] as const)
      approve('now.req', id, role);
    noticeNonce = openCeremony('now.req', 'now.ceremony');
    const a = submit(
      'now.ceremony',
      'vault.bundle.shares/okafor.share',
      custodian('okafor').identity,
      'now-okafor.submission',
    );
    const b = submit(
      'now.ceremony',
      'vault.bundle.shares/hale.share',
      custodian('hale').identity,
      'now-hale.submission',
    );
    expectOk(run(['ceremony', 'add', 'now.ceremony', a, b]));
    const r = expectExecuteRefused(executeArgs('now.req', 'now.pkg', 'now.ceremony'), {
      'notice period': /^72h from \S+: 72 h still to run \(until \S+\)$/,
    });
    const given = Date.parse(readRequest('now.req').body.noticeGiven);
    expect(Math.abs(given - Date.now())).toBeLessThan(5 * 60_000);
    expect(r.stderr).toContain(`until ${new Date(given + 72 * 3_600_000).toISOString()}`);
  });

  it('a ceremony opened for a different request (with its quorum) cannot release this one', () => {
    expect(noticeNonce).toMatch(/^[0-9a-f]{32}$/);
    expectExecuteRefused(executeArgs('req.handover', 'cross.pkg', 'now.ceremony'), {
      ceremony: /not a handover ceremony opened for this request and bundle/,
    });
  });
});

// ---------------------------------------------------------------- edited after approval

describe('a request changed after its approvals', () => {
  const allApprovalRules = {
    'approval by gc': /its signature does not verify: the request was changed after this approval/,
    'approval by hale': /its signature does not verify/,
    'approval by okafor': /its signature does not verify/,
    'approvals: general-counsel': /^0 of 1$/,
    'approvals: custodian': /^0 of 2/,
    ceremony: /not a handover ceremony opened for this request/,
  };

  /** execute of the edited request is refused: no approval verifies, the ceremony is not its. */
  const expectApprovalsVoid = (name: string) =>
    expectExecuteRefused(executeArgs(`${name}.req`, `${name}.pkg`), allApprovalRules);

  it('another document digest: status shows the approvals no longer verify, execute refuses, the ceremony no longer matches', () => {
    const { body, approvals } = readRequest('req.handover');
    body.document.sha256 = sha256(readFileSync(path('other.pdf')));
    writeRequest('edited-doc.req', body, approvals);
    expect(sha256(readRequest('edited-doc.req').head)).not.toBe(reqDigest);
    expect(unmetRules('edited-doc.req')).toEqual([
      'approval by gc',
      'approval by hale',
      'approval by okafor',
      'approvals: custodian',
      'approvals: general-counsel',
      'custodian quorum',
    ]);
    expect(unmetRules('edited-doc.req', 'handover.ceremony')).toEqual(
      Object.keys(allApprovalRules).sort(),
    );
    expectApprovalsVoid('edited-doc');
  });

  it('a key added to the scope (still within the policy): the same', () => {
    const { body, approvals } = readRequest('req.handover');
    const extra = bundleBody(path('vault.bundle')).keys.find(
      (k: { label: string }) => k.label === 'other-key',
    );
    body.scope.push({
      class: extra.class,
      keyType: extra.keyType,
      label: extra.label,
      id: extra.id,
      checkValue: extra.checkValue,
    });
    writeRequest('edited-scope.req', body, approvals);
    expectApprovalsVoid('edited-scope');
  });

  it('the embedded policy swapped for a laxer one (text and digest): the approvals and the ceremony no longer match', () => {
    const { body, approvals } = readRequest('req.handover');
    body.policy.text = mainPolicyText.replace('notice: 72h', 'notice: 1h');
    body.policy.sha256 = sha256(body.policy.text);
    writeRequest('edited-policy.req', body, approvals);
    expectApprovalsVoid('edited-policy');
  });

  it('the embedded policy text changed without its digest is named as edited (exit 3)', () => {
    const { body, approvals } = readRequest('req.handover');
    body.policy.text = mainPolicyText.replace('notice: 72h', 'notice: 1h');
    writeRequest('edited-policy-text.req', body, approvals);
    expectRefusal(
      executeArgs('edited-policy-text.req', 'edited-policy-text.pkg'),
      3,
      'handover-execute',
      'E_HANDOVER_FORMAT',
      /the policy it carries does not match its recorded digest/,
    );
  });

  it('the recipient key swapped for another while its recorded digest and size stay: refused everywhere as edited (exit 3)', () => {
    const { body, approvals } = readRequest('req.handover');
    // another key of the same size, so only the key itself differs from what people were shown
    body.recipient.spki = sh('openssl', [
      'pkey',
      '-pubin',
      '-in',
      other3072.pub,
      '-outform',
      'DER',
    ]).toString('base64');
    writeRequest('swapped-recipient.req', body, approvals);
    const message = /its recipient key does not match the digest and size recorded with it/;
    expectUserError(
      run(['handover', 'status', 'swapped-recipient.req']),
      3,
      /\[E_HANDOVER_FORMAT\]/,
      message,
    );
    expectUserError(run(approveArgs('swapped-recipient.req', 'gc', 'general-counsel')), 3, message);
    expectUserError(
      run([
        'ceremony',
        'open',
        '--bundle',
        'vault.bundle',
        '--purpose',
        'handover',
        '--request',
        'swapped-recipient.req',
        '--out',
        'swapped.ceremony',
      ]),
      3,
      message,
    );
    expect(exists(path('swapped.ceremony'))).toBe(false);
    expectRefusal(
      executeArgs('swapped-recipient.req', 'swapped.pkg'),
      3,
      'handover-execute',
      'E_HANDOVER_FORMAT',
      message,
    );
  });

  it('a matter with a line break or a terminal escape is refused at request time, and nothing is written', () => {
    for (const matter of ['M-1\nreleases: nothing', 'M-1\u001b[8m']) {
      const r = run(requestArgs('ctl.req').map((a) => (a === MATTER ? matter : a)));
      expectUserError(r, 2, /--matter must be printable text/);
      expect(exists(path('ctl.req'))).toBe(false);
    }
  });

  it("a body not in custos's form (re-indented) is named as edited by hand (exit 3)", () => {
    const { body, approvals } = readRequest('req.handover');
    writeFileSync(
      path('reindented.req'),
      `${REQUEST_HEADER}\n${JSON.stringify(body, null, 2)}\n${approvals.map((l) => `${l}\n`).join('')}`,
    );
    expectRefusal(
      executeArgs('reindented.req', 'reindented.pkg'),
      3,
      'handover-execute',
      'E_HANDOVER_FORMAT',
      /not in custos's form \(it was edited by hand\)/,
    );
  });
});

// ---------------------------------------------------------------- the release

let unwrapped: Unwrapped[];
const hsmKcvs: Record<string, string> = {};

describe('execute, and the recipient opens the package with openssl alone', () => {
  it('while another run holds the ceremony, execute is refused and releases nothing', () => {
    const claim = path(`.custos/ceremonies/${ceremonyNonce}/acting`);
    writeFileSync(claim, '');
    expectRefusal(
      executeArgs('req.handover', 'handover.pkg'),
      3,
      'handover-execute',
      'E_CEREMONY',
      /is already being closed by another custos run/,
    );
    expect(exists(path('handover.pkg'))).toBe(false);
    rmSync(claim);
  });

  it('a claim whose process still runs on this host is not taken over', () => {
    const claim = path(`.custos/ceremonies/${ceremonyNonce}/acting`);
    const live = {
      action: 'handover execute',
      pid: process.pid,
      started: new Date().toISOString(),
      actor: 'another lead',
      host: hostname(),
      processStarted: processStart(process.pid),
    };
    writeFileSync(claim, `${JSON.stringify(live)}\n`);
    expectRefusal(
      executeArgs('req.handover', 'handover.pkg'),
      3,
      'handover-execute',
      'E_CEREMONY',
      new RegExp(`is already being closed by "handover execute" \\(pid ${process.pid},`),
    );
    expect(exists(path('handover.pkg'))).toBe(false);
    rmSync(claim);
  });

  it('execute writes a 0600 package with exactly the scope, destroys the scratch token and closes the ceremony', () => {
    expect(unmetRules('req.handover', 'handover.ceremony')).toEqual([]);
    const out = json(
      run(executeArgs('req.handover', 'handover.pkg', 'handover.ceremony', ['--json'])),
    );
    expect(out.package).toBe('handover.pkg');
    expect(out.digest).toBe(sha256(readFileSync(path('handover.pkg'))));
    expect(out.quorum.sort()).toEqual(['hale', 'lind']);
    expect(out.scratchDestroyed).toBe(true);
    expect(modeOf(path('handover.pkg'))).toBe(0o600);
    expect(readdirSync(path('tmp'))).toEqual([]);
    expect(exists(path(`.custos/ceremonies/${ceremonyNonce}/host.key`))).toBe(false);
    expect(exists(path(`.custos/ceremonies/${ceremonyNonce}/accepted`))).toBe(false);
    const body = packageBody('handover.pkg');
    expect(
      body.keys
        .map((k: { label: string; id: string; class: string }) => `${k.class}/${k.label}/${k.id}`)
        .sort(),
    ).toEqual([
      'private/ec-key/04',
      'private/rsa-key/03',
      'secret/aes-key/01',
      'secret/hmac-key/02',
    ]);
    expect(body.requestDigest).toBe(reqDigest);
    expect(body.request).toBe(readFileSync(path('req.handover'), 'utf8'));
    expect(body.ceremony).toBe(readFileSync(path('handover.ceremony'), 'utf8'));
    expect(body.recipientSha256).toBe(r3072.sha);
    // SoftHSM offers OAEP with SHA-1 only
    expect(body.oaep).toEqual({ hash: 'SHA-1', mgf: 'MGF1-SHA-1', label: '' });
  });

  it("the receipt's signature verifies with openssl under the ceremony key; the transcript hashes the ceremony's audit lines", () => {
    const text = readFileSync(path('handover.pkg'), 'utf8');
    const at = text.lastIndexOf('\n--- ed25519 ');
    writeFileSync(path('pkg.signed'), text.slice(0, at + 1));
    writeFileSync(
      path('pkg.sig'),
      Buffer.from(text.slice(at + '\n--- ed25519 '.length).trim(), 'base64'),
    );
    const signingKey = (
      /"signingKey": "([^"]+)"/.exec(
        readFileSync(path('handover.ceremony'), 'utf8'),
      ) as RegExpExecArray
    )[1] as string;
    writeFileSync(
      path('ceremony-pub.der'),
      Buffer.concat([
        Buffer.from('302a300506032b6570032100', 'hex'),
        Buffer.from(signingKey, 'base64'),
      ]),
    );
    expect(
      sh(
        'openssl',
        ed25519VerifyArgs('ceremony-pub.der', 'pkg.signed', 'pkg.sig', 'DER'),
      ).toString(),
    ).toMatch(/Signature Verified Successfully/);
    // a changed byte fails the same check (the oracle can fail)
    writeFileSync(path('pkg.signed.changed'), text.slice(0, at + 1).replace('"SHA-1"', '"SHA-2"'));
    const bad = spawnSync(
      'openssl',
      ed25519VerifyArgs('ceremony-pub.der', 'pkg.signed.changed', 'pkg.sig', 'DER'),
      { cwd: ws.dir },
    );
    expect(bad.status).not.toBe(0);

    const lines = readFileSync(path(HOST_LOG), 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const execAt = lines.findIndex((l) => {
      const e = JSON.parse(l);
      return e.op === 'handover-execute' && e.outcome === 'ok';
    });
    expect(execAt).toBeGreaterThan(0);
    const mine = lines.slice(0, execAt).filter((l) => JSON.parse(l).ceremony === ceremonyNonce);
    expect(mine.map((l) => JSON.parse(l).op)).toEqual(
      expect.arrayContaining(['ceremony-open', 'submission-accepted']),
    );
    expect(packageBody('handover.pkg').transcript).toEqual(mine.map((l) => sha256(l)));
  });

  it('openssl unwraps every key (RSA-OAEP at the modulus length, then AES-KWP)', () => {
    expect(r3072.modulusBytes).toBe(384);
    unwrapped = recipientUnwrap('handover.pkg', r3072, 'recipient/unwrapped');
    expect(unwrapped.map((u) => u.label).sort()).toEqual([...SCOPE].sort());
    for (const [id, label] of [
      ['01', 'aes-key'],
      ['05', 'root-kek'],
      ['06', 'other-key'],
      ['07', 'extra-key'],
    ])
      hsmKcvs[label as string] = hsmKcv(id as string);
  });

  it("AES key: openssl's KCV over the unwrapped key equals the source HSM's and the package's", () => {
    const aes = unwrapped.find((u) => u.label === 'aes-key') as Unwrapped;
    expect(aes.bytes.length).toBe(32);
    writeFileSync(path('zero16.bin'), Buffer.alloc(16));
    const kcv = sh('openssl', [
      'enc',
      '-aes-256-ecb',
      '-nopad',
      '-K',
      aes.bytes.toString('hex'),
      '-in',
      'zero16.bin',
    ])
      .subarray(0, 3)
      .toString('hex');
    expect(kcv).toBe(hsmKcvs['aes-key']);
    expect(
      packageBody('handover.pkg').keys.find((k: { label: string }) => k.label === 'aes-key')
        .checkValue,
    ).toEqual({ method: 'aes-ecb-zero', value: kcv });
  });

  it("HMAC key: the source token's SHA256-HMAC (pkcs11-tool) equals openssl's under the unwrapped key; the check value matches", () => {
    const hmac = unwrapped.find((u) => u.label === 'hmac-key') as Unwrapped;
    expect(hmac.bytes.length).toBe(32);
    const msg = path('hmac-message.txt');
    writeFileSync(msg, `handover ${MATTER}: ${Date.now()}`);
    p11(ws, vault, [
      '--sign',
      '-m',
      'SHA256-HMAC',
      '--id',
      '02',
      '-i',
      msg,
      '-o',
      path('hmac-message.mac'),
    ]);
    const onToken = readFileSync(path('hmac-message.mac')).toString('hex');
    const byOpenssl = (
      /= ([0-9a-f]{64})/.exec(
        sh('openssl', [
          'dgst',
          '-sha256',
          '-mac',
          'HMAC',
          '-macopt',
          `hexkey:${hmac.bytes.toString('hex')}`,
          msg,
        ]).toString(),
      ) as RegExpExecArray
    )[1];
    expect(byOpenssl).toBe(onToken);
    const cv = createHmac('sha256', hmac.bytes)
      .update('custos check value')
      .digest()
      .subarray(0, 3)
      .toString('hex');
    expect(
      packageBody('handover.pkg').keys.find((k: { label: string }) => k.label === 'hmac-key')
        .checkValue,
    ).toEqual({ method: 'hmac-sha256', value: cv });
  });

  for (const [label, id] of [
    ['rsa-key', '03'],
    ['ec-key', '04'],
  ] as const) {
    it(`${label}: the unwrapped PKCS#8 key signs with openssl, and the source token's public key verifies it`, () => {
      const u = unwrapped.find((x) => x.label === label) as Unwrapped;
      const der = path(`recipient/unwrapped/${label}.p8.der`);
      writeFileSync(der, u.bytes, { mode: 0o600 });
      // its public half is the token's public key, byte for byte
      expect(
        sh('openssl', ['pkey', '-inform', 'DER', '-in', der, '-pubout', '-outform', 'DER']),
      ).toEqual(publicKeyDer(ws, vault, id));
      const pub = publicKeyPem(ws, vault, id, path(`token-${label}.pub.pem`));
      const msg = path(`${label}-message.txt`);
      writeFileSync(msg, `released under ${MATTER}`);
      const sig = path(`${label}.sig`);
      sh('openssl', ['dgst', '-sha256', '-keyform', 'DER', '-sign', der, '-out', sig, msg]);
      expect(
        sh('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', sig, msg]).toString(),
      ).toMatch(/Verified OK/);
      writeFileSync(path(`${label}-other.txt`), 'another message');
      expect(
        spawnSync('openssl', [
          'dgst',
          '-sha256',
          '-verify',
          pub,
          '-signature',
          sig,
          path(`${label}-other.txt`),
        ]).status,
      ).not.toBe(0);
    });
  }

  it('keys outside the scope are absent: no unwrapped key has the KCV of other-key, extra-key or root-kek', () => {
    const outside = OUT_OF_SCOPE.map((l) => hsmKcvs[l] as string);
    expect(new Set(outside).size).toBe(3);
    const kcvs = unwrapped.map((u) =>
      u.bytes.length === 32 ? aesKcv(u.bytes) : `len-${u.bytes.length}`,
    );
    expect(kcvs).toContain(hsmKcvs['aes-key']); // the comparison can match
    for (const o of outside) expect(kcvs).not.toContain(o);
    const body = packageBody('handover.pkg');
    expect(body.keys).toHaveLength(SCOPE.length);
    expect(
      JSON.parse(
        body.request.slice(
          REQUEST_HEADER.length + 1,
          body.request.indexOf(`\n${APPROVAL_PREFIX}`) + 1,
        ),
      ).scope.map((k: { label: string }) => k.label),
    ).toEqual(SCOPE);
  });

  it('the labels of keys outside the scope appear nowhere in the package', () => {
    const text = readFileSync(path('handover.pkg'), 'utf8');
    const found = OUT_OF_SCOPE.filter((l) => text.includes(l));
    // where they are, if anywhere: the package should not tell the recipient what else the
    // institution holds
    const where = found.length
      ? `found ${found.join(', ')} in the package's ${['ceremony', 'request'].filter((part) => found.some((l) => String(packageBody('handover.pkg')[part]).includes(l))).join(' and ')}`
      : '';
    expect(found, where).toEqual([]);
  });

  it('handover verify --key with the recipient key passes and checks every key', () => {
    const r = expectOk(run(['handover', 'verify', 'handover.pkg', '--key', r3072.key, '--json']));
    const v = JSON.parse(r.stdout);
    expect(v.matter).toBe(MATTER);
    expect(v.ceremony).toBe(ceremonyNonce);
    expect(v.approvals.map((a: { approver: string }) => a.approver).sort()).toEqual([
      'gc',
      'hale',
      'okafor',
    ]);
    expect(
      v.keys
        .map(
          (k: { label: string; unwrapped: { matches: boolean } }) =>
            `${k.label}:${k.unwrapped.matches}`,
        )
        .sort(),
    ).toEqual(SCOPE.map((l) => `${l}:true`).sort());
  });

  it('handover verify --key with another RSA key fails (exit 3) and writes nothing', () => {
    const before = quietSnapshot();
    expectUserError(
      run(['handover', 'verify', 'handover.pkg', '--key', other3072.key]),
      3,
      /\[E_IDENTITY\]/,
      /is not the private key of the package's recipient/,
    );
    expect(quietSnapshot()).toEqual(before);
  });

  it('handover verify refuses a package with one changed wrapped byte (exit 4)', () => {
    const text = readFileSync(path('handover.pkg'), 'utf8');
    const body = packageBody('handover.pkg');
    const blob = Buffer.from(body.keys[0].wrapped, 'base64');
    blob.writeUInt8((blob.at(-1) as number) ^ 1, blob.length - 1);
    body.keys[0].wrapped = blob.toString('base64');
    writeFileSync(
      path('changed.pkg'),
      `custos-handover/1\n${JSON.stringify(body, null, 1)}\n${text.slice(text.lastIndexOf('\n--- ed25519 ') + 1)}`,
    );
    expectUserError(
      run(['handover', 'verify', 'changed.pkg', '--key', r3072.key]),
      4,
      /\[E_PACKAGE_INVALID\]/,
      /signature does not verify with the ceremony key/,
    );
  });

  it('the ceremony is spent: executing again with it is refused and writes nothing', () => {
    expectRefusal(
      executeArgs('req.handover', 'again.pkg'),
      3,
      'handover-execute',
      'E_CEREMONY',
      /was closed/,
    );
  });
});

// ---------------------------------------------------------------- the shipped policy

describe('the shipped dfs-custodial policy with the fixture keys', () => {
  const fixture = (p: string) => join(ROOT, 'fixtures', p);
  const dfsPolicy = join(ROOT, 'policies/dfs-custodial.yaml');

  it("backup, a court order, general counsel + two firms, two firms' shares, execute, verify; root-* refused", () => {
    expectOk(run(['backup', '--hsm', 'vault', '--policy', dfsPolicy, '--out', 'dfs.bundle']));
    expectRefusal(
      requestArgs('dfs-root.req', {
        bundle: 'dfs.bundle',
        policy: dfsPolicy,
        basis: 'court-order',
        keys: ['root-kek'],
      }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /\(scope\)/,
    );
    expectOk(
      run(
        requestArgs('dfs.req', {
          bundle: 'dfs.bundle',
          policy: dfsPolicy,
          basis: 'court-order',
          keys: ['aes-key', 'rsa-key'],
        }),
      ),
    );
    for (const [key, role] of [
      ['general-counsel', 'general-counsel'],
      ['hale-llp', 'custodian'],
      ['lindqvist', 'custodian'],
    ]) {
      expectOk(
        run([
          'handover',
          'approve',
          'dfs.req',
          '--as',
          role as string,
          '--key',
          fixture(`approvers/${key}.pem`),
        ]),
      );
    }
    openCeremony('dfs.req', 'dfs.ceremony', 'dfs.bundle');
    const a = submit(
      'dfs.ceremony',
      'dfs.bundle.shares/okafor-law.share',
      fixture('custodians/okafor-law.key'),
      'dfs-okafor.submission',
    );
    const b = submit(
      'dfs.ceremony',
      'dfs.bundle.shares/lindqvist.share',
      fixture('custodians/lindqvist.key'),
      'dfs-lindqvist.submission',
    );
    expectOk(run(['ceremony', 'add', 'dfs.ceremony', a, b]));
    expect(unmetRules('dfs.req', 'dfs.ceremony')).toEqual([]);
    expectOk(run(executeArgs('dfs.req', 'dfs.pkg', 'dfs.ceremony')));
    expectOk(run(['handover', 'verify', 'dfs.pkg', '--key', r3072.key]));
    const got = recipientUnwrap('dfs.pkg', r3072, 'recipient/dfs');
    expect(got.map((u) => u.label).sort()).toEqual(['aes-key', 'rsa-key']);
    expect(aesKcv((got.find((u) => u.label === 'aes-key') as Unwrapped).bytes)).toBe(hsmKcv('01'));
  });
});

// ---------------------------------------------------------------- a policy the bundle was not made
// under

describe('the rules are those of the policy the backup was made under', () => {
  it("a lenient policy of the requester's own making (same custodians, own approver key, 1h notice, no GC, root-* allowed, RSA-2048) is refused", () => {
    const lenient = [
      'name: lenient',
      'threshold: 2',
      'custodians:',
      ...custodians.flatMap((c) => [`  - id: ${c.id}`, `    recipient: ${c.recipient}`]),
      'approvers:',
      '  - id: requester',
      '    organisation: Example Bank',
      '    role: requester',
      `    key: ${(approvers.rogue as Approver).pub}`,
      'handover:',
      '  bases: [informal-ask]',
      '  approvals:',
      '    - role: requester',
      '      count: 1',
      '  notice: 1h',
      '  quorum: 2',
      '  recipients:',
      '    min-rsa-bits: 2048',
      '  max-keys: 10',
      '  keys:',
      '    include: ["*"]',
      '',
    ].join('\n');
    writeFileSync(path('lenient.yaml'), lenient);
    expectOk(run(['policy', 'check', 'lenient.yaml'])); // a valid policy: only the binding to the bundle can refuse it
    expectRefusal(
      requestArgs('lenient.req', {
        policy: 'lenient.yaml',
        basis: 'informal-ask',
        keys: ['root-kek', 'aes-key'],
        recipient: r2048.pub,
      }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /lenient\.yaml is not the policy vault\.bundle was made under/,
    );
  });

  it("so is the institution's own policy file with one rule changed after the backup (notice 72h -> 1h)", () => {
    writeFileSync(path('policy-1h.yaml'), mainPolicyText.replace('notice: 72h', 'notice: 1h'));
    expectRefusal(
      requestArgs('policy-1h.req', {
        policy: 'policy-1h.yaml',
        notice: new Date(Date.now() - 2 * 3_600_000).toISOString(),
      }),
      5,
      'handover-request',
      'E_HANDOVER_REFUSED',
      /policy-1h\.yaml is not the policy vault\.bundle was made under/,
    );
  });
});

// ---------------------------------------------------------------- the audit log

describe('the audit log', () => {
  it('records request, approvals, ceremony open, accepted submissions and the signed execution', () => {
    const log = auditLines();
    const ok = (op: string) => log.filter((e) => e.op === op && e.outcome === 'ok');
    expect(ok('handover-request').some((e) => e.artifacts?.request === reqDigest)).toBe(true);
    // hale-partner approved same-org.req, a copy of the request with the same digest
    expect(
      ok('handover-approve')
        .filter((e) => e.artifacts?.request === reqDigest)
        .map((e) => e.detail.approver)
        .sort(),
    ).toEqual(['gc', 'hale', 'hale-partner', 'okafor']);
    const open = ok('ceremony-open').find((e) => e.ceremony === ceremonyNonce);
    expect(open?.artifacts?.request).toBe(reqDigest);
    expect(
      ok('submission-accepted')
        .filter((e) => e.ceremony === ceremonyNonce)
        .map((e) => e.detail.custodian)
        .sort(),
    ).toEqual(['hale', 'lind']);
    const exec = ok('handover-execute').find((e) => e.ceremony === ceremonyNonce);
    expect(exec).toBeDefined();
    const signingKey = (
      /"signingKey": "([^"]+)"/.exec(
        readFileSync(path('handover.ceremony'), 'utf8'),
      ) as RegExpExecArray
    )[1];
    expect(exec.sig?.key).toBe(signingKey);
    expect(exec.artifacts.package).toBe(sha256(readFileSync(path('handover.pkg'))));
    expect(exec.detail.keys).toEqual(SCOPE);
    expect(exec.detail.matter).toBe(MATTER);
    // refusals are recorded as well
    expect(
      log.filter((e) => e.op === 'handover-execute' && e.code === 'E_HANDOVER_REFUSED').length,
    ).toBeGreaterThanOrEqual(8);
  });

  it("custos audit verify passes the host log and the custodians' log", () => {
    const r = expectOk(run(['audit', 'verify', HOST_LOG, '--json']));
    const v = JSON.parse(r.stdout);
    expect(v.problems).toEqual([]);
    expect(v.entries).toBe(auditLines().length);
    expect(v.signed).toBe(auditLines().filter((e) => e.sig).length);
    expect(v.signed).toBeGreaterThanOrEqual(4);
    expect(
      JSON.parse(expectOk(run(['audit', 'verify', CUSTODIAN_LOG, '--json'])).stdout).problems,
    ).toEqual([]);
  });

  it('no PIN, identity, share value, KEK, ceremony key, approver key or key material in the logs, the package or any output', () => {
    expect(keyMaterial.size).toBeGreaterThanOrEqual(4 * 4);
    const all = new Set([...ws.secrets, ...keyMaterial]);
    const files = [
      HOST_LOG,
      CUSTODIAN_LOG,
      'handover.pkg',
      'dfs.pkg',
      'req.handover',
      'handover.ceremony',
    ];
    const asRuns = files.map((f) => ({
      args: [`(file ${f})`],
      status: 0,
      stdout: readFileSync(path(f), 'utf8'),
      stderr: '',
    }));
    // the scan can fail: a planted unwrapped key is found
    const planted = [...keyMaterial][0] as string;
    expect(
      findLeaks([{ args: ['probe'], status: 0, stdout: `x${planted}x`, stderr: '' }], all),
    ).toHaveLength(1);
    expect(findLeaks(asRuns, all)).toEqual([]);
    expectNoSecrets(ws, [...keyMaterial]);
  });
});
