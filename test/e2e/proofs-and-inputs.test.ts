/**
 * Recently fixed behaviours, each against real SoftHSM2 tokens:
 * - restore proves secret keys that SoftHSM cannot give a check value for after unwrap (an AES key
 *   that may not encrypt, a generic secret that may not sign) by re-wrapping them, and the bundle's
 *   recorded KCV is checked from outside (age CLI + secrets.js-grempe + OpenSSL KWP);
 * - a key whose CKA_LABEL is not UTF-8 is skipped with a reason, the others are backed up;
 * - `pin: file:RELATIVE` and a relative `module:` in custos.yaml are taken from the file's own
 *   directory, whatever the cwd; an absolute `module:` is kept as written;
 * - every `custos: error:` line ends with its [E_CODE], with the exit status of docs/errors.md;
 * - a damaged share file among a full quorum is named as damaged in a warning, and the restore
 * runs;
 * - `shares verify` names a share from another backup as `<path>: belongs to another backup`.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  MODULE,
  ROOT,
  TIMEOUT,
  aesKcv,
  bundleBody,
  cleanup,
  combineKek,
  custos,
  describeRun,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  json,
  kwpUnwrap,
  listObjects,
  makeKey,
  mustRun,
  newPin,
  objectCount,
  openShare,
  secretKeyArgs,
  p11Raw,
  profileFor,
  proofsByLabel,
  slotOf,
  snapshot,
  toolEnv,
  withPkcs11js,
  writeConfig,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backUp, sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let source: TokenRef;
let target: TokenRef;
let custodians: Custodian[];
let backupOut: any;
let body: any;
let profiles: Profile[];
const share = (bundle: string, id: string) => `${bundle}.shares/${id}.share`;
const identity = (id: string) => custodians.find((c) => c.id === id)!.identity;

/**
 * Generates a secret key with pkcs11js directly, in a child process, with every usage flag set
 * explicitly (pkcs11-tool 0.23 ignores --usage-* for secret keys: it always sets encrypt/decrypt).
 */
function generateSecret(
  token: TokenRef,
  spec: { keyType: 'AES' | 'GENERIC'; label: Buffer; id: string; usage: Record<string, boolean> },
): void {
  withPkcs11js(
    ws,
    token,
    'keygen',
    { ...spec, label: spec.label.toString('hex') },
    `
      const aes = spec.keyType === 'AES';
      lib.C_GenerateKey(s, { mechanism: aes ? P.CKM_AES_KEY_GEN : P.CKM_GENERIC_SECRET_KEY_GEN, parameter: null }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
        { type: P.CKA_KEY_TYPE, value: aes ? P.CKK_AES : P.CKK_GENERIC_SECRET },
        { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: true },
        { type: P.CKA_LABEL, value: Buffer.from(spec.label, 'hex') },
        { type: P.CKA_ID, value: Buffer.from(spec.id, 'hex') },
        ...Object.entries(flag).map(([k, t]) => ({ type: t, value: !!spec.usage[k] })),
      ]);`,
  );
}

/** Runs a pkcs11-tool operation on 16 zero bytes; returns the result. */
function operate(token: TokenRef, args: string[]) {
  const input = join(ws.dir, 'zero16.bin');
  writeFileSync(input, Buffer.alloc(16));
  return p11Raw(ws, token, [...args, '-i', input, '-o', join(ws.dir, 'op-out.bin')]);
}

const encryptWith = (id: string) => secretKeyArgs('--encrypt', 'AES-ECB', id);
const hmacWith = (id: string) => secretKeyArgs('--sign', 'SHA256-HMAC', id);

function expectRefused(token: TokenRef, args: string[]): void {
  const r = operate(token, args);
  expect(r.status, `pkcs11-tool ${args.join(' ')} should be refused`).not.toBe(0);
  // refused for its usage flags, not for its type or anything else
  expect(r.stderr.toString()).toMatch(/CKR_KEY_FUNCTION_NOT_PERMITTED/);
}

function expectAllowed(token: TokenRef, args: string[]): void {
  const r = operate(token, args);
  expect(r.status, `pkcs11-tool ${args.join(' ')}: ${r.stderr.toString()}`).toBe(0);
}

function restore(
  bundle: string,
  hsm: string,
  shares: string[],
  ids: string[],
  extra: string[] = [],
  cwd?: string,
): Run {
  return custos(
    ws,
    [
      'restore',
      '--bundle',
      bundle,
      '--hsm',
      hsm,
      ...extra,
      ...shares.flatMap((s) => ['--share', s]),
      ...ids.flatMap((id) => ['--identity', identity(id)]),
    ],
    { cwd },
  );
}

/** A restore from these custodians' shares of the bundle, opened with their identities. */
const restoreFrom = (bundle: string, hsm: string, ids: string[], extra: string[] = []) =>
  restore(
    bundle,
    hsm,
    ids.map((id) => share(bundle, id)),
    ids,
    extra,
  );

const record = (label: string) => {
  const r = body.keys.find((k: { label: string }) => k.label === label);
  expect(r, `bundle record of ${label}`).toBeDefined();
  return r;
};

beforeAll(() => {
  ({ ws, source, target, custodians, profiles } = sourceAndTarget({
    workspace: 'proofs',
    source: 'vault',
    target: 'rebuild',
    standardKeys: false,
    custodians: ['r1', 'r2', 'r3'],
    threshold: 2,
  }));
  // an AES-256 key that may wrap but not encrypt: SoftHSM cannot compute its KCV after unwrap
  generateSecret(source, {
    keyType: 'AES',
    label: Buffer.from('wrap-only-aes'),
    id: '21',
    usage: { wrap: true, unwrap: true },
  });
  // a generic secret that may not sign (pkcs11-tool would set CKA_SIGN, though -O does not show it)
  generateSecret(source, {
    keyType: 'GENERIC',
    label: Buffer.from('nosign-secret'),
    id: '22',
    usage: { encrypt: true, decrypt: true, verify: true, wrap: true, unwrap: true },
  });
  // an ordinary AES key, which SoftHSM can prove both ways
  makeKey(ws, source, { kind: 'aes', label: 'plain-aes', id: '23' });
  // a key whose label is not UTF-8, made by pkcs11-tool through a shell printf
  mustRun(
    'bash',
    [
      '-c',
      'pkcs11-tool --module "$1" --slot "$2" --login --pin "$PIN" --keygen --key-type AES:32 --label "$(printf \'bad\\xff\')" --id 24 --extractable --sensitive',
      'keygen',
      MODULE,
      slotOf(ws, source),
    ],
    { env: { ...toolEnv(ws, source.conf), PIN: source.pin }, cwd: ws.dir },
  );
  backupOut = json(backUp(ws, 'vault', 'main.bundle', ['--json']));
  body = bundleBody(join(ws.dir, 'main.bundle'));
});

afterAll(() => cleanup(ws));

describe('keys SoftHSM cannot give a check value for after unwrap are proved by re-wrap', () => {
  it('the source keys are what the test means: the AES key may not encrypt, the generic secret may not sign (pkcs11-tool)', () => {
    const objects = listObjects(ws, source);
    const aes = objects.find((o) => o.label === 'wrap-only-aes');
    const gen = objects.find((o) => o.label === 'nosign-secret');
    expect(aes?.kind).toBe('Secret Key');
    expect(aes?.usage.split(', ')).not.toContain('encrypt');
    expect(aes?.usage.split(', ')).toContain('wrap');
    expect(aes?.access).toMatch(/\bsensitive\b.*\bextractable\b/);
    expect(gen?.access).toMatch(/\bsensitive\b.*\bextractable\b/);
    // pkcs11-tool -O never lists "sign" for secret keys, so ask the token to do it instead
    expectRefused(source, encryptWith('21'));
    expectRefused(source, hmacWith('22'));
    // control: the same operation with an AES key that may encrypt succeeds
    expectAllowed(source, encryptWith('23'));
  });

  it('backup records both keys, the AES one with its AES-ECB KCV', () => {
    const labels = backupOut.keys.map((k: { label: string }) => k.label).sort();
    expect(labels).toEqual(['nosign-secret', 'plain-aes', 'wrap-only-aes']);
    expect(record('wrap-only-aes').usage.encrypt).not.toBe(true);
    expect(record('wrap-only-aes').checkValue.method).toBe('aes-ecb-zero');
    expect(record('wrap-only-aes').checkValue.value).toMatch(/^[0-9a-f]{6}$/);
    expect(record('nosign-secret').usage.sign).toBe(false);
    expect(record('nosign-secret').checkValue.method).not.toBe('hmac-sha256');
  });

  it('restore succeeds and proves them by re-wrap; the restored AES key still may not encrypt', () => {
    expect(objectCount(ws, target)).toBe(0);
    const r = restoreFrom('main.bundle', 'rebuild', ['r1', 'r3'], ['--json']);
    expect(r.status, describeRun(r)).toBe(0);
    const out = JSON.parse(r.stdout);
    const proofs = proofsByLabel(out);
    expect(proofs['wrap-only-aes']).toMatch(/^restored\/(rewrap|check value \+ rewrap)$/);
    expect(proofs['nosign-secret']).toMatch(/^restored\/(rewrap|check value \+ rewrap)$/);
    expect(proofs['plain-aes']).toMatch(/^restored\/check value( \+ rewrap)?$/);
    expect(r.stderr).not.toMatch(/not proved/);
    expectRefused(target, encryptWith('21'));
    expectRefused(target, hmacWith('22'));
    const restored = listObjects(ws, target);
    expect(restored.map((o) => o.label).sort()).toEqual([
      'nosign-secret',
      'plain-aes',
      'wrap-only-aes',
    ]);
    expect(restored.find((o) => o.label === 'wrap-only-aes')?.usage.split(', ')).not.toContain(
      'encrypt',
    );
  });

  it('outside check: the KEK from `age -d` + secrets.js unwraps the AES blob (OpenSSL KWP) to a key with the recorded KCV', () => {
    const texts = ['r1', 'r2'].map((id) =>
      openShare(ws, join(ws.dir, share('main.bundle', id)), identity(id)),
    );
    const kek = combineKek(ws, texts);
    expect(aesKcv(kek)).toBe(body.kek.kcv);
    const aes = kwpUnwrap(kek, Buffer.from(record('wrap-only-aes').wrapped, 'base64'));
    expect(aes.length).toBe(32);
    expect(aesKcv(aes)).toBe(record('wrap-only-aes').checkValue.value);
    const plain = kwpUnwrap(kek, Buffer.from(record('plain-aes').wrapped, 'base64'));
    expect(aesKcv(plain)).toBe(record('plain-aes').checkValue.value);
    // the generic secret's recorded value is SoftHSM's own CKA_CHECK_VALUE: SHA-1 of the key, 3
    // bytes
    const generic = kwpUnwrap(kek, Buffer.from(record('nosign-secret').wrapped, 'base64'));
    expect(generic.length).toBe(32);
    expect(record('nosign-secret').checkValue).toEqual({
      method: 'token',
      value: createHash('sha1').update(generic).digest('hex').slice(0, 6),
    });
    generic.fill(0);
    aes.fill(0);
    plain.fill(0);
  });

  it('a second restore into the same token finds both keys present, again proved by re-wrap', () => {
    const objects = listObjects(ws, target);
    const out = json(restoreFrom('main.bundle', 'rebuild', ['r2', 'r3'], ['--json']));
    const proofs = proofsByLabel(out);
    expect(proofs['wrap-only-aes']).toMatch(/^present\/(rewrap|check value \+ rewrap)$/);
    expect(proofs['nosign-secret']).toMatch(/^present\/(rewrap|check value \+ rewrap)$/);
    expect(listObjects(ws, target)).toEqual(objects);
  });

  it('the re-wrap proof can fail: another key under the same label and id (also without a check value) is a conflict', () => {
    // a second source token with a different wrap-only AES key under the same label and id
    const twin = initToken(ws, 'twin');
    generateSecret(twin, {
      keyType: 'AES',
      label: Buffer.from('wrap-only-aes'),
      id: '21',
      usage: { wrap: true, unwrap: true },
    });
    profileFor(ws, profiles, twin, 'twin');
    writeConfig(ws, profiles);
    const twinOut = json(backUp(ws, 'twin', 'twin.bundle', ['--json']));
    expect(twinOut.keys.map((k: { label: string }) => k.label)).toEqual(['wrap-only-aes']);
    expect(twinOut.keys[0].checkValue.value).not.toBe(record('wrap-only-aes').checkValue.value);
    // 'rebuild' holds main.bundle's wrap-only-aes, unwrapped there: no check value SoftHSM can
    // give,
    // so only the re-wrap under twin.bundle's KEK can tell the keys apart
    const objects = listObjects(ws, target);
    const r = restoreFrom('twin.bundle', 'rebuild', ['r1', 'r2']);
    const line = expectUserError(r, 7);
    expect(line).toMatch(
      /1 object on token "rebuild" conflicts with the bundle; nothing was written \[E_CONFLICT\]$/,
    );
    expect(r.stderr).toMatch(/^custos: {3}"wrap-only-aes" \(id 21\)/m);
    expect(listObjects(ws, target)).toEqual(objects);
  });
});

describe('a key whose label is not UTF-8', () => {
  it('is in the backup --json skipped list with a reason naming UTF-8, and the other keys are backed up', () => {
    // the label on the token really is bytes that are not UTF-8 (pkcs11-tool's listing decodes to
    // U+FFFD)
    expect(listObjects(ws, source).find((o) => o.id === '24')?.label).toBe('bad\ufffd');
    const skipped = backupOut.skipped.filter((s: { id: string }) => s.id === '24');
    expect(skipped, JSON.stringify(backupOut.skipped)).toHaveLength(1);
    expect(skipped[0].class).toBe('secret');
    expect(skipped[0].reason).toMatch(/UTF-8/);
    expect(backupOut.keys.some((k: { id: string }) => k.id === '24')).toBe(false);
    expect(body.keys.some((k: { id: string }) => k.id === '24')).toBe(false);
    expect(backupOut.keys).toHaveLength(3);
  });

  it('a table-mode backup warns that it skipped the key, with the UTF-8 reason', () => {
    const r = backUp(ws, 'vault', 'table.bundle');
    expect(r.stderr).toMatch(/^custos: warning: skipped secret key .*\(id 24\): .*UTF-8/m);
    expect(r.stdout).toMatch(/3 keys backed up, 1 skipped/);
  });
});

describe('paths in custos.yaml are relative to the file, not to the cwd', () => {
  let confDir: string;
  let elsewhere: string;

  beforeAll(() => {
    confDir = join(ws.dir, 'conf-a');
    elsewhere = join(ws.dir, 'cwd-b');
    mkdirSync(join(confDir, 'lib'), { recursive: true });
    mkdirSync(elsewhere);
    writeFileSync(join(confDir, 'vault.pin'), `${source.pin}\n`, { mode: 0o600 });
    chmodSync(join(confDir, 'vault.pin'), 0o600);
    symlinkSync(MODULE, join(confDir, 'lib', 'pkcs11.so'));
    writeFileSync(
      join(confDir, 'custos.yaml'),
      [
        'hsms:',
        '  filepin:',
        `    module: ${MODULE}`,
        '    token: vault',
        '    pin: file:vault.pin',
        '  relmodule:',
        '    module: lib/pkcs11.so',
        '    token: vault',
        '    pin: file:./vault.pin',
        '  missingpin:',
        `    module: ${MODULE}`,
        '    token: vault',
        '    pin: file:absent.pin',
        '  nomodule:',
        '    module: /nonexistent-custos-dir/libpkcs11.so',
        '    token: vault',
        '    pin: file:vault.pin',
        '',
      ].join('\n'),
    );
  });

  const run = (hsm: string) =>
    custos(ws, ['--config', '../conf-a/custos.yaml', 'inventory', '--hsm', hsm, '--json'], {
      cwd: elsewhere,
    });

  it("pin: file:vault.pin is read from the yaml's directory when custos runs elsewhere", () => {
    const r = run('filepin');
    const out = json(r);
    expect(out.rows.map((x: { label: string }) => x.label)).toEqual(
      expect.arrayContaining(['wrap-only-aes', 'nosign-secret', 'plain-aes']),
    );
    expect(r.stderr).not.toMatch(/chmod/);
  });

  it("a relative module: is taken from the yaml's directory too", () => {
    json(run('relmodule'));
  });

  it("a missing relative PIN file is named by its path under the yaml's directory", () => {
    const r = run('missingpin');
    const line = expectUserError(r, 3);
    expect(line).toContain(join(confDir, 'absent.pin'));
    expect(line).not.toContain(join(elsewhere, 'absent.pin'));
    expect(line).toMatch(/does not exist \[E_FILE\]$/);
  });

  it('an absolute module: stays exactly as written', () => {
    const r = run('nomodule');
    const line = expectUserError(r, 6);
    expect(line).toBe(
      'custos: error: PKCS#11 module /nonexistent-custos-dir/libpkcs11.so does not exist [E_HSM_MODULE]',
    );
  });
});

describe('error lines end with their code, and exit statuses follow docs/errors.md', () => {
  // the Status column of docs/errors.md's exit status table, read from the document itself
  const documented = new Map<string, number>();
  const expected = {
    E_QUORUM: 5,
    E_TOKEN_NOT_FOUND: 6,
    E_PIN_INCORRECT: 6,
    E_BUNDLE_TAMPERED: 4,
    E_CONFLICT: 7,
    E_EXISTS: 3,
  } as const;

  beforeAll(() => {
    const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
    for (const line of doc.split('\n')) {
      const row = /^\|\s*(\d)\s*\|[^|]*\|([^|]*)\|$/.exec(line);
      if (!row) continue;
      for (const code of row[2]!.matchAll(/`(E_[A-Z_]+)`/g))
        documented.set(code[1]!, Number(row[1]));
    }
  });

  function expectCoded(r: Run, code: keyof typeof expected): string {
    expect(documented.get(code), `${code} in docs/errors.md`).toBe(expected[code]);
    const line = expectUserError(r, expected[code]);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('custos: error:'));
    expect(errors, describeRun(r)).toHaveLength(1);
    expect(line.endsWith(` [${code}]`), `${line}\nshould end with [${code}]`).toBe(true);
    return line;
  }

  it('E_QUORUM: one share of a 2-of-3 split', () => {
    const scratch = initToken(ws, 'quorum-target');
    profileFor(ws, profiles, scratch, 'quorum-target');
    writeConfig(ws, profiles);
    const line = expectCoded(restoreFrom('main.bundle', 'quorum-target', ['r2']), 'E_QUORUM');
    expect(line).toMatch(/1 of 2 shares accepted: 1 more needed/);
    expect(objectCount(ws, scratch)).toBe(0);
  });

  it('E_TOKEN_NOT_FOUND: a profile naming a token that is not there', () => {
    profiles.push({ name: 'ghost', token: 'no-such-token', pinVar: 'PIN_VAULT' });
    writeConfig(ws, profiles);
    const line = expectCoded(custos(ws, ['inventory', '--hsm', 'ghost']), 'E_TOKEN_NOT_FOUND');
    expect(line).toMatch(/no token labelled "no-such-token"/);
  });

  it('E_PIN_INCORRECT: a wrong PIN', () => {
    const probe = initToken(ws, 'pin-probe');
    ws.env.WRONG_PIN = newPin(ws);
    profiles.push({ name: 'badpin', token: probe.label, pinVar: 'WRONG_PIN' });
    writeConfig(ws, profiles);
    const line = expectCoded(custos(ws, ['inventory', '--hsm', 'badpin']), 'E_PIN_INCORRECT');
    expect(line).toMatch(/the PIN was not accepted/);
  });

  it('E_BUNDLE_TAMPERED: a bundle with one character of its body changed', () => {
    const text = readFileSync(join(ws.dir, 'main.bundle'), 'utf8');
    const at = text.indexOf('"label": "plain-aes"') + 10;
    expect(at).toBeGreaterThan(10);
    writeFileSync(join(ws.dir, 'edited.bundle'), `${text.slice(0, at)}P${text.slice(at + 1)}`);
    const before = objectCount(ws, target);
    const line = expectCoded(
      restore(
        'edited.bundle',
        'rebuild',
        [share('main.bundle', 'r1'), share('main.bundle', 'r2')],
        ['r1', 'r2'],
      ),
      'E_BUNDLE_TAMPERED',
    );
    expect(line).toMatch(/edited\.bundle/);
    expect(objectCount(ws, target)).toBe(before);
  });

  it("E_CONFLICT: a target holding another key under a bundle key's label and id", () => {
    const lookalike = initToken(ws, 'lookalike');
    profileFor(ws, profiles, lookalike, 'lookalike');
    writeConfig(ws, profiles);
    makeKey(ws, lookalike, { kind: 'aes', label: 'plain-aes', id: '23' });
    const line = expectCoded(restoreFrom('main.bundle', 'lookalike', ['r1', 'r2']), 'E_CONFLICT');
    expect(line).toMatch(/1 objects? on token "lookalike" conflicts? with the bundle/);
    expect(objectCount(ws, lookalike)).toBe(1);
  });

  it('E_EXISTS: a backup onto an existing bundle', () => {
    const files = snapshot(ws.dir);
    const line = expectCoded(
      custos(ws, ['backup', '--hsm', 'vault', '--policy', 'policy.yaml', '--out', 'main.bundle']),
      'E_EXISTS',
    );
    expect(line).toMatch(/refusing to overwrite .*main\.bundle/);
    expect(snapshot(ws.dir)).toEqual(files);
  });
});

describe('a damaged share file', () => {
  let damaged: string;

  beforeAll(() => {
    mkdirSync(join(ws.dir, 'incoming'));
    const armored = readFileSync(join(ws.dir, share('main.bundle', 'r1')), 'utf8');
    expect(armored.startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n')).toBe(true);
    // cut the armor in the middle of its base64, losing the rest and the END line
    damaged = join('incoming', 'r1-cut.share');
    writeFileSync(join(ws.dir, damaged), armored.slice(0, Math.floor(armored.length / 2)));
    copyFileSync(join(ws.dir, share('main.bundle', 'r2')), join(ws.dir, 'incoming', 'r2.share'));
    copyFileSync(join(ws.dir, share('main.bundle', 'r3')), join(ws.dir, 'incoming', 'r3.share'));
  });

  it('among a full quorum of good ones: the restore succeeds and a warning names the file as damaged', () => {
    const fresh = initToken(ws, 'after-damage');
    profileFor(ws, profiles, fresh, 'after-damage');
    writeConfig(ws, profiles);
    const r = restore(
      'main.bundle',
      'after-damage',
      [damaged, 'incoming/r2.share', 'incoming/r3.share'],
      ['r1', 'r2', 'r3'],
    );
    expectOk(r);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('custos: warning:'));
    const named = warnings.filter((l) => l.includes(damaged));
    expect(named, describeRun(r)).toHaveLength(1);
    expect(named[0]).toMatch(/damaged/);
    expect(warnings.filter((l) => l.includes('r2.share') || l.includes('r3.share'))).toEqual([]);
    expect(r.stdout).toMatch(/3 keys restored/);
    expect(objectCount(ws, fresh)).toBe(3);
  });

  it('with only one good share: E_QUORUM, and the detail line names the damaged file', () => {
    const r = restore('main.bundle', 'quorum-target', [damaged, 'incoming/r2.share'], ['r1', 'r2']);
    const line = expectUserError(r, 5);
    expect(line).toMatch(/\[E_QUORUM\]$/);
    expect(r.stderr).toMatch(
      new RegExp(`^custos: {3}rejected ${damaged.replace(/[.]/g, '\\.')}: .*damaged`, 'm'),
    );
    expect(r.stderr).toMatch(/^custos: {3}accepted incoming\/r2\.share \(custodian r2\)$/m);
  });
});

describe('shares verify with a share from another backup', () => {
  it('prints `<path>: belongs to another backup …` and exits 4', () => {
    const other = json(backUp(ws, 'vault', 'other.bundle', ['--json']));
    expect(other.bundleId).not.toBe(body.bundleId);
    // sanity: the same share verifies against its own bundle
    expectOk(
      custos(ws, [
        'shares',
        'verify',
        '--bundle',
        'other.bundle',
        '--share',
        share('other.bundle', 'r2'),
        '--identity',
        identity('r2'),
      ]),
    );
    const r = custos(ws, [
      'shares',
      'verify',
      '--bundle',
      'main.bundle',
      '--share',
      share('other.bundle', 'r2'),
      '--identity',
      identity('r2'),
    ]);
    const line = expectUserError(r, 4);
    expect(line).toBe(
      `custos: error: ${share('other.bundle', 'r2')}: belongs to another backup (bundle ${other.bundleId}, not ${body.bundleId}) [E_SHARE_REJECTED]`,
    );
  });
});

describe('secrets', () => {
  it('no PIN, identity, share value or KEK appears in any output', () => {
    expectNoSecrets(ws);
  });
});
