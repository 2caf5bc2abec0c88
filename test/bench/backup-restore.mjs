#!/usr/bin/env node
// Benchmark: custos backup, restore and HSM-to-HSM copy against a bare pkcs11js loop making only the essential
// PKCS#11 calls for the same keys, on SoftHSM2, in one run. Prints figures and ratios; asserts nothing.
//   node test/bench/backup-restore.mjs [--keys N] [--restore M]
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => join(root, 'dist', p);
const require = createRequire(import.meta.url);
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = 'bench-pin';
const LAUNCHER_FLAGS = readFileSync(join(root, 'bin', 'custos'), 'utf8').split('\n')[0].split(' ').filter((w) => w.startsWith('--'));

// What a backup must read to recreate a key faithfully (every security and usage attribute, its
// size and check value), and no more: the same set custos reads, in one call per key.
const USAGE = (P) => [P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_VERIFY, P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_DERIVE];
const SECRET_ATTRS = (P) => [P.CKA_CLASS, P.CKA_KEY_TYPE, P.CKA_LABEL, P.CKA_ID, P.CKA_TOKEN, P.CKA_PRIVATE, ...USAGE(P), P.CKA_SENSITIVE, P.CKA_EXTRACTABLE, P.CKA_VALUE_LEN, P.CKA_CHECK_VALUE];
const PRIVATE_ATTRS = (P) => [P.CKA_CLASS, P.CKA_KEY_TYPE, P.CKA_LABEL, P.CKA_ID, P.CKA_TOKEN, P.CKA_PRIVATE, P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_SIGN_RECOVER, P.CKA_UNWRAP, P.CKA_DERIVE, P.CKA_SENSITIVE, P.CKA_EXTRACTABLE];

function session(P, lib, label) {
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === label);
  const s = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  lib.C_Login(s, P.CKU_USER, PIN);
  return s;
}

function sessionKek(P, lib, s, value) {
  return lib.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true }, { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_VALUE, value },
  ]);
}

function findAll(P, lib, s, cls, label) {
  const template = [{ type: P.CKA_CLASS, value: cls }, { type: P.CKA_TOKEN, value: true }];
  if (label) template.push({ type: P.CKA_LABEL, value: label });
  lib.C_FindObjectsInit(s, template);
  const out = [];
  for (let b; (b = lib.C_FindObjects(s, 1024)).length; ) out.push(...b);
  lib.C_FindObjectsFinal(s);
  return out;
}

/** The bare loops, run in a child so their peak RSS is their own. */
async function child(mode, args) {
  const pkcs11 = require('pkcs11js');
  const P = pkcs11;
  const t0 = performance.now();
  let ms = 0;
  let keys = 0;
  if (mode.startsWith('bare-')) {
    // Like custos, the bare loops pay for loading the module and logging in (SoftHSM reads every
    // token object then), so both sides are timed from a cold library.
    const setupStart = performance.now();
    const lib = new P.PKCS11();
    lib.load(MODULE);
    lib.C_Initialize();
    const src = session(P, lib, args.source);
    const kekValue = randomBytes(32);
    const kek = sessionKek(P, lib, src, kekValue);
    const setupMs = performance.now() - setupStart;
    // One attribute read per key (the class is known from the search), then the wrap.
    const wrapAll = (found) => found.map(({ cls, h }) => {
      const attrs = lib.C_GetAttributeValue(src, h, (cls === P.CKO_SECRET_KEY ? SECRET_ATTRS(P) : PRIVATE_ATTRS(P)).slice(1).map((type) => ({ type })));
      return { cls, type: attrs[0].value.readUInt32LE(0),
        blob: Buffer.from(lib.C_WrapKey(src, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, h, Buffer.alloc(cls === P.CKO_SECRET_KEY ? 64 : 8192))) };
    });
    // The restore set: one search per class and one label read per key.
    const restoreSet = () => [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY].flatMap((cls) => findAll(P, lib, src, cls).filter((h) => {
      const label = lib.C_GetAttributeValue(src, h, [{ type: P.CKA_LABEL }])[0].value.toString();
      return ['r-', 'rsa-', 'ec-'].some((prefix) => label.startsWith(prefix));
    }).map((h) => ({ cls, h })));
    const unwrapAll = (wrapped) => {
      const loginStart = performance.now();
      const dst = session(P, lib, args.target);
      const dkek = sessionKek(P, lib, dst, kekValue);
      wrapped.forEach((w, i) => {
        lib.C_UnwrapKey(dst, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, dkek, w.blob, [
          { type: P.CKA_CLASS, value: w.cls }, { type: P.CKA_KEY_TYPE, value: w.type }, { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_LABEL, value: `k${i}` },
        ]);
      });
      return performance.now() - loginStart;
    };
    if (mode === 'bare-copy') {
      const start = performance.now();
      const wrapped = wrapAll(restoreSet());
      unwrapAll(wrapped);
      ms = setupMs + (performance.now() - start);
      keys = wrapped.length;
    } else if (mode === 'bare-backup') {
      const start = performance.now();
      const found = [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY].flatMap((cls) => findAll(P, lib, src, cls).map((h) => ({ cls, h })));
      const wrapped = wrapAll(found);
      ms = setupMs + (performance.now() - start);
      keys = wrapped.length;
    } else {
      // The source side of a restore is the bundle, already made: only the target side is timed.
      const wrapped = wrapAll(restoreSet());
      ms = setupMs + unwrapAll(wrapped);
      keys = wrapped.length;
    }
  } else {
    const { Output } = await import(dist('io/output.js'));
    const { loadConfig } = await import(dist('ops/context.js'));
    const quiet = { write: () => true, isTTY: false };
    const ctx = { cwd: args.dir, env: process.env, config: loadConfig(args.dir), out: new Output(quiet, quiet, process.env) };
    if (mode === 'custos-backup') {
      const { backup } = await import(dist('ops/backup.js'));
      const start = performance.now();
      const r = await backup(ctx, { hsm: args.source, policyPath: args.policy, out: args.out });
      ms = performance.now() - start;
      keys = r.body.keys.length;
    } else if (mode === 'custos-copy') {
      const { copyKeys } = await import(dist('ops/copy.js'));
      const start = performance.now();
      const r = await copyKeys(ctx, { from: args.source, to: args.target, policyPath: args.policy });
      ms = performance.now() - start;
      keys = r.keys.length;
    } else {
      const { restore } = await import(dist('ops/restore.js'));
      const start = performance.now();
      const r = await restore(ctx, { bundlePath: args.bundle, hsm: args.target, shares: args.shares, identities: args.identities });
      ms = performance.now() - start;
      keys = r.keys.length;
    }
  }
  process.stdout.write(`${JSON.stringify({ ms, keys, totalMs: performance.now() - t0, maxRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

function runChild(mode, args, env) {
  // Both sides run with the node flags bin/custos uses, so the comparison stays like for like.
  const r = spawnSync(process.execPath, [...LAUNCHER_FLAGS, fileURLToPath(import.meta.url), 'child', mode, JSON.stringify(args)], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${mode} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const N = opt('--keys', 10000);
  const M = Math.min(opt('--restore', 2000), N);
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  const conf = join(dir, 'softhsm2.conf');
  execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
  writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: conf, BENCH_PIN: PIN };
  const labels = ['src', 'dst-bare', 'dst-custos', 'copy-bare', 'copy-custos'];
  for (const label of labels) {
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', 'bench-so', '--pin', PIN], { env, stdio: 'ignore' });
  }
  writeFileSync(join(dir, 'custos.yaml'), ['hsms:', ...labels.flatMap((l) => [`  ${l}:`, `    module: ${MODULE}`, `    token: ${l}`, '    pin: env:BENCH_PIN'])].join('\n') + '\n');

  process.env.SOFTHSM2_CONF = conf;
  const { Token } = await import(dist('hsm/token.js'));
  const { generateSecretKey, generateKeyPair } = await import(dist('hsm/generate.js'));
  const { newIdentity } = await import(dist('crypto/age.js'));
  process.stderr.write(`making ${N} AES-256 keys, 3 RSA-2048 and 3 EC P-256 key pairs on SoftHSM2...\n`);
  const genStart = performance.now();
  const token = await Token.open({ module: MODULE, token: 'src' }, async () => PIN, true);
  for (let i = 0; i < N; i++) {
    const label = `${i < M ? 'r' : 'b'}-aes-${String(i).padStart(6, '0')}`;
    generateSecretKey(token, { label, id: i.toString(16).padStart(6, '0'), keyType: 'AES', bytes: 32, extractable: true });
  }
  for (let i = 0; i < 3; i++) {
    generateKeyPair(token, { label: `rsa-${i}`, id: `aa0${i}`, keyType: 'RSA', bits: 2048, extractable: true });
    generateKeyPair(token, { label: `ec-${i}`, id: `bb0${i}`, keyType: 'EC', extractable: true });
  }
  token.close();
  const genSeconds = (performance.now() - genStart) / 1000;

  const custodians = [];
  for (let i = 0; i < 5; i++) {
    const id = await newIdentity();
    writeFileSync(join(dir, `c${i}.key`), `${id.secret}\n`, { mode: 0o600 });
    custodians.push({ id: `c${i}`, recipient: id.recipient });
  }
  const policy = (include) => ['threshold: 3', 'custodians:', ...custodians.flatMap((c) => [`  - id: ${c.id}`, `    recipient: ${c.recipient}`]),
    ...(include ? ['keys:', `  include: [${include.map((g) => JSON.stringify(g)).join(', ')}]`] : [])].join('\n') + '\n';
  writeFileSync(join(dir, 'all.yaml'), policy());
  writeFileSync(join(dir, 'restore.yaml'), policy(['r-*', 'rsa-*', 'ec-*']));

  const bareBackup = runChild('bare-backup', { source: 'src' }, env);
  const custosBackup = runChild('custos-backup', { dir, source: 'src', policy: 'all.yaml', out: 'all.bundle' }, env);
  runChild('custos-backup', { dir, source: 'src', policy: 'restore.yaml', out: 'restore.bundle' }, env);
  const bareRestore = runChild('bare-restore', { source: 'src', target: 'dst-bare' }, env);
  const shares = [0, 2, 4].map((i) => join(dir, 'restore.bundle.shares', `c${i}.share`));
  const custosRestore = runChild('custos-restore', { dir, bundle: 'restore.bundle', target: 'dst-custos', shares, identities: [0, 2, 4].map((i) => join(dir, `c${i}.key`)) }, env);
  const bareCopy = runChild('bare-copy', { source: 'src', target: 'copy-bare' }, env);
  const custosCopy = runChild('custos-copy', { dir, source: 'src', target: 'copy-custos', policy: 'restore.yaml' }, env);
  const bundleMB = readFileSync(join(dir, 'all.bundle')).length / 1e6;
  rmSync(dir, { recursive: true, force: true });

  const rate = (r) => Math.round(r.keys / (r.ms / 1000));
  const row = (name, r) => `${name.padEnd(16)} ${String(r.keys).padStart(6)} keys ${(r.ms / 1000).toFixed(2).padStart(8)} s ${String(rate(r)).padStart(7)} keys/s  peak RSS ${r.maxRssMB.toFixed(0).padStart(4)} MB`;
  console.log(`SoftHSM2 benchmark: ${N} AES-256 keys (+3 RSA-2048, +3 EC P-256) generated in ${genSeconds.toFixed(1)} s; bundle ${bundleMB.toFixed(1)} MB`);
  console.log(row('bare backup', bareBackup));
  console.log(row('custos backup', custosBackup));
  console.log(row('bare restore', bareRestore));
  console.log(row('custos restore', custosRestore));
  console.log(row('bare copy', bareCopy));
  console.log(row('custos copy', custosCopy));
  const backupRatio = custosBackup.ms / bareBackup.ms;
  const restoreRatio = custosRestore.ms / bareRestore.ms;
  console.log(`backup ratio  ${backupRatio.toFixed(2)}x the bare loop (target <= 1.30)`);
  console.log(`restore ratio ${restoreRatio.toFixed(2)}x the bare loop (target <= 1.15)`);
  console.log(`copy ratio    ${(custosCopy.ms / bareCopy.ms).toFixed(2)}x the bare loop (target <= 1.15; custos also sets up the transport keys and proves every key)`);
  console.log(`custos backup peak RSS ${custosBackup.maxRssMB.toFixed(0)} MB at ${custosBackup.keys} keys (target <= 150 MB); ` +
    `the bare loop alone peaks at ${bareBackup.maxRssMB.toFixed(0)} MB (SoftHSM keeps every token object in memory), so custos adds ${(custosBackup.maxRssMB - bareBackup.maxRssMB).toFixed(0)} MB`);
  console.log('(both sides timed from loading the PKCS#11 module, excluding node start-up; custos backup includes share encryption and file writes, restore and copy include share checks or transport set-up and per-key proofs)');
}

if (process.argv[2] === 'child') await child(process.argv[3], JSON.parse(process.argv[4]));
else await main();
