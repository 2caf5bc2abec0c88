#!/usr/bin/env node
// Benchmark: `custos backup`, `custos restore` and the HSM-to-HSM copy, each timed as a user runs
// it (bin/custos as a child process, whole process, default output to a pipe), against a bare
// pkcs11js loop (also a whole node process, with the same node flags) that makes the same PKCS#11
// calls a command cannot do without: the same key searches, the same attribute reads, the same
// wraps and unwraps, on SoftHSM2, in one run. Prints figures, ratios and where the time went;
// asserts nothing.
//   node test/bench/backup-restore.mjs [--keys N] [--restore M]
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => join(root, 'dist', p);
const BIN = join(root, 'bin', 'custos');
const require = createRequire(import.meta.url);
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const PIN = 'bench-pin';
const TINY = 10;
const LAUNCHER_FLAGS = readFileSync(BIN, 'utf8')
  .split('\n')[0]
  .split(' ')
  .filter((w) => w.startsWith('--'));

// What custos reads of each key (src/hsm/objects.ts): one C_GetAttributeValue per key object.
const ATTRS = (P, cls) => {
  const head = [P.CKA_CLASS, P.CKA_KEY_TYPE, P.CKA_LABEL, P.CKA_ID, P.CKA_TOKEN, P.CKA_PRIVATE];
  if (cls === P.CKO_SECRET_KEY)
    return [
      ...head,
      P.CKA_ENCRYPT,
      P.CKA_DECRYPT,
      P.CKA_SIGN,
      P.CKA_VERIFY,
      P.CKA_WRAP,
      P.CKA_UNWRAP,
      P.CKA_DERIVE,
      P.CKA_SENSITIVE,
      P.CKA_EXTRACTABLE,
      P.CKA_VALUE_LEN,
      P.CKA_CHECK_VALUE,
    ];
  if (cls === P.CKO_PRIVATE_KEY)
    return [
      ...head,
      P.CKA_DECRYPT,
      P.CKA_SIGN,
      P.CKA_SIGN_RECOVER,
      P.CKA_UNWRAP,
      P.CKA_DERIVE,
      P.CKA_SENSITIVE,
      P.CKA_EXTRACTABLE,
      P.CKA_MODULUS,
      P.CKA_PUBLIC_EXPONENT,
      P.CKA_EC_PARAMS,
    ];
  return [
    ...head,
    P.CKA_ENCRYPT,
    P.CKA_VERIFY,
    P.CKA_VERIFY_RECOVER,
    P.CKA_WRAP,
    P.CKA_DERIVE,
    P.CKA_MODULUS,
    P.CKA_PUBLIC_EXPONENT,
    P.CKA_EC_PARAMS,
    P.CKA_EC_POINT,
  ];
};
const KEY_TYPES = (P) => ({
  AES: P.CKK_AES,
  GENERIC_SECRET: P.CKK_GENERIC_SECRET,
  RSA: P.CKK_RSA,
  EC: P.CKK_EC,
});
const USAGE = (P) => ({
  encrypt: P.CKA_ENCRYPT,
  decrypt: P.CKA_DECRYPT,
  sign: P.CKA_SIGN,
  verify: P.CKA_VERIFY,
  signRecover: P.CKA_SIGN_RECOVER,
  verifyRecover: P.CKA_VERIFY_RECOVER,
  wrap: P.CKA_WRAP,
  unwrap: P.CKA_UNWRAP,
  derive: P.CKA_DERIVE,
});

function open(P, lib, label, rw) {
  const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === label);
  const s = lib.C_OpenSession(slot, P.CKF_SERIAL_SESSION | (rw ? P.CKF_RW_SESSION : 0));
  lib.C_Login(s, P.CKU_USER, PIN);
  return s;
}

function sessionKek(P, lib, s, value) {
  return lib.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_WRAP, value: true },
    { type: P.CKA_UNWRAP, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    { type: P.CKA_VALUE, value },
  ]);
}

/**
 * One C_GetAttributeValue for all of them; where the module refuses one (an RSA attribute of an EC
 * key), one by one, as custos does.
 */
function readAll(P, lib, s, h, types) {
  // A fresh template each time: pkcs11js fills in the values of the one it is given.
  try {
    return lib.C_GetAttributeValue(s, h, types);
  } catch {
    return types.map(({ type }) => {
      try {
        return lib.C_GetAttributeValue(s, h, [{ type }])[0];
      } catch {
        return { type, value: Buffer.alloc(0) };
      }
    });
  }
}

function findAll(P, lib, s, cls) {
  lib.C_FindObjectsInit(s, [
    { type: P.CKA_CLASS, value: cls },
    { type: P.CKA_TOKEN, value: true },
  ]);
  const out = [];
  for (let b; (b = lib.C_FindObjects(s, 1024)).length;) out.push(...b);
  lib.C_FindObjectsFinal(s);
  return out;
}

/** The template custos unwraps a recorded key with (src/hsm/attributes.ts unwrapTemplate). */
function unwrapTemplate(P, k) {
  const usage = USAGE(P);
  const flags =
    k.class === 'secret'
      ? ['encrypt', 'decrypt', 'sign', 'verify', 'wrap', 'unwrap', 'derive']
      : ['decrypt', 'sign', 'signRecover', 'unwrap', 'derive'];
  return [
    { type: P.CKA_CLASS, value: k.class === 'secret' ? P.CKO_SECRET_KEY : P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: KEY_TYPES(P)[k.keyType] },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: k.extractable },
    { type: P.CKA_LABEL, value: k.label },
    { type: P.CKA_ID, value: Buffer.from(k.id, 'hex') },
    ...flags.map((f) => ({ type: usage[f], value: k.usage[f] === true })),
  ];
}

/** The bare loops: each a whole node process, timed from outside like custos. */
function child(mode, args) {
  const P = require('pkcs11js');
  const lib = new P.PKCS11();
  lib.load(MODULE);
  lib.C_Initialize();
  const kekValue = Buffer.from(args.kek, 'hex');
  const wrapAll = (s, kek, mechanism) => {
    let n = 0;
    for (const cls of [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY]) {
      for (const h of findAll(P, lib, s, cls)) {
        const label = readAll(
          P,
          lib,
          s,
          h,
          ATTRS(P, cls).map((type) => ({ type })),
        )[2].value.toString();
        if (cls === P.CKO_PUBLIC_KEY || (args.only && !args.only.some((p) => label.startsWith(p))))
          continue;
        lib.C_WrapKey(s, { mechanism }, kek, h, Buffer.alloc(cls === P.CKO_SECRET_KEY ? 64 : 8192));
        n++;
      }
    }
    return n;
  };
  const unwrapAll = (s, kek, records, mechanism) => {
    for (const k of records) {
      const h = lib.C_UnwrapKey(
        s,
        { mechanism },
        kek,
        Buffer.from(k.wrapped, 'base64'),
        unwrapTemplate(P, k),
      );
      readAll(
        P,
        lib,
        s,
        h,
        ATTRS(P, k.class === 'secret' ? P.CKO_SECRET_KEY : P.CKO_PRIVATE_KEY).map((type) => ({
          type,
        })),
      );
    }
    return records.length;
  };
  let keys;
  if (mode === 'bare-backup') {
    const s = open(P, lib, args.source, false);
    keys = wrapAll(s, sessionKek(P, lib, s, kekValue), P.CKM_AES_KEY_WRAP_PAD);
    // and the certificates that travel with the keys (none here, but the token must be searched)
    for (const h of findAll(P, lib, s, P.CKO_CERTIFICATE)) {
      readAll(
        P,
        lib,
        s,
        h,
        [P.CKA_LABEL, P.CKA_ID, P.CKA_VALUE, P.CKA_SUBJECT, P.CKA_ISSUER, P.CKA_SERIAL_NUMBER].map(
          (type) => ({ type }),
        ),
      );
    }
  } else if (mode === 'bare-restore') {
    const text = readFileSync(args.bundle, 'utf8');
    const body = JSON.parse(
      text.slice(text.indexOf('\n') + 1, text.lastIndexOf('\n--- hmac-sha256 ') + 1),
    );
    const s = open(P, lib, args.target, true);
    keys = unwrapAll(s, sessionKek(P, lib, s, kekValue), body.keys, P.CKM_AES_KEY_WRAP_PAD);
  } else {
    // A copy: wrap in the source under a shared session key, unwrap in the target, the same reads
    // on both sides.
    const src = open(P, lib, args.source, false);
    const dst = open(P, lib, args.target, true);
    const skek = sessionKek(P, lib, src, kekValue);
    const dkek = sessionKek(P, lib, dst, kekValue);
    const records = [];
    for (const cls of [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY]) {
      for (const h of findAll(P, lib, src, cls)) {
        const a = readAll(
          P,
          lib,
          src,
          h,
          ATTRS(P, cls).map((type) => ({ type })),
        );
        const label = a[2].value.toString();
        if (cls === P.CKO_PUBLIC_KEY || !args.only.some((p) => label.startsWith(p))) continue;
        const keyType = Object.entries(KEY_TYPES(P)).find(
          ([, v]) => v === a[1].value.readUInt32LE(0),
        )[0];
        const blob = Buffer.from(
          lib.C_WrapKey(
            src,
            { mechanism: P.CKM_AES_KEY_WRAP_PAD },
            skek,
            h,
            Buffer.alloc(cls === P.CKO_SECRET_KEY ? 64 : 8192),
          ),
        );
        records.push({
          class: cls === P.CKO_SECRET_KEY ? 'secret' : 'private',
          keyType,
          label,
          id: a[3].value.toString('hex'),
          extractable: true,
          usage: { encrypt: true, decrypt: true, sign: true, verify: true },
          wrapped: blob.toString('base64'),
        });
      }
    }
    keys = unwrapAll(dst, dkek, records, P.CKM_AES_KEY_WRAP_PAD);
  }
  lib.C_Finalize();
  process.stdout.write(`${JSON.stringify({ keys })}\n`);
}

/**
 * Runs a command under GNU time: wall and CPU seconds, peak RSS (MB), its stdout, and its PKCS#11
 * time when traced.
 */
function timed(cmd, args, env) {
  const r = spawnSync('/usr/bin/time', ['-f', 'BENCH-TIME %e %U %S %M', cmd, ...args], {
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const m = /BENCH-TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  const traced = /BENCH-PKCS11 (.*)/.exec(r.stderr);
  return {
    s: Number(m[1]),
    cpu: Number(m[2]) + Number(m[3]),
    rssMB: Number(m[4]) / 1024,
    stdout: r.stdout,
    pkcs11: traced ? JSON.parse(traced[1]) : undefined,
  };
}

const TRACE = join(root, 'test', 'bench', 'pkcs11-time.cjs');
const bare = (mode, args, env, trace = false) => {
  const r = timed(
    process.execPath,
    [
      ...LAUNCHER_FLAGS,
      ...(trace ? ['-r', TRACE] : []),
      fileURLToPath(import.meta.url),
      'child',
      mode,
      JSON.stringify(args),
    ],
    env,
  );
  return { ...r, keys: JSON.parse(r.stdout.trim()).keys };
};
/**
 * bin/custos as a user runs it; traced, the same node and flags with the PKCS#11 timer preloaded.
 */
const custos = (args, env, cwd, trace = false) =>
  timed(
    trace ? process.execPath : BIN,
    trace ? [...LAUNCHER_FLAGS, '-r', TRACE, BIN, ...args] : args,
    { ...env, PWD: cwd },
  );

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const N = opt('--keys', 10000);
  const M = Math.min(opt('--restore', 2000), N);
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  process.chdir(dir);
  const conf = join(dir, 'softhsm2.conf');
  execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    LANG: 'C.UTF-8',
    SOFTHSM2_CONF: conf,
    BENCH_PIN: PIN,
  };
  // Two rounds of each measurement, alternating bare and custos; the faster of each is reported
  // (the machine may be shared).
  const ROUNDS = 2;
  const labels = [
    'src',
    'tiny',
    'copy-bare',
    'copy-custos',
    'dst-bare-t',
    'dst-custos-t',
    ...[...Array(ROUNDS).keys()].flatMap((i) => [`dst-bare-${i}`, `dst-custos-${i}`]),
  ];
  for (const label of labels) {
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', 'bench-so', '--pin', PIN],
      { env, stdio: 'ignore' },
    );
  }
  writeFileSync(
    join(dir, 'custos.yaml'),
    [
      'hsms:',
      ...labels.flatMap((l) => [
        `  ${l}:`,
        `    module: ${MODULE}`,
        `    token: ${l}`,
        '    pin: env:BENCH_PIN',
      ]),
    ].join('\n') + '\n',
  );

  process.env.SOFTHSM2_CONF = conf;
  const { Token } = await import(dist('hsm/token.js'));
  const { generateSecretKey, generateKeyPair } = await import(dist('hsm/generate.js'));
  const { newIdentity, decryptWithAny } = await import(dist('crypto/age.js'));
  const { finalizeModules } = await import(dist('hsm/lifecycle.js'));
  process.stderr.write(
    `making ${N} AES-256 keys, 3 RSA-2048 and 3 EC P-256 key pairs on SoftHSM2...\n`,
  );
  const genStart = performance.now();
  const token = await Token.open({ module: MODULE, token: 'src' }, async () => PIN, true);
  for (let i = 0; i < N; i++) {
    const label = `${i < M ? 'r' : 'b'}-aes-${String(i).padStart(6, '0')}`;
    generateSecretKey(token, {
      label,
      id: i.toString(16).padStart(6, '0'),
      keyType: 'AES',
      bytes: 32,
      extractable: true,
    });
  }
  for (let i = 0; i < 3; i++) {
    generateKeyPair(token, {
      label: `rsa-${i}`,
      id: `aa0${i}`,
      keyType: 'RSA',
      bits: 2048,
      extractable: true,
    });
    generateKeyPair(token, { label: `ec-${i}`, id: `bb0${i}`, keyType: 'EC', extractable: true });
  }
  token.close();
  // A token of ten keys, beside the large one in the same token directory: a backup of it costs
  // what custos costs before any key, which splits its extra memory into fixed and per-key.
  const tiny = await Token.open({ module: MODULE, token: 'tiny' }, async () => PIN, true);
  for (let i = 0; i < TINY; i++) {
    generateSecretKey(tiny, {
      label: `t-aes-${i}`,
      id: `cc${i.toString(16).padStart(4, '0')}`,
      keyType: 'AES',
      bytes: 32,
      extractable: true,
    });
  }
  tiny.close();
  finalizeModules();
  const genSeconds = (performance.now() - genStart) / 1000;

  const custodians = [];
  for (let i = 0; i < 5; i++) {
    const id = await newIdentity();
    writeFileSync(join(dir, `c${i}.key`), `${id.secret}\n`, { mode: 0o600 });
    custodians.push({ id: `c${i}`, recipient: id.recipient, secret: id.secret });
  }
  const policy = (include) =>
    [
      'threshold: 3',
      'custodians:',
      ...custodians.flatMap((c) => [`  - id: ${c.id}`, `    recipient: ${c.recipient}`]),
      ...(include
        ? ['keys:', `  include: [${include.map((g) => JSON.stringify(g)).join(', ')}]`]
        : []),
    ].join('\n') + '\n';
  writeFileSync(join(dir, 'all.yaml'), policy());
  writeFileSync(join(dir, 'restore.yaml'), policy(['r-*', 'rsa-*', 'ec-*']));
  const only = ['r-', 'rsa-', 'ec-'];

  // The KEK of a bundle, as the bare restore needs it: three shares opened and combined outside
  // custos.
  const secrets = require('secrets.js-grempe');
  const kekOf = async (bundle) => {
    const values = [];
    for (const i of [0, 2, 4]) {
      const opened = await decryptWithAny(
        readFileSync(join(dir, `${bundle}.shares`, `c${i}.share`)),
        [{ source: `c${i}`, ...custodians[i] }],
      );
      values.push(/^share: (\S+)$/m.exec(opened.plaintext)[1]);
    }
    return secrets.combine(values);
  };

  const startup = custos(['--version'], env, dir);
  const results = {};
  const best = (runs) => runs.reduce((a, b) => (b.s < a.s ? b : a));
  const peak = (runs) => Math.max(...runs.map((r) => r.rssMB));
  const all = {
    bareBackup: [],
    backup: [],
    backupJson: [],
    bareRestore: [],
    restore: [],
    bareTiny: [],
    tiny: [],
  };
  // Backup: bare loop, custos with its default output (to a pipe: the full list), custos --json;
  // twice over.
  for (let i = 0; i < ROUNDS; i++) {
    all.bareBackup.push(bare('bare-backup', { source: 'src', kek: '11'.repeat(32) }, env));
    all.backup.push(
      custos(
        ['backup', '--hsm', 'src', '--policy', 'all.yaml', '--out', `all-${i}.bundle`],
        env,
        dir,
      ),
    );
    all.backupJson.push(
      custos(
        [
          'backup',
          '--hsm',
          'src',
          '--policy',
          'all.yaml',
          '--out',
          `all-json-${i}.bundle`,
          '--json',
        ],
        env,
        dir,
      ),
    );
    all.bareTiny.push(bare('bare-backup', { source: 'tiny', kek: '33'.repeat(32) }, env));
    all.tiny.push(
      custos(
        ['backup', '--hsm', 'tiny', '--policy', 'all.yaml', '--out', `tiny-${i}.bundle`],
        env,
        dir,
      ),
    );
  }
  custos(
    ['backup', '--hsm', 'src', '--policy', 'restore.yaml', '--out', 'restore.bundle', '--json'],
    env,
    dir,
  );
  const kek = await kekOf('restore.bundle');
  const shareArgs = [0, 2, 4].flatMap((i) => [
    '--share',
    join('restore.bundle.shares', `c${i}.share`),
    '--identity',
    `c${i}.key`,
  ]);
  for (let i = 0; i < ROUNDS; i++) {
    all.bareRestore.push(
      bare(
        'bare-restore',
        { target: `dst-bare-${i}`, bundle: join(dir, 'restore.bundle'), kek },
        env,
      ),
    );
    all.restore.push(
      custos(
        ['restore', '--bundle', 'restore.bundle', '--hsm', `dst-custos-${i}`, ...shareArgs],
        env,
        dir,
      ),
    );
  }
  for (const [k, runs] of Object.entries(all))
    results[k] = { ...best(runs), rssMB: peak(runs), all: runs.map((r) => r.s) };
  // One more run of each, with every PKCS#11 call timed: where the time went.
  const traced = {
    bareBackup: bare('bare-backup', { source: 'src', kek: '11'.repeat(32) }, env, true),
    backup: custos(
      ['backup', '--hsm', 'src', '--policy', 'all.yaml', '--out', 'all-traced.bundle'],
      env,
      dir,
      true,
    ),
    bareRestore: bare(
      'bare-restore',
      { target: 'dst-bare-t', bundle: join(dir, 'restore.bundle'), kek },
      env,
      true,
    ),
    restore: custos(
      ['restore', '--bundle', 'restore.bundle', '--hsm', 'dst-custos-t', ...shareArgs],
      env,
      dir,
      true,
    ),
  };
  results.bareCopy = bare(
    'bare-copy',
    { source: 'src', target: 'copy-bare', kek: '22'.repeat(32), only },
    env,
  );
  results.copy = custos(
    ['backup', '--hsm', 'src', '--to-hsm', 'copy-custos', '--policy', 'restore.yaml'],
    env,
    dir,
  );
  const bundleMB = readFileSync(join(dir, 'all-0.bundle')).length / 1e6;
  const tableLines = results.backup.stdout.split('\n').length;
  if (process.env.BENCH_KEEP) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });

  const row = (name, r, keys) =>
    `${name.padEnd(22)} ${String(keys).padStart(6)} keys ${r.s.toFixed(2).padStart(7)} s  peak RSS ${r.rssMB.toFixed(0).padStart(4)} MB` +
    (r.all ? `  (runs: ${r.all.map((x) => x.toFixed(2)).join(', ')} s)` : '');
  console.log(
    `SoftHSM2 benchmark: ${N} AES-256 keys (+3 RSA-2048, +3 EC P-256) generated in ${genSeconds.toFixed(1)} s; bundle ${bundleMB.toFixed(1)} MB`,
  );
  console.log(
    `each figure is a whole process timed from outside (GNU time): node start-up, module load and login included; the faster of ${ROUNDS} runs, and the higher peak RSS`,
  );
  console.log(row('custos --version', startup, 0));
  console.log(row('bare backup', results.bareBackup, results.bareBackup.keys));
  console.log(
    row('custos backup', results.backup, N + 6) +
      `  (default output: ${tableLines} lines on stdout)`,
  );
  console.log(row('custos backup --json', results.backupJson, N + 6));
  console.log(row('bare restore', results.bareRestore, results.bareRestore.keys));
  console.log(row('custos restore', results.restore, results.bareRestore.keys));
  console.log(row('bare copy', results.bareCopy, results.bareCopy.keys));
  console.log(row('custos copy', results.copy, results.bareCopy.keys));
  const ratio = (a, b) => a.s / b.s;
  const backupRatio = ratio(results.backup, results.bareBackup);
  const restoreRatio = ratio(results.restore, results.bareRestore);
  const extraRss = results.backup.rssMB - results.bareBackup.rssMB;
  const ok = (v, max) => (v <= max ? 'within target' : 'OVER TARGET');
  console.log(
    `backup ratio  ${backupRatio.toFixed(2)}x the bare loop, default output (target <= 1.30: ${ok(backupRatio, 1.3)})`,
  );
  console.log(
    `restore ratio ${restoreRatio.toFixed(2)}x the bare loop (target <= 1.15: ${ok(restoreRatio, 1.15)})`,
  );
  console.log(
    `copy ratio    ${ratio(results.copy, results.bareCopy).toFixed(2)}x the bare loop (no target; custos also makes and negotiates the transport keys)`,
  );
  console.log(
    `backup peak RSS: custos ${results.backup.rssMB.toFixed(0)} MB, bare ${results.bareBackup.rssMB.toFixed(0)} MB: +${extraRss.toFixed(0)} MB (target <= +25 MB: ${ok(extraRss, 25)})`,
  );
  const fixedRss = results.tiny.rssMB - results.bareTiny.rssMB;
  console.log(
    `where the memory went: on a ${TINY}-key token beside the large one, custos ${results.tiny.rssMB.toFixed(0)} MB, bare ${results.bareTiny.rssMB.toFixed(0)} MB: ` +
      `+${fixedRss.toFixed(0)} MB before any key (node modules custos loads: yaml, commander, age-encryption with its noble curves and ML-KEM, ` +
      `secrets.js-grempe, custos itself; the bare loop loads pkcs11js alone); the ${N} keys add +${(extraRss - fixedRss).toFixed(0)} MB more than they add to the bare loop ` +
      '(the records and the bundle, held until the bundle is written); the rest of both figures is SoftHSM2 holding the token directory',
  );
  const split = (r) => {
    const hsm = r.pkcs11.ms / 1000;
    const top = Object.entries(r.pkcs11.calls)
      .sort((a, b) => b[1][1] - a[1][1])
      .slice(0, 4)
      .map(([n, [c, t]]) => `${n} ${c}x ${(t / 1000).toFixed(2)} s`)
      .join(', ');
    return `${r.s.toFixed(2)} s (cpu ${r.cpu.toFixed(2)} s): ${hsm.toFixed(2)} s in PKCS#11 calls [${top}], ${(r.s - hsm).toFixed(2)} s elsewhere`;
  };
  console.log('where the time went (one more run of each, every PKCS#11 call timed):');
  console.log(
    `  node start-up and custos's imports alone (custos --version): ${startup.s.toFixed(2)} s`,
  );
  console.log(`  bare backup:    ${split(traced.bareBackup)}`);
  console.log(`  custos backup:  ${split(traced.backup)}`);
  console.log(`  bare restore:   ${split(traced.bareRestore)}`);
  console.log(`  custos restore: ${split(traced.restore)}`);
  console.log(
    `  backup's default output (the full list, to a pipe) over --json: ${(results.backup.s - results.backupJson.s).toFixed(2)} s (fastest runs)`,
  );
  console.log(
    '  custos, beyond the HSM: start-up and imports, the known-answer test, reading policy and identities, the MAC and digest, ' +
      'five age-encrypted shares and the recombination proof, atomic writes, output; a restore also judges shares, plans against the target, ' +
      'proves each key (a check value and a re-wrap inside the HSM, a test signature per private key) and creates the public keys',
  );
}

if (process.argv[2] === 'child') child(process.argv[3], JSON.parse(process.argv[4]));
else await main();
