#!/usr/bin/env node
/**
 * What opening a share on a custodian's token costs: the RSA-3072 file-key decryption of an age
 * ssh-rsa stanza, on a SoftHSM2 token (raw RSA there, OAEP decoded on the host) and on an NSS
 * softoken token (OAEP-SHA256 on the token), against node:crypto's privateDecrypt of the same
 * stanza with a key it holds (the bare baseline), measured in the same run. The PIN login, once per
 * share, is measured too.
 *
 *   npx tsc -p tsconfig.json && node test/bench/custodian-token.mjs [ROUNDS]
 */
import { spawnSync } from 'node:child_process';
import { constants, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROUNDS = Number(process.argv[2] ?? 50);
const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-token-'));
mkdirSync(join(dir, 'tokens'));
writeFileSync(
  join(dir, 'softhsm2.conf'),
  `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
);
process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
const PIN = 'bench-pin-1234';
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
};
run('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', PIN, '--so-pin', PIN]);
mkdirSync(join(dir, 'nss'));
writeFileSync(join(dir, 'pw'), `${PIN}\n`);
run('certutil', ['-N', '-d', `sql:${join(dir, 'nss')}`, '-f', join(dir, 'pw')]);

const load = (p) => import(pathToFileURL(join(DIST, p)).href);
const { Session, openSession } = await load('hsm/session.js');
const { generateCustodianKey, inspectCustodianKey, decryptStanza } =
  await load('hsm/custodian-key.js');
const { SshRsaRecipient } = await load('crypto/ssh-rsa.js');
const { finalizeAll } = await load('hsm/module.js');

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function onToken(name, location) {
  let t0 = process.hrtime.bigint();
  const s = new Session(await openSession(location, { as: 'user', pin: async () => PIN }, true));
  const login = ms(t0);
  const facts = inspectCustodianKey(s, generateCustodianKey(s, 'bench'));
  const bodies = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [stanza] = new SshRsaRecipient(facts.key).wrapFileKey(randomBytes(16));
    bodies.push(Buffer.from(stanza.body));
  }
  let way;
  t0 = process.hrtime.bigint();
  for (const body of bodies) {
    const r = decryptStanza(s, facts.handle, facts.key, body);
    if (!r.fileKey || r.fileKey.length !== 16) throw new Error('did not open');
    way = r.way;
  }
  const each = ms(t0) / ROUNDS;
  s.close();
  return { name, way, login, each };
}

const results = [
  await onToken('SoftHSM 2', { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'bench' }),
  await onToken('NSS softoken', {
    module: '/usr/lib/x86_64-linux-gnu/libsoftokn3.so',
    token: 'nssbench',
    libraryParameters: `flags=noCertDB,noModDB tokens=<0x04=[configdir='sql:${join(dir, 'nss')}' tokenDescription='nssbench']>`,
  }),
];

// The bare baseline: the same decryption with node:crypto holding an RSA-3072 key.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
const jwk = publicKey.export({ format: 'jwk' });
const { sshRsaFromParts } = await load('crypto/ssh-rsa.js');
const key = sshRsaFromParts(Buffer.from(jwk.n, 'base64url'), Buffer.from(jwk.e, 'base64url'));
const bodies = [];
for (let i = 0; i < ROUNDS; i++)
  bodies.push(Buffer.from(new SshRsaRecipient(key).wrapFileKey(randomBytes(16))[0].body));
const t0 = process.hrtime.bigint();
for (const body of bodies)
  privateDecrypt(
    {
      key: privateKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('age-encryption.org/v1/ssh-rsa'),
    },
    body,
  );
const bare = ms(t0) / ROUNDS;

finalizeAll();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`RSA-3072 ssh-rsa stanza opened ${ROUNDS} times each\n`);
process.stdout.write(`  node:crypto privateDecrypt (baseline)  ${bare.toFixed(2)} ms each\n`);
for (const r of results)
  process.stdout.write(
    `  ${r.name.padEnd(13)} ${r.way.padEnd(19)} ${r.each.toFixed(2)} ms each (x${(r.each / bare).toFixed(2)}); open and log in ${r.login.toFixed(1)} ms\n`,
  );
