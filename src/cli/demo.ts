/**
 * custos demo: from nothing, two embedded tokens, sample keys, five custodians and a 3-of-5
 * policy; back up, restore into the DR token through a quorum ceremony of three, prove the keys
 * match, and verify the audit trail.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve, relative } from 'node:path';
import { verify as verifySignature } from 'node:crypto';
import { CustosError } from '../core/errors.js';
import { EMPTY_CONFIG } from '../core/config.js';
import { newIdentity } from '../crypto/age.js';
import { spkiOf } from '../crypto/check-values.js';
import { initEmbeddedToken } from '../hsm/embedded.js';
import { generateKeyPair, generateSecretKey } from '../hsm/generate.js';
import { createFilesAtomically } from '../io/files.js';
import { inventory } from '../ops/inventory.js';
import { openHsm } from '../ops/hsm.js';
import { EMBEDDED_PIN_ENV, type Context } from '../ops/context.js';
import { run as runBackup } from './backup.js';
import { run as runOpen } from './ceremony/open.js';
import { run as runAdd } from './ceremony/add.js';
import { run as runClose } from './ceremony/close.js';
import { run as runSubmit } from './share-submit.js';
import { run as runAuditVerify } from './audit/verify.js';
import { run as runInventory } from './inventory.js';

const MARKER = '.custos-demo';
const CUSTODIANS = [
  ['hale-llp', 'Hale & Partners LLP'],
  ['okafor-law', 'Okafor Law Group'],
  ['lindqvist', 'Lindqvist Advokatbyrå'],
  ['dr-lead', 'DR team lead'],
  ['ciso', 'Chief Information Security Officer'],
] as const;

function freshDirectory(dir: string): void {
  if (existsSync(dir)) {
    if (!existsSync(join(dir, MARKER))) {
      throw new CustosError(
        'E_EXISTS',
        `${dir} exists and was not made by custos demo`,
        'pass --dir with a new or earlier demo directory',
      );
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, MARKER), 'made by custos demo; removed by the next demo run\n');
}

async function makeSampleKeys(ctx: Context): Promise<void> {
  const token = await openHsm(ctx, 'primary', true);
  try {
    for (let i = 1; i <= 10; i++) {
      generateSecretKey(token, {
        label: `payments-aes-${String(i).padStart(2, '0')}`,
        id: (0x10 + i).toString(16).padStart(2, '0'),
        keyType: 'AES',
        bytes: 32,
        extractable: true,
      });
    }
    generateSecretKey(token, {
      label: 'api-hmac',
      id: '20',
      keyType: 'GENERIC_SECRET',
      bytes: 32,
      extractable: true,
    });
    generateKeyPair(token, {
      label: 'signing-rsa',
      id: '30',
      keyType: 'RSA',
      bits: 2048,
      extractable: true,
    });
    generateKeyPair(token, {
      label: 'tls-ec',
      id: '31',
      keyType: 'EC',
      ecParams: '06082a8648ce3d030107',
      extractable: true,
    });
    generateSecretKey(token, {
      label: 'hsm-bound-aes',
      id: '40',
      keyType: 'AES',
      bytes: 32,
      extractable: false,
    });
  } finally {
    token.close();
  }
}

async function writeCustodians(dir: string): Promise<string[]> {
  const policy = [
    '# demo policy: any 3 of these 5 custodians can restore',
    'threshold: 3',
    'custodians:',
  ];
  const files = [];
  const identities: string[] = [];
  for (const [id, name] of CUSTODIANS) {
    const { secret, recipient } = await newIdentity();
    const path = join(dir, 'custodians', `${id}.key`);
    files.push({ path, data: `# age identity of demo custodian ${id}\n${secret}\n`, mode: 0o600 });
    identities.push(path);
    policy.push(
      `  - id: ${id}`,
      `    name: ${JSON.stringify(name)}`,
      `    recipient: ${recipient}`,
    );
  }
  files.push({ path: join(dir, 'policy.yaml'), data: `${policy.join('\n')}\n`, mode: 0o644 });
  createFilesAtomically(files);
  return identities;
}

/**
 * Signs on dr-site with the restored RSA key and verifies with primary's public key, in software.
 */
async function signAcrossTokens(ctx: Context): Promise<boolean> {
  const primary = await openHsm(ctx, 'primary', false);
  let spki: Buffer | null;
  try {
    const pub = primary
      .contents()
      .keys.find((k) => k.class === 'public' && k.label === 'signing-rsa');
    spki = pub ? spkiOf(pub) : null;
  } finally {
    primary.close();
  }
  const dr = await openHsm(ctx, 'dr-site', false);
  try {
    const key = dr.contents().keys.find((k) => k.class === 'private' && k.label === 'signing-rsa');
    const signed = key ? dr.signChallenge(key) : null;
    return !!(
      spki &&
      signed &&
      verifySignature(
        'sha256',
        signed.data,
        { key: spki, format: 'der', type: 'spki' },
        signed.signature,
      )
    );
  } finally {
    dr.close();
  }
}

export async function run(parent: Context, o: { dir: string }): Promise<void> {
  const dir = resolve(parent.cwd, o.dir);
  freshDirectory(dir);
  const pin = randomBytes(12).toString('base64url');
  writeFileSync(join(dir, 'user.pin'), `${pin}\n`, { mode: 0o600 });
  const ctx: Context = {
    cwd: dir,
    env: { ...parent.env, [EMBEDDED_PIN_ENV]: pin },
    config: EMPTY_CONFIG,
    out: parent.out,
    auditLog: join(dir, '.custos', 'audit.jsonl'),
    actor: parent.actor,
  };
  const step = (text: string) => ctx.out.data(['', ctx.out.colour.bold(`== ${text}`)]);

  step('1. two embedded SoftHSM2 tokens: primary and dr-site');
  for (const label of ['primary', 'dr-site'])
    initEmbeddedToken(dir, label, randomBytes(12).toString('base64url'), pin);
  await makeSampleKeys(ctx);
  await runInventory(ctx, { hsm: 'primary' });

  step('2. five custodians with age identities, and a 3-of-5 policy');
  const identities = await writeCustodians(dir);
  ctx.out.data(CUSTODIANS.map(([id, name]) => `  ${id.padEnd(12)} ${name}`));

  step('3. backup: keys wrapped inside primary, their key split into five shares');
  await runBackup(ctx, { hsm: 'primary', policy: 'policy.yaml', out: 'primary.bundle' });

  step('4. a quorum ceremony: three custodians give their shares; restore to dr-site');
  const chosen = [0, 2, 4].map((i) => ({
    id: CUSTODIANS[i]?.[0] as string,
    identity: relative(dir, identities[i] as string),
  }));
  await runOpen(ctx, {
    bundle: 'primary.bundle',
    purpose: 'restore',
    out: 'restore.ceremony',
    expires: '2h',
  });
  // Each custodian would run this on their own machine, and send back only the submission.
  for (const c of chosen) {
    await runSubmit(ctx, {
      ceremony: 'restore.ceremony',
      share: join('primary.bundle.shares', `${c.id}.share`),
      identity: c.identity,
      out: `${c.id}.submission`,
      yes: true,
    });
  }
  await runAdd(ctx, {
    ceremony: 'restore.ceremony',
    submissions: chosen.map((c) => `${c.id}.submission`),
  });
  await runClose(ctx, { ceremony: 'restore.ceremony', hsm: 'dr-site' });
  await runInventory(ctx, { hsm: 'dr-site' });

  step('5. proof: check values on both tokens, and a signature across them');
  const [before, after] = [await inventory(ctx, 'primary'), await inventory(ctx, 'dr-site')];
  const keyOf = (r: { label: string; id: string; class: string }) =>
    `${r.class}/${r.label}/${r.id}`;
  const restored = new Map(after.rows.map((r) => [keyOf(r), r.checkValue.value]));
  const compared = before.rows.filter((r) => r.extractable || r.class === 'public');
  const mismatched = compared.filter((r) => restored.get(keyOf(r)) !== r.checkValue.value);
  const signatureOk = await signAcrossTokens(ctx);
  ctx.out.data(
    `  ${compared.length - mismatched.length} of ${compared.length} key objects on dr-site have primary's check values`,
  );
  ctx.out.data(
    `  RSA signature made on dr-site ${signatureOk ? 'verifies' : 'DOES NOT verify'} with primary's public key`,
  );
  if (mismatched.length || !signatureOk) {
    throw new CustosError(
      'E_VERIFY',
      'the demo restore did not reproduce every key',
      'this is a defect: please report it with the output above',
      mismatched.map((r) => `mismatch: ${keyOf(r)}`),
    );
  }

  step('6. the audit trail: every step above, chained, each ceremony entry signed');
  await runAuditVerify(ctx, { log: ctx.auditLog });
  const launcher = relative(dir, resolve(process.argv[1] ?? 'custos'));
  ctx.out.data([
    '',
    'demo complete: every key matched. Explore it with:',
    `  cd ${relative(parent.cwd, dir) || '.'} && CUSTOS_PIN=$(cat user.pin) \\`,
    `    ${launcher} inventory --hsm dr-site`,
  ]);
}
