/**
 * Custodians whose key is on their own token: one SoftHSM2 token per custodian, and an NSS
 * softoken token for one of them. Keys are made or picked by custos custodian enroll; shares are
 * age files to the key's ssh-rsa recipient; the token opens them after the PIN, typed at a real
 * terminal (tmux). Checked from outside: the stock age CLI opens a share made for a token key with
 * the same key exported from OpenSSL, and the token's attributes are read with raw pkcs11js.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  MODULE,
  ROOT,
  TIMEOUT,
  cleanup,
  custos,
  expectOk,
  expectUserError,
  initToken,
  makeCustodians,
  makeKey,
  mustRun,
  openShare,
  p11,
  shareValue,
  workspace,
  type Custodian,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { NSS_MODULE, makeNssToken, nssParameters, type NssToken } from './nss.js';
import { SLOW, Tmux } from './tmux.js';

const TOOL = join(ROOT, 'test', 'e2e', 'rsa-key-tool.mjs');

let ws: Workspace;
let tmux: Tmux;
let source: TokenRef;
let dr: TokenRef;
/** Custodian tokens: ca and cb on SoftHSM2, cn on NSS softoken, co holds a key from OpenSSL. */
let ca: TokenRef;
let cb: TokenRef;
let co: TokenRef;
let cn: NssToken;
let nssParams: string;
let files: Custodian[];
const recipients: Record<string, string> = {};

const baseEnv = () => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: ws.dir,
  LANG: 'C.UTF-8',
  NO_COLOR: '1',
  SOFTHSM2_CONF: ws.conf,
  COLUMNS: '250',
});

/** Imports the OpenSSL key into a token (raw pkcs11js), with the usage flags given. */
function importKey(
  token: { label: string; pin: string },
  pem: string,
  id: string,
  label: string,
  flags: Record<string, boolean> = {},
  nss = false,
): void {
  const req = {
    module: nss ? NSS_MODULE : MODULE,
    ...(nss ? { params: nssParams } : {}),
    token: token.label,
    pin: token.pin,
    op: 'import',
    pem,
    id,
    label,
    flags,
  };
  mustRun(process.execPath, [TOOL, JSON.stringify(req)], { env: baseEnv(), cwd: ws.dir });
}

function keyAttrs(token: TokenRef, label: string): Record<string, boolean>[] {
  const req = { module: MODULE, token: token.label, pin: token.pin, op: 'attrs', label };
  return JSON.parse(
    mustRun(process.execPath, [TOOL, JSON.stringify(req)], {
      env: baseEnv(),
      cwd: ws.dir,
    }).toString(),
  ) as Record<string, boolean>[];
}

/**
 * Two configurations name the same custodian tokens: custos.yaml asks for their PINs at the
 * terminal (pin: prompt), as a custodian's does; auto.yaml takes them from variables, for the
 * steps that are not about typing a PIN.
 */
function writeConfigs(): void {
  const profile = (name: string, token: string, pin: string, nss = false) => [
    `  ${name}:`,
    `    module: ${nss ? NSS_MODULE : MODULE}`,
    `    token: ${token}`,
    `    pin: ${pin}`,
    ...(nss ? [`    library-parameters: ${JSON.stringify(nssParams)}`] : []),
  ];
  const write = (file: string, prompt: boolean) =>
    writeFileSync(
      join(ws.dir, file),
      [
        'hsms:',
        ...profile('vault', 'vault', 'env:PIN_VAULT'),
        ...profile('dr', 'dr', 'env:PIN_DR'),
        ...profile('dr2', 'drtwo', 'env:PIN_DR2'),
        ...profile('ca', 'ca', prompt ? 'prompt' : 'env:PIN_CA'),
        ...profile('cb', 'cb', prompt ? 'prompt' : 'env:PIN_CB'),
        ...profile('co', 'co', prompt ? 'prompt' : 'env:PIN_CO'),
        ...profile('cn', 'cn', prompt ? 'prompt' : 'env:PIN_CN', true),
        ...profile('signer', 'co', 'env:PIN_CO'),
        '',
      ].join('\n'),
    );
  write('custos.yaml', true);
  write('auto.yaml', false);
}

const auto = (args: string[], env: Record<string, string> = {}) =>
  custos(ws, ['--config', 'auto.yaml', ...args], { env });

function enroll(profile: string, label: string, out: string) {
  const r = expectOk(
    auto(['custodian', 'enroll', '--hsm', profile, '--label', label, '--out', out]),
  );
  const lines = r.stdout.trim().split('\n');
  const recipient = lines[lines.length - 1] as string;
  expect(recipient).toMatch(/^ssh-rsa AAAAB3NzaC1yc2E[A-Za-z0-9+/]+={0,2}$/);
  return { r, recipient };
}

function writePolicy(file: string, threshold: number, custodians: [string, string][]): void {
  writeFileSync(
    join(ws.dir, file),
    [
      `threshold: ${threshold}`,
      'custodians:',
      ...custodians.flatMap(([id, recipient]) => [`  - id: ${id}`, `    recipient: ${recipient}`]),
      '',
    ].join('\n'),
  );
}

beforeAll(() => {
  ws = workspace('custodian-tokens');
  tmux = new Tmux(ws.dir, { width: 80, height: 24 });
  source = initToken(ws, 'vault');
  dr = initToken(ws, 'dr');
  ws.env.PIN_DR = dr.pin;
  ws.env.PIN_DR2 = initToken(ws, 'drtwo').pin;
  ca = initToken(ws, 'ca');
  cb = initToken(ws, 'cb');
  co = initToken(ws, 'co');
  cn = makeNssToken(ws, 'cn');
  nssParams = nssParameters([cn]);
  ws.env.PIN_VAULT = source.pin;
  ws.env.PIN_CA = ca.pin;
  ws.env.PIN_CB = cb.pin;
  ws.env.PIN_CO = co.pin;
  ws.env.PIN_CN = cn.pin;
  writeConfigs();
  makeKey(ws, source, { kind: 'aes', label: 'payments', id: '01' });
  makeKey(ws, source, { kind: 'generic', label: 'mac', id: '02' });
  files = makeCustodians(ws, ['dd', 'ee']);
  recipients.ca = enroll('ca', 'custodian', 'ca.token-identity').recipient;
  recipients.cb = enroll('cb', 'custodian', 'cb.token-identity').recipient;
  recipients.cn = enroll('cn', 'custodian', 'cn.token-identity').recipient;
  writePolicy('policy.yaml', 3, [
    ['ca', recipients.ca],
    ['cb', recipients.cb],
    ['cn', recipients.cn],
    ['dd', files[0]?.recipient as string],
    ['ee', files[1]?.recipient as string],
  ]);
  expectOk(auto(['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'v.bundle']));
  for (const c of files)
    openShare(ws, join(ws.dir, 'v.bundle.shares', `${c.id}.share`), c.identity);
}, TIMEOUT);

afterAll(() => {
  tmux?.kill();
  cleanup(ws);
});

const share = (id: string) => join('v.bundle.shares', `${id}.share`);

describe('custos custodian enroll', () => {
  it('makes a decrypt-only RSA-3072 key that never leaves the token, proves it, and writes an identity file with no secret', () => {
    const attrs = keyAttrs(ca, 'custodian');
    expect(attrs).toEqual([
      {
        SIGN: false,
        DECRYPT: true,
        UNWRAP: false,
        DERIVE: false,
        EXTRACTABLE: false,
        SENSITIVE: true,
        PRIVATE: true,
      },
    ]);
    const stub = readFileSync(join(ws.dir, 'ca.token-identity'), 'utf8');
    expect(stub.split('\n')[0]).toBe('custos-token-identity/1');
    const body = JSON.parse(stub.slice(stub.indexOf('\n') + 1));
    expect(body.token.label).toBe('ca');
    expect(body.profile).toBe('ca');
    expect(body.recipient).toBe(recipients.ca);
    // the recipient is the token's public key, as OpenSSL reads it from the token
    const der = join(ws.dir, 'ca-pub.der');
    p11(ws, ca, ['--read-object', '--type', 'pubkey', '--id', body.key.id, '-o', der]);
    const pem = mustRun('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', der], {
      env: baseEnv(),
      cwd: ws.dir,
    });
    writeFileSync(join(ws.dir, 'ca-pub.pem'), pem);
    const ssh = mustRun('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', 'ca-pub.pem'], {
      env: baseEnv(),
      cwd: ws.dir,
    })
      .toString()
      .trim();
    expect(ssh.split(' ').slice(0, 2).join(' ')).toBe(recipients.ca);
    expect(stub).not.toMatch(new RegExp(ca.pin));
  });

  it('on NSS softoken the token does RSA-OAEP-SHA256 itself; on SoftHSM2 raw RSA with OAEP checked on the host', () => {
    const nss = readFileSync(join(ws.dir, 'cn.token-identity'), 'utf8');
    expect(JSON.parse(nss.slice(nss.indexOf('\n') + 1)).libraryParameters).toBe(nssParams);
    const a = expectOk(
      auto(['custodian', 'enroll', '--hsm', 'cn', '--label', 'custodian', '--out', 'cn2.tid']),
    );
    expect(a.stdout).toMatch(/^picked key "custodian"/m);
    expect(a.stdout).toContain('RSA-OAEP (SHA-256, with the age label) on the token');
    const b = expectOk(
      auto([
        'custodian',
        'enroll',
        '--hsm',
        'cb',
        '--label',
        'custodian',
        '--out',
        'cb2.tid',
        '--json',
      ]),
    );
    expect(JSON.parse(b.stdout)).toMatchObject({
      decryption: 'rsa-x509+host-oaep',
      recipient: recipients.cb,
      key: { made: false, bits: 3072 },
    });
  });

  it('refuses a key that can sign, or be exported, naming the attribute, and writes nothing', () => {
    // pkcs11-tool makes key pairs that can sign
    p11(ws, co, ['--keypairgen', '--key-type', 'rsa:3072', '--label', 'signing', '--id', '51']);
    const signing = auto([
      'custodian',
      'enroll',
      '--hsm',
      'co',
      '--label',
      'signing',
      '--out',
      's.tid',
    ]);
    expectUserError(signing, 6, /\[E_CUSTODIAN_KEY\]/, /CKA_SIGN is true: the key can also sign/);
    expect(existsSync(join(ws.dir, 's.tid'))).toBe(false);
    mustRun(
      'openssl',
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', 'x.pem'],
      {
        env: baseEnv(),
        cwd: ws.dir,
      },
    );
    importKey(co, join(ws.dir, 'x.pem'), '52', 'exportable', { extractable: true });
    const exportable = auto([
      'custodian',
      'enroll',
      '--hsm',
      'co',
      '--label',
      'exportable',
      '--out',
      'x.tid',
    ]);
    expectUserError(
      exportable,
      6,
      /\[E_CUSTODIAN_KEY\]/,
      /CKA_EXTRACTABLE is true: the key can be exported wrapped/,
    );
    expect(existsSync(join(ws.dir, 'x.tid'))).toBe(false);
    importKey(co, join(ws.dir, 'x.pem'), '53', 'readable', { sensitive: false, unwrap: true });
    const readable = auto(['custodian', 'enroll', '--hsm', 'co', '--label', 'readable']);
    const err = expectUserError(readable, 6, /CKA_SENSITIVE is false/);
    expect(err).toMatch(/can be read off the token/);
    expect(readable.stderr).toMatch(/CKA_UNWRAP is true: the key can also unwrap other keys/);
    // a decrypt-only private key whose public half may wrap other keys off the token
    importKey(co, join(ws.dir, 'x.pem'), '54', 'wraps', { wrap: true });
    expectUserError(
      auto(['custodian', 'enroll', '--hsm', 'co', '--label', 'wraps']),
      6,
      /CKA_WRAP of its public key is true: other keys could be wrapped off the token/,
    );
    expect(existsSync(join(ws.dir, 'readable.token-identity'))).toBe(false);
  });
});

describe('a 3-of-5 backup with three token holders and two file holders', () => {
  it('restores with the three tokens, each PIN typed at the terminal (two SoftHSM2, one NSS)', async () => {
    const args = [
      'restore',
      '--bundle',
      'v.bundle',
      '--hsm',
      'dr',
      ...['ca', 'cb', 'cn'].flatMap((id) => ['--share', share(id)]),
      ...['ca', 'cb', 'cn'].flatMap((id) => ['--identity', `${id}.token-identity`]),
    ];
    tmux.start({
      cwd: ws.dir,
      env: { ...baseEnv(), COLUMNS: '80', TERM: 'xterm-256color', ...ws.env },
      argv: [BIN, ...args],
    });
    for (const [token, pin] of [
      ['ca', ca.pin],
      ['cb', cb.pin],
      ['cn', cn.pin],
    ] as const) {
      await tmux.waitFor(new RegExp(`^\\? PIN of token "${token}" \\(key "custodian"\\):`, 'm'), {
        timeout: SLOW,
      });
      tmux.type(pin);
      tmux.keys('Enter');
    }
    const status = await tmux.exitStatus();
    const screen = tmux.screen();
    ws.runs.push({ args: [...args, '(terminal)'], status, stdout: screen, stderr: '' });
    expect(status, screen).toBe(0);
    expect(screen).toMatch(/every key matches bundle [0-9a-f]{32}; quorum: ca, cb, cn/);
    for (const pin of [ca.pin, cb.pin, cn.pin]) expect(screen).not.toContain(pin);
    expect(tmux.wideLines()).toEqual([]);
    const listed = p11(ws, dr, ['--list-objects']);
    expect(listed).toContain('payments');
    expect(listed).toContain('mac');
  });

  it('restores with a quorum that mixes a token and two identity files', () => {
    const r = expectOk(
      auto([
        'restore',
        '--bundle',
        'v.bundle',
        '--hsm',
        'dr2',
        '--share',
        share('dd'),
        '--share',
        share('cb'),
        '--share',
        share('ee'),
        '--identity',
        files[0]?.identity as string,
        '--identity',
        'cb.token-identity',
        '--identity',
        files[1]?.identity as string,
      ]),
    );
    expect(r.stdout).toMatch(/quorum: (?=.*cb)(?=.*dd)(?=.*ee)/);
  });

  it('shares verify takes the token identity file', () => {
    const r = expectOk(
      auto([
        'shares',
        'verify',
        '--bundle',
        'v.bundle',
        '--share',
        share('cn'),
        '--identity',
        'cn.token-identity',
      ]),
    );
    expect(r.stdout).toMatch(/custodian {2}cn \(cn\), share 3 of 5, 3 needed/);
  });
});

describe('without the token, or without its PIN, the share opens nothing', () => {
  it('a copy of the share and of the identity file, on a machine without the token: the token is named as missing', () => {
    const elsewhere = join(ws.dir, 'elsewhere');
    mkdirSync(join(elsewhere, 'tokens'), { recursive: true });
    const conf = join(elsewhere, 'softhsm2.conf');
    writeFileSync(
      conf,
      `directories.tokendir = ${join(elsewhere, 'tokens')}\nobjectstore.backend = file\n`,
    );
    const r = custos(
      ws,
      [
        '--config',
        'auto.yaml',
        'shares',
        'verify',
        '--bundle',
        'v.bundle',
        '--share',
        share('ca'),
        '--identity',
        'ca.token-identity',
      ],
      { conf },
    );
    expectUserError(r, 6, /\[E_TOKEN_NOT_FOUND\]/, /token "ca" is not there: insert it/);
    // the stock age CLI has nothing it could open it with either: the share is not an X25519 file
    const age = spawnSync('age', ['-d', '-i', files[0]?.identity as string, share('ca')], {
      cwd: ws.dir,
      env: baseEnv(),
    });
    expect(age.status).not.toBe(0);
    expect(age.stderr.toString()).toMatch(/no identity matched any of the recipients/);
    // another custodian's identity: the share is not theirs
    const other = auto([
      'shares',
      'verify',
      '--bundle',
      'v.bundle',
      '--share',
      share('ca'),
      '--identity',
      'cb.token-identity',
    ]);
    expectUserError(other, 4, /\[E_SHARE_REJECTED\]/, /none of the identities given opens it/);
  });

  it('an edited identity file opens nothing: another key id, another token, a relative module', () => {
    const stub = readFileSync(join(ws.dir, 'ca.token-identity'), 'utf8');
    const body = JSON.parse(stub.slice(stub.indexOf('\n') + 1));
    const verify = (file: string, text: string) => {
      writeFileSync(join(ws.dir, file), text);
      return auto([
        'shares',
        'verify',
        '--bundle',
        'v.bundle',
        '--share',
        share('ca'),
        '--identity',
        file,
      ]);
    };
    const id = body.key.id as string;
    expectUserError(
      verify('other-id.tid', stub.replace(`"id": "${id}"`, '"id": "00ff"')),
      3,
      /\[E_IDENTITY\]/,
      /token "ca" holds no private key with id 00ff/,
    );
    // cb's token holds a key with another id: the same id is looked for on the token named
    const onCb = stub
      .replace('"label": "ca"', '"label": "cb"')
      .replace('"profile": "ca"', '"profile": "cb"');
    expectUserError(
      verify('on-cb.tid', onCb),
      3,
      /\[E_IDENTITY\]/,
      /token "cb" holds no private key/,
    );
    expectUserError(
      verify('relative.tid', stub.replace(`"module": "${MODULE}"`, '"module": "libsofthsm2.so"')),
      3,
      /\[E_IDENTITY\]/,
      /body\.module must be an absolute path/,
    );
  });

  it('a wrong PIN is named, with what the token says of the tries left', () => {
    const r = auto(
      [
        'shares',
        'verify',
        '--bundle',
        'v.bundle',
        '--share',
        share('cb'),
        '--identity',
        'cb.token-identity',
      ],
      { PIN_CB: 'not-the-pin' },
    );
    expectUserError(
      r,
      6,
      /\[E_PIN_INCORRECT\]/,
      /wrong PIN for token "cb": the token says few tries are left before it locks \(CKR_PIN_INCORRECT\) \[E_PIN_INCORRECT\]$/m,
      /each wrong PIN counts towards locking it/,
    );
    const nss = auto(
      [
        'shares',
        'verify',
        '--bundle',
        'v.bundle',
        '--share',
        share('cn'),
        '--identity',
        'cn.token-identity',
      ],
      { PIN_CN: 'not-the-pin' },
    );
    expectUserError(
      nss,
      6,
      /\[E_PIN_INCORRECT\]/,
      /wrong PIN for token "cn": the token does not say how many tries are left \(CKR_PIN_INCORRECT\) \[E_PIN_INCORRECT\]$/m,
    );
  });

  it('a wrong PIN typed at the terminal is named; without a terminal the PIN is not asked for', async () => {
    const args = [
      'shares',
      'verify',
      '--bundle',
      'v.bundle',
      '--share',
      share('ca'),
      '--identity',
      'ca.token-identity',
    ];
    tmux.start({
      cwd: ws.dir,
      env: { ...baseEnv(), COLUMNS: '80', TERM: 'xterm-256color', ...ws.env },
      argv: [BIN, ...args],
    });
    await tmux.waitFor(/^\? PIN of token "ca" \(key "custodian"\):/m, { timeout: SLOW });
    tmux.type('wrong-pin');
    tmux.keys('Enter');
    const status = await tmux.exitStatus();
    const screen = tmux.screen();
    expect(status, screen).toBe(6);
    expect(screen).toMatch(/^custos: error: wrong PIN for token "ca": /m);
    expect(screen).not.toContain('wrong-pin');
    const noTty = custos(ws, args);
    expectUserError(noTty, 8, /\[E_NO_TTY\]/, /never given on the command line/);
  });
});

describe('the stock age CLI is the oracle', () => {
  it('a share made for a key imported from OpenSSL opens with age -d -i key.pem, and with custos through the token', () => {
    mustRun(
      'openssl',
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072', '-out', 'oracle.pem'],
      {
        env: baseEnv(),
        cwd: ws.dir,
      },
    );
    importKey(co, join(ws.dir, 'oracle.pem'), '60', 'oracle');
    const enrolled = enroll('co', 'oracle', 'co.token-identity');
    // imported keys are named as such
    expect(enrolled.r.stderr).toMatch(/CKA_NEVER_EXTRACTABLE is false: the key was imported/);
    // the recipient custos derived from the token equals ssh-keygen's view of the OpenSSL key
    const pub = mustRun('ssh-keygen', ['-y', '-f', 'oracle.pem'], { env: baseEnv(), cwd: ws.dir });
    expect(pub.toString().trim().split(' ').slice(0, 2).join(' ')).toBe(enrolled.recipient);
    writePolicy('oracle.yaml', 2, [
      ['co', enrolled.recipient],
      ['dd', files[0]?.recipient as string],
      ['ee', files[1]?.recipient as string],
    ]);
    expectOk(auto(['backup', '--hsm', 'vault', '--policy', 'oracle.yaml', '--out', 'o.bundle']));
    const file = join('o.bundle.shares', 'co.share');
    const header = Buffer.from(
      readFileSync(join(ws.dir, file), 'utf8').split('\n').slice(1, -2).join(''),
      'base64',
    ).toString('latin1');
    expect(header).toMatch(/^age-encryption\.org\/v1\n-> ssh-rsa [A-Za-z0-9+/]{6}\n/);
    const plain = openShare(ws, join(ws.dir, file), join(ws.dir, 'oracle.pem'));
    expect(plain).toMatch(/^custos-share\/1$/m);
    expect(plain).toMatch(/^custodian: co$/m);
    expect(shareValue(plain).length).toBeGreaterThan(10);
    const r = expectOk(
      auto([
        'shares',
        'verify',
        '--bundle',
        'o.bundle',
        '--share',
        file,
        '--identity',
        'co.token-identity',
      ]),
    );
    expect(r.stdout).toMatch(/custodian {2}co \(co\), share 1 of 3, 2 needed/);
    // and the other way: the age CLI encrypts the same share to the token key's recipient, and
    // custos opens that file on the token
    writeFileSync(join(ws.dir, 'co.recipient'), `${enrolled.recipient}\n`);
    mustRun('age', ['-R', 'co.recipient', '-a', '-o', 'by-age.share'], {
      env: baseEnv(),
      cwd: ws.dir,
      input: plain,
    });
    const again = expectOk(
      auto([
        'shares',
        'verify',
        '--bundle',
        'o.bundle',
        '--share',
        'by-age.share',
        '--identity',
        'co.token-identity',
      ]),
    );
    expect(again.stdout).toMatch(/^share by-age\.share is good:/m);
  });
});
