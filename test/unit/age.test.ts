import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decryptWithAny,
  encryptToRecipient,
  newIdentity,
  parseIdentityFile,
  type NamedIdentity,
} from '../../src/crypto/age.js';
import { AGE_RECIPIENT } from '../../src/core/policy.js';
import { catchCustosAsync } from './helpers.js';
import { makeBackup } from './fixtures.js';

const AGE = '/usr/bin/age';
const AGE_KEYGEN = '/usr/bin/age-keygen';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-age-unit-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** An identity made by the real age-keygen: its file text and the recipient it printed. */
function keygen(name: string): { path: string; text: string; recipient: string } {
  const path = join(dir, name);
  execFileSync(AGE_KEYGEN, ['-o', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  const text = readFileSync(path, 'utf8');
  const recipient = /^# public key: (age1[a-z0-9]+)$/m.exec(text)?.[1];
  if (!recipient) throw new Error('fixture: age-keygen printed no public key');
  return { path, text, recipient };
}

const SHARE_TEXT = makeBackup({ threshold: 2, total: 3 }).shareTexts[0] as string;

describe('newIdentity', () => {
  test('makes an identity whose recipient the age CLI agrees with', () => {
    return newIdentity().then(({ secret, recipient }) => {
      expect(secret).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+$/);
      expect(recipient).toMatch(AGE_RECIPIENT);
      const fromCli = execFileSync(AGE_KEYGEN, ['-y'], { input: `${secret}\n` })
        .toString('utf8')
        .trim();
      expect(fromCli).toBe(recipient);
    });
  });

  test('makes a different identity each time', async () => {
    const a = await newIdentity();
    const b = await newIdentity();
    expect(a.secret).not.toBe(b.secret);
    expect(a.recipient).not.toBe(b.recipient);
  });
});

describe('encryptToRecipient and decryptWithAny', () => {
  test('the armored file is opened by the identity it was made for, among several', async () => {
    const ids = await Promise.all(
      [1, 2, 3, 4].map(async (i) => {
        const { secret, recipient } = await newIdentity();
        return { source: `id${i}.txt`, secret, recipient } satisfies NamedIdentity;
      }),
    );
    for (const target of [0, 2, 3]) {
      const file = await encryptToRecipient(ids[target]!.recipient, SHARE_TEXT);
      expect(file.startsWith('-----BEGIN AGE ENCRYPTED FILE-----\n')).toBe(true);
      expect(file.trimEnd().endsWith('-----END AGE ENCRYPTED FILE-----')).toBe(true);
      expect(file).not.toContain(SHARE_TEXT.split('\n')[7]!.slice(8, 40));
      const got = await decryptWithAny(Buffer.from(file), ids);
      if ('failure' in got) throw new Error(`did not open: ${got.failure}`);
      expect(got.plaintext).toBe(SHARE_TEXT);
      expect(got.identity.source).toBe(`id${target + 1}.txt`);
      expect(got.identity.recipient).toBe(ids[target]!.recipient);
    }
  });

  test('no fitting identity, or not an age file at all, is a "no-identity" failure', async () => {
    const a = await newIdentity();
    const b = await newIdentity();
    const file = Buffer.from(await encryptToRecipient(a.recipient, 'hello'));
    const noIdentity = { failure: 'no-identity' };
    expect(await decryptWithAny(file, [{ source: 'b', ...b }])).toEqual(noIdentity);
    expect(await decryptWithAny(file, [])).toEqual(noIdentity);
    expect(await decryptWithAny(Buffer.from('not an age file\n'), [{ source: 'a', ...a }])).toEqual(
      noIdentity,
    );
    expect(await decryptWithAny(Buffer.alloc(0), [{ source: 'a', ...a }])).toEqual(noIdentity);
  });

  test('an edited ciphertext does not open', async () => {
    const a = await newIdentity();
    const armored = await encryptToRecipient(a.recipient, SHARE_TEXT);
    const lines = armored.split('\n');
    const mid = Math.floor(lines.length / 2);
    const line = lines[mid]!;
    lines[mid] = (line[0] === 'A' ? 'B' : 'A') + line.slice(1);
    expect(
      'failure' in (await decryptWithAny(Buffer.from(lines.join('\n')), [{ source: 'a', ...a }])),
    ).toBe(true);
  });

  test('a damaged armored share file is a "damaged" failure (a named rejection), not an exception', async () => {
    // openShares (src/ops/shares.ts) turns the failure into a named rejection; a throw would
    // escape as an internal error and stop the whole restore.
    const a = await newIdentity();
    const armored = await encryptToRecipient(a.recipient, SHARE_TEXT);
    const damaged: Record<string, string> = {
      'truncated (lost its last 40 characters)': armored.slice(0, -40),
      'END line missing': armored.replace('-----END AGE ENCRYPTED FILE-----\n', ''),
      'a character outside base64': armored.replace(/\n[A-Za-z0-9+/]/, '\n*'),
      'BEGIN line only': '-----BEGIN AGE ENCRYPTED FILE-----\n',
    };
    const outcomes: Record<string, string> = {};
    for (const [what, text] of Object.entries(damaged)) {
      try {
        outcomes[what] = JSON.stringify(
          await decryptWithAny(Buffer.from(text), [{ source: 'a', ...a }]),
        );
      } catch (e) {
        outcomes[what] = `threw: ${(e as Error).message}`;
      }
    }
    expect(outcomes).toEqual(
      Object.fromEntries(Object.keys(damaged).map((k) => [k, '{"failure":"damaged"}'])),
    );
  });

  test('outside oracle: the age CLI decrypts what encryptToRecipient wrote', async () => {
    const id = keygen('cli-oracle.key');
    const file = join(dir, 'c1.share');
    writeFileSync(file, await encryptToRecipient(id.recipient, SHARE_TEXT));
    const out = execFileSync(AGE, ['-d', '-i', id.path, file]).toString('utf8');
    expect(out).toBe(SHARE_TEXT);
    // And the CLI refuses it with another identity.
    const other = keygen('cli-other.key');
    expect(() =>
      execFileSync(AGE, ['-d', '-i', other.path, file], { stdio: ['ignore', 'pipe', 'pipe'] }),
    ).toThrow();
  });

  test('outside oracle: decryptWithAny opens files the age CLI wrote, armored and binary', async () => {
    const id = keygen('cli-writer.key');
    const identities = await parseIdentityFile('cli-writer.key', id.text);
    for (const armor of [true, false]) {
      const args = ['-r', id.recipient, ...(armor ? ['-a'] : [])];
      const file = execFileSync(AGE, args, { input: SHARE_TEXT });
      expect(
        file
          .subarray(0, 10)
          .toString('latin1')
          .startsWith(armor ? '-----BEGIN' : 'age-encryp'),
      ).toBe(true);
      const got = await decryptWithAny(file, identities);
      if ('failure' in got) throw new Error(`did not open: ${got.failure}`);
      expect(got.plaintext).toBe(SHARE_TEXT);
      expect(got.identity.source).toBe('cli-writer.key');
    }
  });
});

describe('parseIdentityFile', () => {
  test('reads an age-keygen file (comments included) and derives the same recipient', async () => {
    const id = keygen('one.key');
    const ids = await parseIdentityFile('one.key', id.text);
    expect(ids).toHaveLength(1);
    expect(ids[0]!.source).toBe('one.key');
    expect(ids[0]!.recipient).toBe(id.recipient);
    expect(id.text).toContain(ids[0]!.secret);
  });

  test('reads several keys, blank lines, CRLF and indented comments', async () => {
    const a = keygen('a.key');
    const b = keygen('b.key');
    const text = `${a.text}\n\n   # another custodian\r\n${b.text.replace(/\n/g, '\r\n')}`;
    const ids = await parseIdentityFile('both.key', text);
    expect(ids.map((i) => i.recipient)).toEqual([a.recipient, b.recipient]);
  });

  test('an empty file or one with only comments holds no identity', async () => {
    for (const text of ['', '\n\n', '# created: today\n# public key: age1xyz\n']) {
      const err = await catchCustosAsync(() => parseIdentityFile('empty.key', text), 'E_IDENTITY');
      expect(err.message).toBe('empty.key holds no age identity');
    }
  });

  test('an encrypted share file passed as the identity is named as such', async () => {
    const a = await newIdentity();
    const armored = await encryptToRecipient(a.recipient, 'x');
    const binary = execFileSync(AGE, ['-r', a.recipient], { input: 'x' }).toString('latin1');
    for (const text of [armored, binary]) {
      const err = await catchCustosAsync(() => parseIdentityFile('c1.share', text), 'E_IDENTITY');
      expect(err.message).toBe('c1.share is an encrypted file, not an identity');
    }
  });

  test('a recipient, an SSH key or other text is not an identity file', async () => {
    const a = await newIdentity();
    for (const text of [
      a.recipient,
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
      a.secret.toLowerCase(),
      `${a.secret} # note`,
    ]) {
      const err = await catchCustosAsync(() => parseIdentityFile('x.key', text), 'E_IDENTITY');
      expect(err.message).toBe('x.key is not an age identity file');
    }
  });

  test('a truncated or edited identity is malformed, and the error does not quote it', async () => {
    const a = await newIdentity();
    const flipped = a.secret.slice(0, -1) + (a.secret.endsWith('Q') ? 'P' : 'Q');
    for (const bad of [a.secret.slice(0, -4), flipped, 'AGE-SECRET-KEY-1QQQQ']) {
      const err = await catchCustosAsync(
        () => parseIdentityFile('x.key', `# mine\n${bad}\n`),
        'E_IDENTITY',
      );
      expect(err.message).toBe('x.key holds a malformed age identity');
      expect(`${err.message} ${err.hint}`).not.toContain(bad.slice(16, 40));
    }
  });

  test('one bad line spoils the whole file (no silent partial read)', async () => {
    const a = await newIdentity();
    await expect(
      parseIdentityFile('x.key', `${a.secret}\nAGE-SECRET-KEY-1QQQQ\n`),
    ).rejects.toMatchObject({ code: 'E_IDENTITY' });
  });
});
