/**
 * Token custodians and post-quantum custodians wherever custos takes a custodian identity: an
 * escrow domain (init, routine backup, restore), an escrowed token PIN (escrow-pin, then unlocked
 * with --escrow-identity), and a remote ceremony (share submit on the custodian's machine). The
 * post-quantum custodian's identity is made with age-encryption's own generateHybridIdentity, and
 * their share file is checked to carry the ML-KEM-768 + X25519 stanza.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MODULE,
  TIMEOUT,
  cleanup,
  custos,
  expectOk,
  initToken,
  json,
  p11Raw,
  type Custodian,
  type Workspace,
} from './helpers.js';
import { tokenCustodians } from './scenarios.js';

let ws: Workspace;
let dd: Custodian;
let pqIdentity: string;
const recipients: Record<string, string> = {};

const run = (args: string[], env: Record<string, string> = {}) => custos(ws, args, { env });

/** The stanza types of an armored age file's header. */
function stanzaTypes(path: string): string[] {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const header = Buffer.from(lines.slice(1, -1).join(''), 'base64').toString('latin1');
  return [...header.matchAll(/^-> (\S+)/gm)].map((m) => m[1] as string);
}

beforeAll(async () => {
  const custodians = tokenCustodians('custodian-more');
  ({ ws, dd } = custodians);
  Object.assign(recipients, custodians.recipients);
  pqIdentity = await generateHybridIdentity();
  ws.secrets.add(pqIdentity);
  recipients.pq = await identityToRecipient(pqIdentity);
  expect(recipients.pq).toMatch(/^age1pq1/);
  writeFileSync(join(ws.dir, 'pq.key'), `# post-quantum custodian\n${pqIdentity}\n`, {
    mode: 0o600,
  });
  writeFileSync(
    join(ws.dir, 'policy.yaml'),
    [
      'threshold: 2',
      'custodians:',
      `  - { id: ca, recipient: "${recipients.ca}" }`,
      `  - { id: cb, recipient: "${recipients.cb}" }`,
      `  - { id: pq, recipient: ${recipients.pq} }`,
      `  - { id: dd, recipient: ${dd.recipient} }`,
      '',
    ].join('\n'),
  );
}, TIMEOUT);

afterAll(() => cleanup(ws));

describe('a post-quantum custodian', () => {
  it('policy check takes age1pq1 and ssh-rsa recipients; the share is an ML-KEM-768 + X25519 age file that the hybrid identity opens', () => {
    expectOk(run(['policy', 'check', 'policy.yaml']));
    expectOk(run(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'b.bundle']));
    expect(stanzaTypes(join(ws.dir, 'b.bundle.shares', 'pq.share'))).toEqual(['mlkem768x25519']);
    expect(stanzaTypes(join(ws.dir, 'b.bundle.shares', 'ca.share'))).toEqual(['ssh-rsa']);
    const r = expectOk(
      run([
        'restore',
        '--bundle',
        'b.bundle',
        '--hsm',
        'dr',
        '--share',
        'b.bundle.shares/pq.share',
        '--share',
        'b.bundle.shares/ca.share',
        '--identity',
        'pq.key',
        '--identity',
        'ca.token-identity',
      ]),
    );
    expect(r.stdout).toMatch(/quorum: (?=.*ca)(?=.*pq)/);
  });
});

describe('an escrow domain whose custodians hold tokens and a post-quantum key', () => {
  it('domain init splits to them; a routine backup restores with a token and the post-quantum identity', () => {
    expectOk(
      run(['domain', 'init', '--policy', 'policy.yaml', '--out', 't.domain', '--hsm', 'vault']),
    );
    expect(stanzaTypes(join(ws.dir, 't.domain.shares', 'cb.share'))).toEqual(['ssh-rsa']);
    const verified = expectOk(
      run([
        'shares',
        'verify',
        '--domain',
        't.domain',
        '--share',
        't.domain.shares/cb.share',
        '--identity',
        'cb.token-identity',
      ]),
    );
    expect(verified.stdout).toMatch(/^ {2}custodian {3}cb \(cb\)$/m);
    expectOk(run(['backup', '--hsm', 'vault', '--domain', 't.domain', '--out', 'd1.bundle']));
    const dr2 = initToken(ws, 'drtwo');
    const conf = readFileSync(join(ws.dir, 'custos.yaml'), 'utf8');
    writeFileSync(
      join(ws.dir, 'custos.yaml'),
      `${conf}  drtwo:\n    module: ${MODULE}\n    token: drtwo\n    pin: env:PIN_DRTWO\n`,
    );
    ws.env.PIN_DRTWO = dr2.pin;
    const r = expectOk(
      run([
        'restore',
        '--bundle',
        'd1.bundle',
        '--hsm',
        'drtwo',
        '--share',
        't.domain.shares/cb.share',
        '--share',
        't.domain.shares/pq.share',
        '--identity',
        'cb.token-identity',
        '--identity',
        'pq.key',
      ]),
    );
    expect(r.stdout).toMatch(/every key matches bundle/);
  });
});

describe('a lost token: the domain is rotated to a new token', () => {
  it("a quorum (a token and an identity file) rotates the domain to a policy with ca's new token; the re-sealed bundle opens with the new token's share, not the lost one's", () => {
    const cz = initToken(ws, 'cz');
    ws.env.PIN_CZ = cz.pin;
    const conf = readFileSync(join(ws.dir, 'custos.yaml'), 'utf8');
    writeFileSync(
      join(ws.dir, 'custos.yaml'),
      `${conf}  cz:\n    module: ${MODULE}\n    token: cz\n    pin: env:PIN_CZ\n`,
    );
    const enrolled = expectOk(
      run([
        'custodian',
        'enroll',
        '--hsm',
        'cz',
        '--label',
        'custodian',
        '--out',
        'cz.token-identity',
      ]),
    );
    const czRecipient = enrolled.stdout.trim().split('\n').pop() as string;
    writeFileSync(
      join(ws.dir, 'policy-2.yaml'),
      readFileSync(join(ws.dir, 'policy.yaml'), 'utf8').replace(
        recipients.ca as string,
        czRecipient,
      ),
    );
    expectOk(
      run([
        'domain',
        'rotate',
        '--domain',
        't.domain',
        '--policy',
        'policy-2.yaml',
        '--out',
        't2.domain',
        '--rebundle',
        'd1.bundle',
        '--rebundle-dir',
        'resealed',
        '--share',
        't.domain.shares/cb.share',
        '--share',
        't.domain.shares/dd.share',
        '--identity',
        'cb.token-identity',
        '--identity',
        dd.identity,
      ]),
    );
    expect(stanzaTypes(join(ws.dir, 't2.domain.shares', 'ca.share'))).toEqual(['ssh-rsa']);
    const quorum = (who: string, identity: string) => [
      '--share',
      `t2.domain.shares/pq.share`,
      '--identity',
      'pq.key',
      '--share',
      who,
      '--identity',
      identity,
    ];
    const dr3 = initToken(ws, 'drthree');
    ws.env.PIN_DRTHREE = dr3.pin;
    writeFileSync(
      join(ws.dir, 'custos.yaml'),
      `${readFileSync(join(ws.dir, 'custos.yaml'), 'utf8')}  drthree:\n    module: ${MODULE}\n    token: drthree\n    pin: env:PIN_DRTHREE\n`,
    );
    // the lost token's old share (had it been found, with its PIN) does not count for the new
    // generation
    const old = run([
      'restore',
      '--bundle',
      'resealed/d1.bundle',
      '--hsm',
      'drthree',
      ...quorum('t.domain.shares/ca.share', 'ca.token-identity'),
    ]);
    expect(old.status, old.stderr).not.toBe(0);
    expect(old.stderr).toMatch(/custos: error: .*\[E_(QUORUM|SHARE_REJECTED)\]/);
    const r = expectOk(
      run([
        'restore',
        '--bundle',
        'resealed/d1.bundle',
        '--hsm',
        'drthree',
        ...quorum('t2.domain.shares/ca.share', 'cz.token-identity'),
      ]),
    );
    expect(r.stdout).toMatch(/every key matches bundle/);
  });
});

describe('an escrowed token PIN', () => {
  it('escrow-pin splits the PIN to token and post-quantum custodians; --escrow-identity takes a token identity file', () => {
    const vault2 = initToken(ws, 'vaulttwo');
    const conf = readFileSync(join(ws.dir, 'custos.yaml'), 'utf8');
    const profile = (pin: string) =>
      `${conf}  vaulttwo:\n    module: ${MODULE}\n    token: vaulttwo\n    pin: ${pin}\n    so-pin: env:SO_VAULTTWO\n`;
    writeFileSync(join(ws.dir, 'custos.yaml'), profile('env:PIN_VAULTTWO'));
    ws.env.PIN_VAULTTWO = vault2.pin;
    ws.env.SO_VAULTTWO = vault2.soPin;
    expectOk(
      run(['escrow-pin', '--hsm', 'vaulttwo', '--policy', 'policy.yaml', '--out', 'escrow-v2']),
    );
    expect(p11Raw(ws, vault2, ['--list-objects']).status).not.toBe(0);
    writeFileSync(join(ws.dir, 'custos.yaml'), profile('escrow:escrow-v2'));
    const r = expectOk(
      run([
        'inventory',
        '--hsm',
        'vaulttwo',
        '--escrow-identity',
        'ca.token-identity',
        '--escrow-identity',
        'pq.key',
      ]),
    );
    expect(r.stderr).toMatch(/token "vaulttwo" \(serial [0-9a-f]+\): 0 key objects/);
  });
});

describe('a remote ceremony', () => {
  it("share submit on a token custodian's machine seals the share; ceremony add accepts it", () => {
    const opened = json(
      run([
        'ceremony',
        'open',
        '--bundle',
        'b.bundle',
        '--purpose',
        'drill',
        '--out',
        'c.ceremony',
        '--json',
      ]),
    );
    expect(opened.ceremony.nonce).toMatch(/^[0-9a-f]{32}$/);
    mkdirSync(join(ws.dir, 'sub'), { recursive: true });
    for (const [id, identity] of [
      ['cb', 'cb.token-identity'],
      ['dd', dd.identity],
    ] as const) {
      expectOk(
        run([
          'share',
          'submit',
          '--ceremony',
          'c.ceremony',
          '--share',
          `b.bundle.shares/${id}.share`,
          '--identity',
          identity,
          '--out',
          `sub/${id}.submission`,
          '--yes',
        ]),
      );
    }
    const payload = readFileSync(join(ws.dir, 'sub', 'cb.submission'), 'utf8');
    expect(payload).toMatch(/^custos-submission\/1\n/);
    expectOk(run(['ceremony', 'add', 'c.ceremony', 'sub/cb.submission', 'sub/dd.submission']));
    const status = json(run(['ceremony', 'status', 'c.ceremony', '--json']));
    expect(JSON.stringify(status)).toMatch(/"accepted"/);
    expect(
      status.custodians
        .filter((c: { state: string }) => c.state === 'accepted')
        .map((c: { id: string }) => c.id)
        .sort(),
    ).toEqual(['cb', 'dd']);
  });
});
