/**
 * NSS softoken as a second PKCS#11 module, beside SoftHSM2: a profile with library parameters;
 * backup and restore on NSS tokens; bundles and HSM-to-HSM copies across the two modules in both
 * directions and NSS to NSS; escrow-pin and ceremony close on NSS; and the refusal of a token that
 * offers no RFC 5649 key wrap, listing what it offers. Each result is checked from outside custos:
 * OpenSSL's id-aes256-wrap-pad opens the bundle blobs, the same block encrypts the same under the
 * source and the restored key, and signatures by restored keys verify with OpenSSL against the
 * source's public key. All NSS tokens are databases in this file's workspace, shared by its tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  STANDARD_KEYS,
  TIMEOUT,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  makeCustodians,
  makeStandardKeys,
  mustRun,
  openShare,
  makeKey,
  p11,
  profileFor,
  secretKeyArgs,
  publicKeyPem,
  snapshot,
  workspace,
  writeConfig,
  writePolicy,
  kwpUnwrap,
  type Custodian,
  type Profile,
  type TokenRef,
} from './helpers.js';
import { backUp } from './scenarios.js';
import {
  NSS_MODULE,
  makeNssKeys,
  makeNssToken,
  nssLogsIn,
  nssObjects,
  nssParameters,
  nssProfile,
  nssTool,
  type NssToken,
} from './nss.js';

const ws = workspace('nss');
const profiles: Profile[] = [];
const nss: Record<string, NssToken> = {};
const sh: Record<string, TokenRef> = {};
let params: string;
let custodians: Custodian[];
const NSS_LABELS = ['nss-src', 'nss-dst', 'nss-x', 'nss-copy', 'nss-back', 'nss-cer'] as const;
const plainEnv = () => ({
  env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.dir },
  cwd: ws.dir,
});

beforeAll(() => {
  // one line per message, so that messages can be matched whole
  ws.env.COLUMNS = '1000';
  for (const label of NSS_LABELS) nss[label] = makeNssToken(ws, label);
  params = nssParameters(Object.values(nss));
  makeNssKeys(ws, nss['nss-src'] as NssToken, params, STANDARD_KEYS);
  for (const t of Object.values(nss)) nssProfile(ws, profiles, t, params);
  for (const label of ['sh-src', 'sh-dst', 'sh-copy']) {
    sh[label] = initToken(ws, label);
    profileFor(ws, profiles, sh[label] as TokenRef);
  }
  makeStandardKeys(ws, sh['sh-src'] as TokenRef);
  writeConfig(ws, profiles);
  custodians = makeCustodians(ws, ['a', 'b', 'c']);
  writePolicy(ws, 'policy.yaml', 2, custodians);
}, TIMEOUT);

afterAll(() => cleanup(ws));

// ---------------------------------------------------------------- outside oracles

type Side = { nss: NssToken } | { sh: TokenRef };
const side = (label: string): Side =>
  label.startsWith('nss') ? { nss: nss[label] as NssToken } : { sh: sh[label] as TokenRef };

function viaTool(
  s: Side,
  nssOp: string,
  args: Record<string, unknown>,
  p11Args: (input: string, output: string) => string[],
  input: Buffer,
): Buffer {
  if ('nss' in s)
    return Buffer.from(
      nssTool<string>(ws, s.nss, params, nssOp, { ...args, data: input.toString('hex') }),
      'hex',
    );
  const name = randomBytes(4).toString('hex');
  const [inFile, outFile] = [join(ws.dir, `in-${name}`), join(ws.dir, `out-${name}`)];
  writeFileSync(inFile, input);
  p11(ws, s.sh, p11Args(inFile, outFile));
  return readFileSync(outFile);
}

const encrypt = (s: Side, id: string, block: Buffer) =>
  viaTool(
    s,
    'encrypt',
    { id },
    (i, o) => [...secretKeyArgs('--encrypt', 'AES-ECB', id), '-i', i, '-o', o],
    block,
  );
const hmac = (s: Side, id: string, data: Buffer) =>
  viaTool(
    s,
    'hmac',
    { id },
    (i, o) => ['--sign', '-m', 'SHA256-HMAC', '--id', id, '-i', i, '-o', o],
    data,
  );

/**
 * A signature made by the token's private key with this id: RSA PKCS#1 v1.5 SHA-256, or ECDSA
 * SHA-256 (DER).
 */
function sign(s: Side, id: string, kind: 'rsa' | 'ec', data: Buffer): Buffer {
  if ('nss' in s)
    return Buffer.from(
      nssTool<string>(ws, s.nss, params, 'sign', { id, kind, data: data.toString('hex') }),
      'hex',
    );
  if (kind === 'rsa')
    return viaTool(
      s,
      '',
      {},
      (i, o) => ['--sign', '--id', id, '--mechanism', 'SHA256-RSA-PKCS', '-i', i, '-o', o],
      data,
    );
  // SoftHSM 2.6 offers plain CKM_ECDSA only: the token signs the SHA-256 digest, made here
  return viaTool(
    s,
    '',
    {},
    (i, o) => [
      '--sign',
      '--id',
      id,
      '--mechanism',
      'ECDSA',
      '--signature-format',
      'openssl',
      '-i',
      i,
      '-o',
      o,
    ],
    createHash('sha256').update(data).digest(),
  );
}

/** The token's public key with this id as a PEM file. */
function publicPem(s: Side, id: string): string {
  const file = join(ws.dir, `pub-${randomBytes(4).toString('hex')}.pem`);
  if ('nss' in s) writeFileSync(file, nssTool<string>(ws, s.nss, params, 'publicKey', { id }));
  else publicKeyPem(ws, s.sh, id, file);
  return file;
}

function verifies(pem: string, data: Buffer, signature: Buffer): boolean {
  const name = randomBytes(4).toString('hex');
  const [dataFile, sigFile] = [join(ws.dir, `data-${name}`), join(ws.dir, `sig-${name}`)];
  writeFileSync(dataFile, data);
  writeFileSync(sigFile, signature);
  const r = mustRun(
    'sh',
    [
      '-c',
      `openssl dgst -sha256 -verify "$1" -signature "$2" "$3" || true`,
      'verify',
      pem,
      sigFile,
      dataFile,
    ],
    plainEnv(),
  ).toString();
  return /Verified OK/.test(r);
}

interface Oracle {
  aes: string;
  hmac: string;
  rsa: { signature: string; pem: string };
  ec: { signature: string; pem: string };
}

/**
 * What the standard keys of a token do with a block and some data, seen from outside custos
 * (nss-tool in one run, or pkcs11-tool).
 */
function oracle(s: Side, block: Buffer, data: Buffer): Oracle {
  if ('nss' in s)
    return nssTool<Oracle>(ws, s.nss, params, 'oracle', {
      block: block.toString('hex'),
      data: data.toString('hex'),
    });
  const asymmetric = (id: string, kind: 'rsa' | 'ec') => ({
    signature: sign(s, id, kind, data).toString('hex'),
    pem: readFileSync(publicPem(s, id), 'utf8'),
  });
  return {
    aes: encrypt(s, '01', block).toString('hex'),
    hmac: hmac(s, '02', data).toString('hex'),
    rsa: asymmetric('03', 'rsa'),
    ec: asymmetric('04', 'ec'),
  };
}

/**
 * The keys of `to` are the keys of `from`, seen from outside custos: the AES key encrypts a random
 * block the same, the HMAC key MACs the same, and the RSA and EC keys sign so that OpenSSL
 * verifies with the SOURCE's public key (and not over other data).
 */
function proveSameKeys(from: string, to: string): void {
  const block = randomBytes(32);
  const data = randomBytes(40);
  const [a, b] = [oracle(side(from), block, data), oracle(side(to), block, data)];
  expect(b.aes, 'AES-ECB of the same block').toBe(a.aes);
  expect(b.hmac, 'HMAC-SHA256 of the same data').toBe(a.hmac);
  for (const kind of ['rsa', 'ec'] as const) {
    const pem = join(ws.dir, `pub-${randomBytes(4).toString('hex')}.pem`);
    writeFileSync(pem, a[kind].pem);
    const signature = Buffer.from(b[kind].signature, 'hex');
    expect(
      verifies(pem, data, signature),
      `${kind} signature by ${to} with ${from}'s public key`,
    ).toBe(true);
    expect(verifies(pem, randomBytes(40), signature), 'the oracle can fail').toBe(false);
  }
}

/** The shares of a bundle for custodians a and b, as restore flags. */
const quorum = (bundle: string, ids: string[] = ['a', 'b']) =>
  ids.flatMap((id) => [
    '--share',
    join(`${bundle}.shares`, `${id}.share`),
    '--identity',
    (custodians.find((c) => c.id === id) as Custodian).identity,
  ]);

/** The --json report of a restore by a quorum of the shares in `<sharesOf>.shares/`. */
const restoreReport = (bundle: string, hsm: string, ids?: string[], sharesOf = bundle) =>
  json<Restored>(
    custos(ws, ['restore', '--bundle', bundle, '--hsm', hsm, ...quorum(sharesOf, ids), '--json']),
  );

type Restored = {
  keys: { label: string; class: string; status: string; proof: string }[];
  corrected: { what: string; attributes: string[] }[];
};

function expectAllProved(out: Restored, status: 'restored' | 'present'): void {
  expect(out.keys.map((k) => `${k.label}:${k.status}`).sort()).toEqual(
    ['aes-key', 'ec-key', 'hmac-key', 'rsa-key'].map((l) => `${l}:${status}`),
  );
  for (const k of out.keys) {
    expect(k.proof, k.label).not.toBe('none');
    if (k.class === 'secret') expect(k.proof, k.label).toMatch(/rewrap/);
    else expect(k.proof, k.label).toMatch(/signature/);
  }
}

/**
 * The usage and security attributes an EC signing key was made with, as read back from an NSS
 * token.
 */
const EC_SIGNER = {
  sign: true,
  decrypt: false,
  signRecover: false,
  unwrap: false,
  derive: false,
  sensitive: true,
  extractable: true,
  private: true,
};

// ---------------------------------------------------------------- profiles

describe('a profile for NSS softoken', () => {
  it('without library-parameters the module will not start: E_HSM_MODULE says to give them, and nothing is written', () => {
    writeFileSync(
      join(ws.dir, 'no-params.yaml'),
      `hsms:\n  bare:\n    module: ${NSS_MODULE}\n    token: nss-src\n    pin: env:PIN_NSS_SRC\n`,
    );
    const before = snapshot(ws.dir);
    const r = custos(ws, [
      '--config',
      'no-params.yaml',
      'backup',
      '--hsm',
      'bare',
      '--policy',
      'policy.yaml',
      '--out',
      'never.bundle',
    ]);
    expectUserError(
      r,
      6,
      /would not initialise without parameters \(CKR_ARGUMENTS_BAD\)/,
      /E_HSM_MODULE/,
      /^custos: hint: .*library-parameters/m,
    );
    expect(r.stderr).not.toMatch(/attribute/);
    expect(snapshot(ws.dir)).toEqual(before);
  });

  it('two profiles naming the module with different library-parameters: E_CONFIG, as the module starts once per process', () => {
    const other = nssParameters([nss['nss-src'] as NssToken]);
    writeFileSync(
      join(ws.dir, 'two-params.yaml'),
      [
        'hsms:',
        `  one:\n    module: ${NSS_MODULE}\n    library-parameters: ${JSON.stringify(params)}\n    token: nss-src\n    pin: env:PIN_NSS_SRC`,
        `  two:\n    module: ${NSS_MODULE}\n    library-parameters: ${JSON.stringify(other)}\n    token: nss-dst\n    pin: env:PIN_NSS_DST`,
      ].join('\n') + '\n',
    );
    const r = custos(ws, [
      '--config',
      'two-params.yaml',
      'backup',
      '--hsm',
      'one',
      '--to-hsm',
      'two',
    ]);
    expectUserError(r, 3, /already in use in this run with other library-parameters \[E_CONFIG\]/);
  });

  it('with them, inventory lists the token (several tokens in one module), naming it by model and maker: its serial is all zero', () => {
    const r = expectOk(custos(ws, ['inventory', '--hsm', 'nss-src']));
    expect(r.stderr).toMatch(
      /token "nss-src" \(NSS 3, Mozilla Foundation; no serial number\): 7 key objects/,
    );
    const out = json(custos(ws, ['inventory', '--hsm', 'nss-src', '--json']));
    expect(out.serial).toMatch(/^0+$/);
    expect(
      out.rows
        .filter((r: { class: string }) => r.class !== 'public')
        .map((r: { label: string }) => r.label)
        .sort(),
    ).toEqual(['aes-key', 'bound-key', 'ec-key', 'hmac-key', 'rsa-key']);
  });
});

// ---------------------------------------------------------------- bundles

describe('backup and restore on NSS tokens', () => {
  let kek: Buffer;

  it("backup records AES-KEY-WRAP-KWP (RFC 5649): NSS's own AES-KEY-WRAP-PAD is not RFC 5649", () => {
    const out = json(backUp(ws, 'nss-src', 'nss.bundle', ['--json']));
    expect(out.wrap).toEqual({ mechanism: 'AES-KEY-WRAP-KWP', standard: 'RFC 5649' });
    expect(bundleBody(join(ws.dir, 'nss.bundle')).wrap).toEqual({
      mechanism: 'AES-KEY-WRAP-KWP',
      standard: 'RFC 5649',
    });
    expect(out.skipped.map((s: { label: string }) => s.label)).toEqual(['bound-key']);
  });

  it('says which token it read by model and maker: every NSS token has the serial 0000000000000000', () => {
    const r = custos(ws, [
      'backup',
      '--hsm',
      'nss-src',
      '--policy',
      'policy.yaml',
      '--out',
      'nss-named.bundle',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const text = r.stdout.replace(/\s+/g, ' ');
    expect(text).toMatch(/from token "[^"]+" \(NSS[^;]*, Mozilla Foundation; no serial number\)/);
    expect(text).not.toMatch(/serial 0{16}/);
  });

  it("outside custos: the KEK from `age -d` + secrets.js opens every blob with OpenSSL's id-aes256-wrap-pad", () => {
    const body = bundleBody(join(ws.dir, 'nss.bundle'));
    kek = combineKek(
      ws,
      ['a', 'c'].map((id) =>
        openShare(
          ws,
          join(ws.dir, 'nss.bundle.shares', `${id}.share`),
          (custodians.find((c) => c.id === id) as Custodian).identity,
        ),
      ),
    );
    expect(aesKcv(kek)).toBe(body.kek.kcv);
    for (const record of body.keys) {
      const key = kwpUnwrap(kek, Buffer.from(record.wrapped, 'base64'));
      if (record.keyType === 'AES') expect(aesKcv(key), record.label).toBe(record.checkValue.value);
      if (record.class === 'private') {
        // a PKCS#8 private key whose public half is the source token's public key
        const spki = createPublicKey(
          createPrivateKey({ key, format: 'der', type: 'pkcs8' }),
        ).export({ type: 'spki', format: 'pem' });
        expect(spki, record.label).toBe(
          readFileSync(publicPem(side('nss-src'), record.id), 'utf8'),
        );
      }
      key.fill(0);
    }
  });

  it('restore into another NSS token: every key proved; usage flags NSS turned on are set back; the keys are the same from outside', () => {
    const out = restoreReport('nss.bundle', 'nss-dst');
    expectAllProved(out, 'restored');
    expect(
      nssTool(ws, nss['nss-dst'] as NssToken, params, 'attributes', { class: 'private', id: '04' }),
    ).toEqual(EC_SIGNER);
    proveSameKeys('nss-src', 'nss-dst');
  });

  it('a second restore finds every key present (attributes as recorded), and writes nothing', () => {
    const before = nssObjects(ws, nss['nss-dst'] as NssToken, params);
    const out = restoreReport('nss.bundle', 'nss-dst', ['b', 'c']);
    expectAllProved(out, 'present');
    expect(nssObjects(ws, nss['nss-dst'] as NssToken, params)).toEqual(before);
  });

  it('across modules: a SoftHSM2 bundle into an NSS token (NSS needs CKA_NSS_DB for the EC key, and widens its flags: custos corrects them)', () => {
    json(backUp(ws, 'sh-src', 'sh.bundle', ['--json']));
    expect(bundleBody(join(ws.dir, 'sh.bundle')).wrap).toEqual({
      mechanism: 'AES-KEY-WRAP-PAD',
      standard: 'RFC 5649',
    });
    const r = expectOk(
      custos(ws, ['restore', '--bundle', 'sh.bundle', '--hsm', 'nss-x', ...quorum('sh.bundle')]),
    );
    expect(r.stderr).toMatch(
      /custos: token "nss-x" set CKA_DERIVE.* otherwise than recorded on 1 key it created \("ec-key" \(id 04\)\); custos set them as recorded/,
    );
    // as SoftHSM made it (its defaults: decrypt, sign-recover and unwrap on), not as NSS would have
    // it
    const ec = bundleBody(join(ws.dir, 'sh.bundle')).keys.find(
      (k: { label: string; class: string }) => k.label === 'ec-key' && k.class === 'private',
    );
    expect(ec.usage.derive).toBe(false);
    expect(
      nssTool(ws, nss['nss-x'] as NssToken, params, 'attributes', { class: 'private', id: '04' }),
    ).toEqual({ ...ec.usage, sensitive: true, extractable: true, private: true });
    proveSameKeys('sh-src', 'nss-x');
  });

  it('across modules: an NSS bundle into a SoftHSM2 token', () => {
    const out = restoreReport('nss.bundle', 'sh-dst', ['a', 'c']);
    expectAllProved(out, 'restored');
    expect(out.corrected).toEqual([]);
    proveSameKeys('nss-src', 'sh-dst');
  });

  it('an escrow domain on NSS: the enrolled key is made and signs inside NSS; the domain bundle restores into SoftHSM2, every key proved', () => {
    expectOk(
      custos(ws, [
        'domain',
        'init',
        '--policy',
        'policy.yaml',
        '--out',
        'nss.domain',
        '--hsm',
        'nss-src',
      ]),
    );
    const out = json(
      custos(
        ws,
        [
          'backup',
          '--hsm',
          'nss-src',
          '--domain',
          'nss.domain',
          '--out',
          'nss-domain.bundle',
          '--json',
        ],
        { input: '' },
      ),
    );
    expect(out.skipped.map((s: { label: string }) => s.label)).toEqual(['bound-key']);
    const text = readFileSync(join(ws.dir, 'nss-domain.bundle'), 'utf8');
    expect(text.startsWith('custos-bundle/2\n')).toBe(true);
    const body = JSON.parse(text.slice(text.indexOf('\n') + 1, text.indexOf('\n--- ') + 1));
    expect(text.slice(text.indexOf('\n--- ') + 1).split('\n')[0]).toMatch(
      /^--- source-ecdsa-p256 /,
    );
    expect(body.wrap).toEqual({ mechanism: 'AES-KEY-WRAP-KWP', standard: 'RFC 5649' });
    expect(body.domain.chain.map((e: { source: { label: string } }) => e.source.label)).toEqual([
      'nss-src',
    ]);
    sh['sh-dom'] = initToken(ws, 'sh-dom');
    profileFor(ws, profiles, sh['sh-dom'] as TokenRef);
    writeConfig(ws, profiles);
    const restored = restoreReport('nss-domain.bundle', 'sh-dom', ['a', 'b'], 'nss.domain');
    expectAllProved(restored, 'restored');
    proveSameKeys('nss-src', 'sh-dom');
  });
});

// ---------------------------------------------------------------- HSM to HSM

describe('HSM-to-HSM copies across modules', () => {
  type Copied = Restored & { mechanism: string; wrap: { source: string; target: string } };

  it('NSS to SoftHSM2 (backup --to-hsm): RSA-OAEP-SHA1, each token with its own RFC 5649 mechanism', () => {
    const r = custos(ws, ['backup', '--hsm', 'nss-src', '--to-hsm', 'sh-copy', '--json']);
    const out = json<Copied>(r);
    expect(r.stderr).toMatch(/^custos: transport: RSA-OAEP-SHA1 \+ AES-KWP$/m);
    expect(out.wrap).toEqual({ source: 'AES-KEY-WRAP-KWP', target: 'AES-KEY-WRAP-PAD' });
    expectAllProved(out, 'restored');
    proveSameKeys('nss-src', 'sh-copy');
  });

  it('NSS to NSS: RSA-OAEP with SHA-256, both tokens in one module', () => {
    const r = custos(ws, ['backup', '--hsm', 'nss-src', '--to-hsm', 'nss-copy', '--json']);
    const out = json<Copied>(r);
    expect(out.mechanism).toBe('RSA-OAEP-SHA256 + AES-KWP');
    expect(out.wrap).toEqual({ source: 'AES-KEY-WRAP-KWP', target: 'AES-KEY-WRAP-KWP' });
    expectAllProved(out, 'restored');
    proveSameKeys('nss-src', 'nss-copy');
    // and a copy onto itself is refused: same module, same slot (the serials, all zero, could not
    // tell)
    expectUserError(
      custos(ws, ['backup', '--hsm', 'nss-src', '--to-hsm', 'nss-src']),
      2,
      /the source and the target of the copy are the same token \("nss-src"\)/,
    );
  });

  it('SoftHSM2 to NSS (restore --from-hsm), then again: every key present', () => {
    const out = json<Copied>(
      custos(ws, ['restore', '--from-hsm', 'sh-src', '--hsm', 'nss-back', '--json']),
    );
    expect(out.mechanism).toBe('RSA-OAEP-SHA1 + AES-KWP');
    expectAllProved(out, 'restored');
    proveSameKeys('sh-src', 'nss-back');
    expectAllProved(
      json<Copied>(custos(ws, ['restore', '--from-hsm', 'sh-src', '--hsm', 'nss-back', '--json'])),
      'present',
    );
  });
});

// ---------------------------------------------------------------- escrow-pin and ceremonies

describe('escrow-pin and ceremony close on NSS tokens', () => {
  const escrowConfig = () => {
    // the same profiles, with nss-back opened by its escrowed PIN
    const text = readFileSync(join(ws.dir, 'custos.yaml'), 'utf8').replace(
      /( {2}nss-back:\n(?: {4}.*\n)*? {4}pin: )env:PIN_NSS_BACK/,
      '$1escrow:escrow-nss',
    );
    writeFileSync(join(ws.dir, 'escrowed.yaml'), text);
    return text;
  };
  const identities = (ids: string[]) =>
    ids.flatMap((id) => [
      '--escrow-identity',
      (custodians.find((c) => c.id === id) as Custodian).identity,
    ]);

  it('escrow-pin gives the NSS token a fresh 52-character PIN (NSS has no security officer: it is set with C_SetPIN); the old PIN stops working', () => {
    const t = nss['nss-back'] as NssToken;
    const out = json(
      custos(ws, [
        'escrow-pin',
        '--hsm',
        'nss-back',
        '--policy',
        'policy.yaml',
        '--out',
        'escrow-nss',
        '--json',
      ]),
    );
    expect(out.pinLength).toBe(52);
    expect(nssLogsIn(ws, t, params, t.pin)).toBe(false);
    // outside custos: age + secrets.js + base32 give the PIN, and it logs in
    const record = bundleBody(join(ws.dir, 'escrow-nss', 'pin-escrow.bundle'));
    expect(record.escrowOf).toMatchObject({
      tokenLabel: 'nss-back',
      tokenSerial: '0000000000000000',
    });
    const seed = combineKek(
      ws,
      ['a', 'b'].map((id) =>
        openShare(
          ws,
          join(ws.dir, 'escrow-nss', `${id}.share`),
          (custodians.find((c) => c.id === id) as Custodian).identity,
        ),
      ),
    );
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bits = [...seed].map((x) => x.toString(2).padStart(8, '0')).join('');
    let pin = '';
    for (let i = 0; i < bits.length; i += 5)
      pin += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
    pin = pin.slice(0, 52);
    ws.secrets.add(pin);
    expect(nssLogsIn(ws, t, params, pin)).toBe(true);
  });

  it('with pin: escrow:DIR, two custodians open it: a copy out of it into a token holding the same keys finds every key present', () => {
    escrowConfig();
    // nss-back and nss-x both hold sh-src's keys (a copy and a bundle restore)
    const out = json<Restored>(
      custos(ws, [
        '--config',
        'escrowed.yaml',
        'restore',
        '--from-hsm',
        'nss-back',
        '--hsm',
        'nss-x',
        ...identities(['a', 'c']),
        '--json',
      ]),
    );
    expectAllProved(out, 'present');
  });

  it('a PIN-escrow drill ceremony closes against the NSS token (matched by label, model and maker: the serial is all zero)', () => {
    escrowConfig();
    json(
      custos(ws, [
        '--config',
        'escrowed.yaml',
        'ceremony',
        'open',
        '--pin-escrow',
        'escrow-nss',
        '--purpose',
        'drill',
        '--out',
        'pin-drill.ceremony',
        '--json',
      ]),
    );
    const inbox = submit('pin-drill.ceremony', (id) => join('escrow-nss', `${id}.share`), [
      'b',
      'c',
    ]);
    expectOk(
      custos(ws, ['--config', 'escrowed.yaml', 'ceremony', 'add', 'pin-drill.ceremony', ...inbox]),
    );
    const r = expectOk(
      custos(ws, [
        '--config',
        'escrowed.yaml',
        'ceremony',
        'close',
        'pin-drill.ceremony',
        '--hsm',
        'nss-back',
      ]),
    );
    expect(r.stdout).toMatch(
      /drill passed: the reassembled PIN opens token "nss-back" .*which holds 4 keys; nothing was changed/,
    );
  });

  it('a restore ceremony of the NSS bundle closes into an empty NSS token, every key proved and the same from outside', () => {
    json(
      custos(ws, [
        'ceremony',
        'open',
        '--bundle',
        'nss.bundle',
        '--purpose',
        'restore',
        '--out',
        'restore.ceremony',
        '--json',
      ]),
    );
    const inbox = submit('restore.ceremony', (id) => join('nss.bundle.shares', `${id}.share`), [
      'a',
      'b',
    ]);
    expectOk(custos(ws, ['ceremony', 'add', 'restore.ceremony', ...inbox]));
    const out = json(
      custos(ws, ['ceremony', 'close', 'restore.ceremony', '--hsm', 'nss-cer', '--json']),
    );
    expect(out.outcome.kind).toBe('restore');
    expect(
      out.outcome.results[0].keys
        .map((k: { record: { label: string }; status: string }) => `${k.record.label}:${k.status}`)
        .sort(),
    ).toEqual(['aes-key:restored', 'ec-key:restored', 'hmac-key:restored', 'rsa-key:restored']);
    proveSameKeys('nss-src', 'nss-cer');
  });

  /** Each custodian seals a submission from their own directory, as on their own machine. */
  function submit(ceremony: string, shareOf: (id: string) => string, ids: string[]): string[] {
    return ids.map((id) => {
      const c = custodians.find((x) => x.id === id) as Custodian;
      const dir = join(ws.dir, 'machines', `${id}-${ceremony}`);
      mkdirSync(dir, { recursive: true });
      const out = join(dir, `${id}.submission`);
      expectOk(
        custos(
          ws,
          [
            'share',
            'submit',
            '--ceremony',
            join(ws.dir, ceremony),
            '--share',
            join(ws.dir, shareOf(id)),
            '--identity',
            c.identity,
            '--out',
            out,
            '--yes',
          ],
          { cwd: dir },
        ),
      );
      return out;
    });
  }
});

// ---------------------------------------------------------------- a token without RFC 5649

describe('a token that offers no RFC 5649 key wrap', () => {
  it("is refused with E_MECHANISM, each candidate's result and what the token offers instead; nothing is written", () => {
    // SoftHSM2 with an allow-list like opencryptoki 3.8's: AES and RSA, but no AES key wrap with
    // padding
    const dir = join(ws.dir, 'nowrap');
    mkdirSync(join(dir, 'tokens'), { recursive: true });
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(
      conf,
      `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n` +
        'slots.mechanisms = CKM_AES_KEY_GEN,CKM_AES_ECB,CKM_AES_CBC,CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_RSA_PKCS,CKM_SHA256_RSA_PKCS,CKM_AES_KEY_WRAP\n',
    );
    const t = initToken(ws, 'nowrap', conf);
    makeKey(ws, t, { kind: 'aes', label: 'k', id: '01' });
    writeFileSync(
      join(ws.dir, 'nowrap.yaml'),
      `hsms:\n  nowrap:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token: nowrap\n    pin: env:PIN_NOWRAP\n`,
    );
    const before = snapshot(ws.dir);
    const r = custos(
      ws,
      [
        '--config',
        'nowrap.yaml',
        'backup',
        '--hsm',
        'nowrap',
        '--policy',
        'policy.yaml',
        '--out',
        'nowrap.bundle',
      ],
      { conf, env: { PIN_NOWRAP: t.pin } },
    );
    expectUserError(
      r,
      6,
      /token "nowrap" cannot wrap keys as RFC 5649 \(AES key wrap with padding\) \[E_MECHANISM\]/,
    );
    expect(r.stderr).toMatch(/CKM_AES_KEY_WRAP_KWP \(0x210b\): not offered/);
    expect(r.stderr).toMatch(/CKM_AES_KEY_WRAP_PAD \(0x210a\): .*CKR_MECHANISM_INVALID/);
    expect(r.stderr).toMatch(
      /token "nowrap" offers for wrapping keys: .*CKM_RSA_PKCS \(wrap, unwrap\)/,
    );
    expect(r.stderr).toMatch(
      /token "nowrap" offers for wrapping keys: .*CKM_AES_KEY_WRAP \(wrap, unwrap\)/,
    );
    expect(snapshot(ws.dir)).toEqual(before);
  });
});

describe('no secret in any output', () => {
  it('no PIN, share value, identity or KEK appears in any custos output', () => {
    expectNoSecrets(ws);
  });
});
