/**
 * Bad input, each against real tokens: the exit status, a `custos: error:` line that names the
 * problem, no stack trace, no data on stdout, the target token's object count unchanged (by
 * pkcs11-tool -O), and no new or changed file anywhere in the working directory.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  TIMEOUT,
  ageEncrypt,
  cleanup,
  custos,
  errorLine,
  exists,
  expectNoSecrets,
  expectOk,
  expectUserError,
  initToken,
  objectCount,
  openShare,
  profileFor,
  shareValue,
  snapshot,
  writeConfig,
  type Custodian,
  type Profile,
  type Run,
  type TokenRef,
  type Workspace,
} from './helpers.js';
import { backUp, backupArgs, sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let source: TokenRef;
let target: TokenRef;
let k: Custodian[];
let profiles: Profile[];

const share = (bundle: string, id: string) => `${bundle}.shares/${id}.share`;

beforeAll(() => {
  ({
    ws,
    source,
    target,
    custodians: k,
    profiles,
  } = sourceAndTarget({
    workspace: 'reject',
    source: 'keystore',
    target: 'recovery',
    custodians: ['k1', 'k2', 'k3', 'k4'],
    threshold: 3,
  }));
  profiles.push({ name: 'ghost', token: 'no-such-token', pinVar: 'PIN_RECOVERY' });
  profiles.push({ name: 'badpin', token: 'recovery', pinVar: 'WRONG_PIN' });
  profiles.push({ name: 'nopin', token: 'recovery', pinVar: 'UNSET_PIN_VARIABLE' });
  ws.env.WRONG_PIN = `pin-wrong-${Date.now().toString(16)}`;
  ws.secrets.add(ws.env.WRONG_PIN);
  writeConfig(ws, profiles);
  backUp(ws, 'keystore', 'vault.bundle');
  backUp(ws, 'keystore', 'other.bundle');
  for (const c of k) openShare(ws, join(ws.dir, share('vault.bundle', c.id)), c.identity);
  expect(objectCount(ws, target)).toBe(0);
});

afterAll(() => cleanup(ws));

/** Runs `fn`, and checks the working directory and both tokens are exactly as they were. */
function unchanged(fn: () => Run): Run {
  const files = snapshot(ws.dir);
  const counts = [objectCount(ws, source), objectCount(ws, target)];
  const r = fn();
  expect(snapshot(ws.dir), 'files in the working directory').toEqual(files);
  expect(
    [objectCount(ws, source), objectCount(ws, target)],
    'objects on the source and target tokens',
  ).toEqual(counts);
  return r;
}

function restore(bundle: string, shares: string[], identities: Custodian[], hsm = 'recovery'): Run {
  return custos(ws, [
    'restore',
    '--bundle',
    bundle,
    '--hsm',
    hsm,
    ...shares.flatMap((s) => ['--share', s]),
    ...identities.flatMap((c) => ['--identity', c.identity]),
  ]);
}

const quorum = () => ['k1', 'k2', 'k3'].map((id) => share('vault.bundle', id));
const quorumIds = () => k.slice(0, 3);

/** A restore of vault.bundle from k1's and k2's shares and `third`: the third is rejected. */
function thirdRejected(third: string): Run {
  const r = unchanged(() =>
    restore(
      'vault.bundle',
      [share('vault.bundle', 'k1'), share('vault.bundle', 'k2'), third],
      quorumIds(),
    ),
  );
  expect(expectUserError(r, 5)).toMatch(/2 of 3 shares accepted: 1 more needed/);
  return r;
}

/** A copy of vault.bundle with the byte at `at` replaced by `by`. */
function tampered(name: string, at: (text: string) => number, by: (old: string) => string): string {
  const bytes = readFileSync(join(ws.dir, 'vault.bundle'));
  const i = at(bytes.toString('latin1'));
  expect(i).toBeGreaterThan(0);
  const old = String.fromCharCode(bytes[i] as number);
  const next = by(old);
  expect(next).not.toBe(old);
  bytes[i] = next.charCodeAt(0);
  writeFileSync(join(ws.dir, name), bytes);
  return name;
}

describe('restore rejects, and writes nothing', () => {
  it('sanity: the untouched bundle and the first three shares do restore (into a scratch token)', () => {
    // proves the rejections below are caused by the one thing each test changes
    const scratch = initToken(ws, 'scratchpad');
    const p = profileFor(ws, profiles, scratch, 'scratchpad');
    writeConfig(ws, profiles);
    expectOk(restore('vault.bundle', quorum(), quorumIds(), p.name));
    expect(objectCount(ws, scratch)).toBe(6);
  });

  it('a bundle with one byte flipped inside a wrapped key blob', () => {
    const name = tampered(
      'blob-flipped.bundle',
      (t) => t.indexOf('"wrapped": "') + 20,
      (c) => (c === 'A' ? 'B' : 'A'),
    );
    const r = unchanged(() => restore(name, quorum(), quorumIds()));
    const line = expectUserError(r, 4, /nothing was written/);
    expect(line).toMatch(/blob-flipped\.bundle has been changed since the backup/);
  });

  it('a bundle with one byte flipped inside a key label', () => {
    const name = tampered(
      'label-flipped.bundle',
      (t) => t.indexOf('"label": "aes-key"') + 16,
      () => 'z',
    );
    expect(readFileSync(join(ws.dir, name), 'utf8')).toContain('"label": "aes-kez"');
    const r = unchanged(() => restore(name, quorum(), quorumIds()));
    expect(expectUserError(r, 4)).toMatch(
      /label-flipped\.bundle has been changed since the backup/,
    );
  });

  it('a bundle whose MAC line was changed', () => {
    const name = tampered(
      'mac-flipped.bundle',
      (t) => t.lastIndexOf('--- hmac-sha256 ') + 20,
      (c) => (c === 'A' ? 'B' : 'A'),
    );
    const r = unchanged(() => restore(name, quorum(), quorumIds()));
    expect(expectUserError(r, 4)).toMatch(/mac-flipped\.bundle fails its MAC/);
  });

  it('a share from another backup', () => {
    const foreign = share('other.bundle', 'k3');
    const r = thirdRejected(foreign);
    expect(r.stderr).toContain(`rejected ${foreign}: belongs to another backup`);
  });

  it('a share whose value was edited and re-encrypted to the same recipient with age -r', () => {
    const original = openShare(ws, join(ws.dir, share('vault.bundle', 'k3')), k[2]!.identity);
    const value = shareValue(original);
    const last = value.slice(-1);
    const edited = `${value.slice(0, -1)}${last === '0' ? '1' : '0'}`;
    ws.secrets.add(edited);
    ageEncrypt(
      ws,
      k[2]!.recipient,
      original.replace(`share: ${value}\n`, `share: ${edited}\n`),
      join(ws.dir, 'k3-edited.share'),
    );
    const r = thirdRejected('k3-edited.share');
    expect(r.stderr).toMatch(
      /rejected k3-edited\.share: its signature does not verify: the share was edited/,
    );
  });

  it('too few shares: the message says how many more are needed', () => {
    const r = unchanged(() => restore('vault.bundle', [share('vault.bundle', 'k1')], [k[0]!]));
    expect(expectUserError(r, 5)).toMatch(/1 of 3 shares accepted: 2 more needed/);
    expect(r.stderr).toMatch(/custos: hint: bring 2 more custodian shares/);
  });

  it('a share no given identity opens', () => {
    const r = unchanged(() => restore('vault.bundle', quorum(), [k[0]!, k[1]!, k[3]!]));
    expect(expectUserError(r, 5)).toMatch(/2 of 3 shares accepted: 1 more needed/);
    expect(r.stderr).toContain(
      `rejected ${share('vault.bundle', 'k3')}: none of the identities given opens it`,
    );
  });

  it('the same share given twice', () => {
    const r = thirdRejected(share('vault.bundle', 'k1'));
    expect(r.stderr).toMatch(/rejected vault\.bundle\.shares\/k1\.share: is a duplicate/);
  });

  it('a profile naming a token label that does not exist', () => {
    const r = unchanged(() => restore('vault.bundle', quorum(), quorumIds(), 'ghost'));
    expect(expectUserError(r, 6)).toMatch(/no token labelled "no-such-token"/);
  });

  it('a wrong PIN (and the wrong PIN is not printed)', () => {
    const r = unchanged(() => restore('vault.bundle', quorum(), quorumIds(), 'badpin'));
    expect(expectUserError(r, 6)).toMatch(
      /the PIN was not accepted \(log in to token "recovery", CKR_PIN_INCORRECT\)/,
    );
    expect(`${r.stdout}${r.stderr}`).not.toContain(ws.env.WRONG_PIN as string);
  });

  it('a PIN variable that is not set', () => {
    const r = unchanged(() => restore('vault.bundle', quorum(), quorumIds(), 'nopin'));
    expect(expectUserError(r, 3)).toMatch(/\$UNSET_PIN_VARIABLE, which is not set/);
  });

  it('a truncated (damaged) share file is named as a rejected share, not an internal error', () => {
    const full = readFileSync(join(ws.dir, share('vault.bundle', 'k3')), 'utf8');
    writeFileSync(join(ws.dir, 'k3-truncated.share'), full.slice(0, Math.floor(full.length / 2)));
    const r = thirdRejected('k3-truncated.share');
    expect(r.stderr).toMatch(/rejected k3-truncated\.share/);
  });

  it('an identity pasted where its file path belongs is not echoed back', () => {
    const r = unchanged(() =>
      custos(ws, [
        'shares',
        'verify',
        '--bundle',
        'vault.bundle',
        '--share',
        share('vault.bundle', 'k1'),
        '--identity',
        k[0]!.secret,
      ]),
    );
    // this run is a deliberate misuse judged here alone; the file's closing scan covers every other
    // run
    ws.runs.splice(ws.runs.indexOf(r), 1);
    expectUserError(r, 3);
    expect(`${r.stdout}${r.stderr}`).not.toContain(k[0]!.secret);
  });
});

describe('backup rejects, and writes nothing', () => {
  const backupTo = (out: string) => custos(ws, backupArgs('keystore', out));

  it('an existing --out bundle: refused, and nothing is overwritten', () => {
    writeFileSync(join(ws.dir, 'precious.bundle'), 'an earlier bundle that must survive\n');
    const r = unchanged(() => backupTo('precious.bundle'));
    expect(expectUserError(r, 3)).toMatch(/refusing to overwrite .*precious\.bundle/);
    expect(readFileSync(join(ws.dir, 'precious.bundle'), 'utf8')).toBe(
      'an earlier bundle that must survive\n',
    );
    expect(exists(join(ws.dir, 'precious.bundle.shares'))).toBe(false);
  });

  it('an existing share file: refused, and no bundle appears', () => {
    mkdirSync(join(ws.dir, 'fresh.bundle.shares'));
    writeFileSync(join(ws.dir, 'fresh.bundle.shares', 'k2.share'), 'an older share\n');
    const r = unchanged(() => backupTo('fresh.bundle'));
    expect(expectUserError(r, 3)).toMatch(
      /refusing to overwrite .*fresh\.bundle\.shares\/k2\.share/,
    );
    expect(exists(join(ws.dir, 'fresh.bundle'))).toBe(false);
  });

  const recipient = () => k[0]!.recipient;
  const policies: [string, () => string, number, RegExp][] = [
    [
      'a malformed recipient',
      () =>
        `threshold: 2\ncustodians:\n  - id: k1\n    recipient: ${recipient()}\n  - id: k2\n    recipient: age1notarecipient\n`,
      6,
      /recipient of "k2" must be an age X25519 recipient/,
    ],
    [
      'a custodian id used twice',
      () =>
        `threshold: 2\ncustodians:\n  - id: k1\n    recipient: ${recipient()}\n  - id: k1\n    recipient: ${k[1]!.recipient}\n`,
      5,
      /custodian id "k1" is used twice/,
    ],
    [
      'a threshold above the number of custodians',
      () =>
        `custodians:\n  - id: k1\n    recipient: ${recipient()}\n  - id: k2\n    recipient: ${k[1]!.recipient}\nthreshold: 3\n`,
      6,
      /threshold must be between 2 and 2, not 3/,
    ],
    [
      'a misspelt field',
      () =>
        `# comment\nthreshold: 2\ntreshold: 2\ncustodians:\n  - id: k1\n    recipient: ${recipient()}\n`,
      3,
      /unknown field "treshold"/,
    ],
    [
      'broken YAML',
      () => `threshold: 2\ncustodians:\n  - id: k1\n    recipient: ${recipient()}\n   - id: k2\n`,
      5,
      /not valid YAML/,
    ],
  ];
  it.each(policies)(
    'a policy with %s: refused with the line number',
    (what, text, line, message) => {
      const file = `policy-${what.replace(/\W+/g, '-')}.yaml`;
      writeFileSync(join(ws.dir, file), text());
      const r = unchanged(() =>
        custos(ws, ['backup', '--hsm', 'keystore', '--policy', file, '--out', 'never.bundle']),
      );
      const err = expectUserError(r, 3);
      expect(err).toContain(`${file}:${line}: `);
      expect(err).toMatch(message);
      expect(exists(join(ws.dir, 'never.bundle'))).toBe(false);
    },
  );
});

describe('configuration and names', () => {
  it('a PIN written into custos.yaml is refused with its line, and not echoed', () => {
    const pin = `pin-literal-${Date.now().toString(16)}`;
    ws.secrets.add(pin);
    writeFileSync(
      join(ws.dir, 'literal.yaml'),
      `hsms:\n  keystore:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token: keystore\n    pin: "${pin}"\n`,
    );
    const r = unchanged(() =>
      custos(ws, ['--config', 'literal.yaml', 'inventory', '--hsm', 'keystore']),
    );
    expect(expectUserError(r, 3)).toMatch(
      /literal\.yaml:5: .*pin must be file:PATH, env:VARNAME, escrow:DIR or prompt/,
    );
    expect(`${r.stdout}${r.stderr}`).not.toContain(pin);
  });

  it('an --hsm name that is neither a profile nor an embedded token: named, and no embedded store is created', () => {
    const r = unchanged(() => custos(ws, ['inventory', '--hsm', 'keystor']));
    expect(errorLine(r)).toMatch(/"keystor"/);
    expectUserError(r, 6);
  });

  it('no PIN, identity, share value or KEK appears in any output', () => {
    expectNoSecrets(ws);
  });
});
