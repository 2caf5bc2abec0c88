#!/usr/bin/env node
// Benchmark: opening share files as a restore does (custos openShares: every share file, every
// identity given) against a bare baseline in the same run: age-encryption decrypting each file
// with its one right identity. Prints figures and ratios; asserts nothing.
//   node test/bench/shares-open.mjs [--n 255]
// Build first (npx tsc -p tsconfig.json): it runs dist/.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Decrypter,
  Encrypter,
  armor,
  generateX25519Identity,
  identityToRecipient,
} from 'age-encryption';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { openShares } = await import(join(root, 'dist', 'ops', 'shares.js'));
const { parseIdentityFile } = await import(join(root, 'dist', 'crypto', 'age.js'));

const n = Number(process.argv[process.argv.indexOf('--n') + 1] || 255) || 255;
const dir = mkdtempSync(join(tmpdir(), 'custos-bench-shares-'));
try {
  // n custodians: an identity each, and a share file (armored age, as custos writes them) to each.
  const secrets = [];
  const paths = [];
  for (let i = 0; i < n; i++) {
    const secret = await generateX25519Identity();
    const e = new Encrypter();
    e.addRecipient(await identityToRecipient(secret));
    const path = join(dir, `c${i}.share`);
    writeFileSync(
      path,
      armor.encode(
        await e.encrypt(
          `custos-share/1\nplaintext of share ${i}, about the size of a real one: ${'x'.repeat(400)}\n`,
        ),
      ),
    );
    secrets.push(secret);
    paths.push(path);
  }
  const identities = [];
  for (const [i, s] of secrets.entries())
    identities.push(...(await parseIdentityFile(`c${i}.key`, `${s}\n`)));
  const ctx = { cwd: dir, env: {}, out: null };

  const time = async (fn) => {
    const t0 = performance.now();
    const r = await fn();
    return { ms: performance.now() - t0, r };
  };

  // Bare: each file read and decrypted with the one identity that opens it.
  const bare = await time(async () => {
    for (let i = 0; i < n; i++) {
      const d = new Decrypter();
      d.addIdentity(secrets[i]);
      await d.decrypt(armor.decode(readFileSync(paths[i], 'utf8')), 'text');
    }
  });

  const shuffled = [...identities];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const runs = [
    ['identities in the order of the shares', identities],
    ['identities in reverse order', [...identities].reverse()],
    ['identities in random order', shuffled],
  ];
  console.log(
    `opening ${n} share files with ${n} identities (every identity given for every share)`,
  );
  console.log(`  bare age-encryption, right identity each : ${bare.ms.toFixed(0).padStart(7)} ms`);
  for (const [name, ids] of runs) {
    const r = await time(() => openShares(ctx, paths, ids));
    const opened = r.r.filter(
      (c) =>
        'share' in c.opened ||
        (c.opened.failure === 'malformed' && !/identities/.test(c.opened.detail)),
    ).length;
    console.log(
      `  custos openShares, ${name.padEnd(38)}: ${r.ms.toFixed(0).padStart(7)} ms  (${(r.ms / bare.ms).toFixed(2)} x bare; ${opened} of ${n} opened)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
