/**
 * The parts of custodian token keys that need no token: age's ssh-rsa recipient (checked against
 * the stock age CLI and ssh-keygen), the host half of OAEP for a token that offers raw RSA only,
 * the token identity file, and the custodian recipients a policy takes.
 */
import { spawnSync } from 'node:child_process';
import {
  constants,
  createHash,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Decrypter,
  Encrypter,
  armor,
  generateHybridIdentity,
  identityToRecipient,
} from 'age-encryption';
import type { Stanza } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SSH_RSA_LABEL,
  SshRsaRecipient,
  decodeOaep,
  parseSshRsa,
  stanzasFor,
  type SshRsaKey,
} from '../../src/crypto/ssh-rsa.js';
import {
  decryptWithAny,
  encryptToRecipient,
  parseIdentityFile,
  type NamedIdentity,
} from '../../src/crypto/age.js';
import {
  TOKEN_STUB_FORMAT,
  isTokenStub,
  parseTokenStub,
  serialiseTokenStub,
  type TokenStub,
} from '../../src/core/token-stub.js';
import { parsePolicy } from '../../src/core/policy.js';
import { CustosError } from '../../src/core/errors.js';

let dir: string;
let privateKey: KeyObject;
let line: string;
let key: SshRsaKey;

const sh = (cmd: string, args: string[], input?: string | Buffer) => {
  const r = spawnSync(cmd, args, { cwd: dir, input, env: { PATH: process.env.PATH ?? '' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-ssh-rsa-'));
  const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
  privateKey = pair.privateKey;
  writeFileSync(
    join(dir, 'key.pem'),
    privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    { mode: 0o600 },
  );
  // ssh-keygen, not custos, says what the key's recipient line is
  line = sh('ssh-keygen', ['-y', '-f', 'key.pem'])
    .toString()
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  key = parseSshRsa(line, 'the test key');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The stanzas of a binary age file's header, as the stock age CLI wrote them. */
function headerStanzas(file: Buffer): { args: string[]; body: Buffer }[] {
  const text = file.toString('latin1');
  const head = text.slice(0, text.indexOf('\n---'));
  const out: { args: string[]; body: Buffer }[] = [];
  const lines = head.split('\n').slice(1);
  for (let i = 0; i < lines.length;) {
    const args = (lines[i] as string).slice(3).split(' ');
    let body = '';
    for (i++; i < lines.length; i++) {
      body += lines[i];
      if ((lines[i] as string).length < 64) {
        i++;
        break;
      }
    }
    out.push({ args, body: Buffer.from(body, 'base64') });
  }
  return out;
}

describe("age's ssh-rsa recipient", () => {
  it('reads the line ssh-keygen prints; its tag is the first 4 bytes of SHA-256 of the wire key, as the age CLI writes it', () => {
    expect(key.bits).toBe(3072);
    const wire = Buffer.from(line.split(' ')[1] as string, 'base64');
    const tag = createHash('sha256').update(wire).digest().subarray(0, 4).toString('base64');
    expect(key.tag).toBe(tag.replace(/=+$/, ''));
    writeFileSync(join(dir, 'r.txt'), `${line}\n`);
    const file = sh('age', ['-R', 'r.txt'], 'hello');
    const [stanza] = headerStanzas(file);
    expect(stanza?.args).toEqual(['ssh-rsa', key.tag]);
  });

  it('a file custos encrypts to it opens with the stock age CLI and the OpenSSL key', async () => {
    const armored = await encryptToRecipient(line, 'custos-share/1\nshare: test\n');
    writeFileSync(join(dir, 'by-custos.age'), armored);
    expect(sh('age', ['-d', '-i', 'key.pem', 'by-custos.age']).toString()).toBe(
      'custos-share/1\nshare: test\n',
    );
    const e = new Encrypter();
    e.addRecipient(new SshRsaRecipient(key));
    const bytes = await e.encrypt('x');
    expect(Buffer.from(bytes).toString('latin1')).toMatch(
      new RegExp(`^age-encryption\\.org/v1\\n-> ssh-rsa ${key.tag.replace(/[+/]/g, '\\$&')}\\n`),
    );
  });

  it('raw RSA (as a token without OAEP-SHA256 gives it) and node-forge OAEP decoding open a file the age CLI wrote', async () => {
    writeFileSync(join(dir, 'r.txt'), `${line}\n`);
    const file = sh('age', ['-R', 'r.txt'], 'opened on the host');
    const [stanza] = headerStanzas(file);
    const raw = privateDecrypt(
      { key: privateKey, padding: constants.RSA_NO_PADDING },
      stanza?.body as Buffer,
    );
    const fileKey = decodeOaep(key, raw);
    expect(fileKey?.length).toBe(16);
    // the file key opens the file: an identity that hands it over, checked by age's header MAC
    const d = new Decrypter();
    d.addIdentity({
      unwrapFileKey: (stanzas: Stanza[]) =>
        stanzasFor(key, stanzas).length === 1 ? new Uint8Array(fileKey as Buffer) : null,
    });
    expect(await d.decrypt(file, 'text')).toBe('opened on the host');
    // leading zero bytes of the raw result (a token may strip them) are put back
    let stripped = raw;
    while (stripped[0] === 0) stripped = stripped.subarray(1);
    expect(decodeOaep(key, stripped)?.equals(fileKey as Buffer)).toBe(true);
  });

  it('the host decoding refuses a block made with another label, another hash, or damaged', () => {
    const enc = (label: string, hash: string) =>
      privateDecrypt(
        { key: privateKey, padding: constants.RSA_NO_PADDING },
        publicEncrypt(
          {
            key: key.key,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: hash,
            oaepLabel: Buffer.from(label),
          },
          Buffer.alloc(16, 7),
        ),
      );
    expect(decodeOaep(key, enc(SSH_RSA_LABEL, 'sha256'))?.toString('hex')).toBe('07'.repeat(16));
    expect(decodeOaep(key, enc('age-encryption.org/v1/X25519', 'sha256'))).toBeNull();
    expect(decodeOaep(key, enc(SSH_RSA_LABEL, 'sha1'))).toBeNull();
    const damaged = enc(SSH_RSA_LABEL, 'sha256');
    damaged[200] = (damaged[200] as number) ^ 1;
    expect(decodeOaep(key, damaged)).toBeNull();
    expect(decodeOaep(key, Buffer.alloc(385, 1))).toBeNull();
  });

  it('refuses lines that are not one canonical ssh-rsa key of 2048 to 8192 bits', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    writeFileSync(
      join(dir, 'small.pem'),
      small.export({ format: 'pem', type: 'pkcs8' }) as string,
      {
        mode: 0o600,
      },
    );
    const smallLine = sh('ssh-keygen', ['-y', '-f', 'small.pem']).toString().trim();
    const b64 = line.split(' ')[1] as string;
    const wire = Buffer.from(b64, 'base64');
    const cases: [string, RegExp][] = [
      [smallLine, /modulus is 1024 bits/],
      [`${line} comment`, /not of the form/],
      [
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
        /not of the form/,
      ],
      [
        `ssh-rsa ${Buffer.concat([wire, Buffer.from([0, 0, 0, 0])]).toString('base64')}`,
        /malformed/,
      ],
      [`ssh-rsa ${wire.subarray(0, 100).toString('base64')}`, /truncated/],
    ];
    for (const [text, why] of cases) {
      let err: unknown;
      try {
        parseSshRsa(text, 'the line');
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(CustosError);
      expect((err as CustosError).code).toBe('E_IDENTITY');
      expect((err as CustosError).message).toMatch(why);
    }
  });
});

describe('the token identity file (custos-token-identity/1)', () => {
  const stub: TokenStub = {
    module: '/usr/lib/softhsm/libsofthsm2.so',
    profile: 'hale-token',
    token: { label: 'hale', serial: '9f3c1a2b4d5e6f70' },
    key: { id: '0a0b0c', label: 'custos-custodian' },
    recipient: '',
    created: '2026-12-04T10:00:00.000Z',
  };

  it('round-trips, holds no secret, and is told apart from an age identity file', async () => {
    const s = { ...stub, recipient: line };
    const text = serialiseTokenStub(s);
    expect(text.startsWith(`${TOKEN_STUB_FORMAT}\n{`)).toBe(true);
    expect(isTokenStub(Buffer.from(text))).toBe(true);
    expect(parseTokenStub('t', Buffer.from(text))).toEqual(s);
    expect(isTokenStub(Buffer.from('AGE-SECRET-KEY-1QQQ'))).toBe(false);
  });

  it('refuses what a stub cannot be, naming the field', () => {
    const good = { ...stub, recipient: line };
    const bad = (text: string, why: RegExp) => {
      let err: unknown;
      try {
        parseTokenStub('t.token-identity', Buffer.from(text));
      } catch (e) {
        err = e;
      }
      expect((err as CustosError).code, text.slice(0, 200)).toBe('E_IDENTITY');
      expect((err as CustosError).message).toMatch(why);
    };
    const body = (o: object) => `${TOKEN_STUB_FORMAT}\n${JSON.stringify(o)}\n`;
    bad(body({ ...good, module: 'libsofthsm2.so' }), /body\.module must be an absolute path/);
    bad(body({ ...good, recipient: 'age1qqqq' }), /body\.recipient has an invalid format/);
    bad(body({ ...good, secret: 'x' }), /body\.secret is not a field of this format/);
    bad(body({ ...good, key: { id: '', label: 'x' } }), /body\.key\.id/);
    bad(body({ ...good, token: { label: 'a\u001b[2J', serial: '1' } }), /body\.token\.label/);
    bad(`${serialiseTokenStub(good)}--- ed25519 AAAA\n`, /lines after its body/);
    bad('custos-token-identity/2\n{}\n', /custos-token-identity\/2/);
  });
});

describe('custodian recipients', () => {
  const policy = (recipient: string) =>
    `threshold: 2\ncustodians:\n  - id: a\n    recipient: "${recipient}"\n  - id: b\n    recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n`;

  it('a policy takes an ssh-rsa line and a post-quantum recipient, and refuses an ssh line with a comment', async () => {
    expect(parsePolicy('p', policy(line)).custodians[0]?.recipient).toBe(line);
    const pq = await identityToRecipient(await generateHybridIdentity());
    expect(parsePolicy('p', policy(pq)).custodians[0]?.recipient).toBe(pq);
    expect(() => parsePolicy('p', policy(`${line} hale@laptop`))).toThrow(
      /must be an age X25519 recipient .* or the ssh-rsa line custos custodian enroll printed/,
    );
  });

  it('a post-quantum identity file opens a share encrypted to its recipient', async () => {
    const secret = await generateHybridIdentity();
    const recipient = await identityToRecipient(secret);
    const [identity] = await parseIdentityFile('pq.key', `# pq\n${secret}\n`);
    expect(identity?.recipient).toBe(recipient);
    const armored = await encryptToRecipient(recipient, 'a share');
    const header = Buffer.from(armor.decode(armored)).toString('latin1');
    expect(header).toMatch(/^age-encryption\.org\/v1\n-> mlkem768x25519 /);
    const opened = await decryptWithAny(Buffer.from(armored), [identity as NamedIdentity]);
    expect(opened).toMatchObject({ plaintext: 'a share' });
  });
});
