/**
 * What the fuzzer feeds: every custos parser, each driven through the ops loader a command uses
 * where there is one, and the real CLI for a sample. Seeds are the good files of spec/vectors/
 * (and the bad ones, as donors for splices), plus the files spec/vectors has none of, made here
 * with the real writers: a domain file with an enrolment, domain shares, a domain bundle
 * (custos-bundle/2) signed by its enrolled key, identity files, configuration files.
 *
 * A run passes if the reader returns, or throws a CustosError that is not E_INTERNAL and whose
 * message, hint and details carry no engine text; within the target's time limit.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Encrypter, armor } from 'age-encryption';
import {
  BUNDLE_MAC_PURPOSE,
  domainBundleAuthenticatedBytes,
  parseBundle,
  serialiseBundle,
  type BundleContents,
  type DomainSeal,
} from '../../src/core/bundle.js';
import { parseShare } from '../../src/core/share.js';
import { parseCeremony } from '../../src/core/ceremony.js';
import { parsePayload, parseSubmission } from '../../src/core/submission.js';
import { parseEntryLine } from '../../src/core/audit/entry.js';
import { checkLog } from '../../src/core/audit/check.js';
import { evaluateRequest, parseRequest } from '../../src/core/handover.js';
import { parsePackage } from '../../src/core/handover-package.js';
import {
  enrolmentSignedBytes,
  parseDomain,
  serialiseDomain,
  type Enrolment,
} from '../../src/core/domain.js';
import { isSelected, parseKeySelection, parsePolicy } from '../../src/core/policy.js';
import { parseConfig } from '../../src/core/config.js';
import { CustosError } from '../../src/core/errors.js';
import type { Candidate } from '../../src/core/quorum.js';
import { hmacWithKek } from '../../src/crypto/aes.js';
import { signerFromSecret, verifyEd25519 } from '../../src/crypto/ed25519.js';
import { sha256Hex } from '../../src/crypto/check-values.js';
import {
  encryptBytesToRecipient,
  encryptToRecipient,
  parseIdentityFile,
  type NamedIdentity,
} from '../../src/crypto/age.js';
import { requestRecipient } from '../../src/crypto/rsa-aes-wrap.js';
import {
  assembleKek,
  identityFromFile,
  judgeShares,
  loadBundle,
  loadIdentities,
  openShares,
  requireQuorum,
} from '../../src/ops/shares.js';
import { verifyDomainShare } from '../../src/ops/verify-share.js';
import { parseTokenStub } from '../../src/core/token-stub.js';
import { loadCeremony } from '../../src/ops/ceremony/host.js';
import { judgeSubmissions } from '../../src/ops/ceremony/judge.js';
import { handoverStatus } from '../../src/ops/handover/status.js';
import { loadRequest } from '../../src/ops/handover/load.js';
import { verifyPackage } from '../../src/ops/handover/verify.js';
import { loadDomain, domainSubject } from '../../src/ops/domain/load.js';
import { newGeneration } from '../../src/ops/domain/init.js';
import { dealShares } from '../../src/ops/escrow.js';
import { loadConfig } from '../../src/ops/context.js';
import { run as runShow } from '../../src/cli/audit/show.js';
import { run as runVerify } from '../../src/cli/audit/verify.js';
import { describeCeremony } from '../../src/cli/ceremony-view.js';
import { run as sharesVerify } from '../../src/cli/shares-verify.js';
import { run as domainShow } from '../../src/cli/domain-show.js';
import { run as policyCheck } from '../../src/cli/policy-check.js';
import { run as handoverStatusCommand } from '../../src/cli/handover/status.js';
import { run as handoverVerifyCommand } from '../../src/cli/handover/verify.js';
import { capturingOutput, testContext } from '../unit/on-disk.js';
import { makeBody, signShare } from '../unit/fixtures.js';
import type { JsonLayout } from './mutate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VECTORS = join(ROOT, 'spec', 'vectors');
export const BIN = join(ROOT, 'bin', 'custos');

/** Engine text that must never reach a user: JavaScript, JSON, YAML and OpenSSL messages. */
export const ENGINE =
  /Unexpected token|Unexpected end of JSON|Unexpected non-whitespace|in JSON at position|JSON\.parse|YAMLParseError|YAMLException|Maximum call stack|call stack size|decode error|asn1|header too long|wrong tag|routines::|ERR_[A-Z0-9_]{4,}|Invalid time value|Invalid Date|\bNaN\b|TypeError|RangeError|ReferenceError|SyntaxError|Cannot read propert|Cannot convert|is not a function|is not iterable|\[object Object\]|\bundefined\b|Source contains multiple documents|parseAllDocuments/;

export interface Target {
  name: string;
  layout: JsonLayout;
  seeds: Buffer[];
  /** Longest a case may take (ms). */
  limitMs: number;
  run(input: Buffer): Promise<unknown> | unknown;
}

/** What a terminal must not receive raw (the line feed aside). */
const RAW =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * Why the outcome is a failure, or null when it is a clean result or a clean, typed refusal. A
 * target that renders what a command prints returns it as `{ shown }`: it must hold no engine
 * text (NaN, undefined…) and nothing raw that a terminal would obey.
 */
export function judgeOutcome(
  outcome: { error?: unknown; value?: unknown },
  ms: number,
  limitMs: number,
): string | null {
  if (ms > limitMs) return `took ${Math.round(ms)} ms (limit ${limitMs} ms)`;
  const shown = (outcome.value as { shown?: unknown } | undefined)?.shown;
  if (typeof shown === 'string') {
    const m = ENGINE.exec(shown);
    if (m)
      return `printed engine text "${m[0]}": ${shown.slice(Math.max(0, m.index - 200), m.index + 200)}`;
    const raw = RAW.exec(shown);
    if (raw)
      return `printed a raw U+${(raw[0].codePointAt(0) as number).toString(16).padStart(4, '0')}: ${JSON.stringify(shown.slice(Math.max(0, raw.index - 100), raw.index + 100))}`;
  }
  const e = outcome.error;
  if (e === undefined) return null;
  if (!(e instanceof CustosError))
    return `threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`;
  if (e.code === 'E_INTERNAL') return `E_INTERNAL: ${e.message}`;
  for (const text of [e.message, e.hint ?? '', ...e.details]) {
    const m = ENGINE.exec(text);
    if (m) return `${e.code} with engine text "${m[0]}": ${text.slice(0, 300)}`;
  }
  return null;
}

const manifest = JSON.parse(readFileSync(join(VECTORS, 'MANIFEST.json'), 'utf8')) as {
  keys: Record<string, any>;
  vectors: { file: string; openedWith?: string; now?: string }[];
};
const vector = (f: string) => readFileSync(join(VECTORS, f));
const filesIn = (dir: string, pattern: RegExp) =>
  readdirSync(join(VECTORS, dir))
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => `${dir}/${f}`);

export interface Workspace {
  dir: string;
  targets: Target[];
  /**
   * For the CLI restore sample: a forged bundle (MAC and shares made again over the mutant) and its
   * share files.
   */
  forgeOnDisk(input: Buffer): Promise<{ bundle: string; shares: string[]; identities: string[] }>;
  cleanup(): void;
}

/**
 * Makes the seeds and the workspace the loaders read from (a copy of spec/vectors), and the
 * targets.
 */
export async function makeWorkspace(): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-fuzz-'));
  cpSync(VECTORS, join(dir, 'v'), { recursive: true });
  const v = (p: string) => join('v', p);
  mkdirSync(join(dir, 'f'));
  const ctx = testContext(dir, capturingOutput().out);
  ctx.env = { CUSTOS_PASSPHRASE: 'correct horse' };
  /**
   * Runs a command's own code with a fresh Output, and gives back what it printed, errors included.
   */
  const shown = async (
    run: (c: typeof ctx) => Promise<unknown> | unknown,
  ): Promise<{ shown: string }> => {
    const o = capturingOutput();
    const c = { ...ctx, out: o.out };
    try {
      await run(c);
    } catch (e) {
      if (e instanceof CustosError) c.out.error(e);
      const text = o.stdout() + o.stderr();
      const m = ENGINE.exec(text) ?? RAW.exec(text);
      if (m) throw Object.assign(e as object, { shownText: text });
      throw e;
    }
    return { shown: o.stdout() + o.stderr() };
  };
  const write = (name: string, data: Buffer | string) => {
    writeFileSync(join(dir, 'f', name), data);
    return join('f', name);
  };

  // ---- the spec's custodians: identity files, and their share files as age files
  const custodians = manifest.keys.custodians as Record<
    string,
    { ageIdentity: string; ageRecipient: string }
  >;
  const identities: NamedIdentity[] = [];
  const identityPath: Record<string, string> = {};
  for (const [id, c] of Object.entries(custodians)) {
    identityPath[id] = write(`${id}.key`, `# spec test identity of ${id}\n${c.ageIdentity}\n`);
    identities.push(...(await parseIdentityFile(id, `${c.ageIdentity}\n`)));
  }
  const okShares = [
    'share/ok-hale-llp.share',
    'share/ok-okafor-law.share',
    'share/ok-lindqvist.share',
  ];
  const shareCandidates: Candidate[] = okShares.map((f) => ({
    source: f,
    opened: {
      share: parseShare(f, vector(f).toString('utf8')),
      recipient: manifest.vectors.find((x) => x.file === f)?.openedWith as string,
    },
  }));
  const armoredShares: Buffer[] = [];
  for (const c of shareCandidates) {
    if ('failure' in c.opened) continue;
    armoredShares.push(
      Buffer.from(
        await encryptToRecipient(c.opened.recipient, vector(c.source).toString('utf8')),
        'utf8',
      ),
    );
  }
  write('hale.share', armoredShares[0] as Buffer);

  // ---- an escrow domain of those custodians, with one enrolled P-256 key; its shares; a domain
  // bundle
  const policyText = `threshold: 2\ncustodians:\n${Object.entries(custodians)
    .map(([id, c]) => `  - id: ${id}\n    name: ${id} LLP\n    recipient: ${c.ageRecipient}\n`)
    .join('')}`;
  const policy = parsePolicy('domain-policy.yaml', policyText);
  const gen = await newGeneration({
    policy,
    policyRecord: { name: 'domain-policy.yaml', sha256: sha256Hex(Buffer.from(policyText)) },
    domainId: randomBytes(16).toString('hex'),
    generation: 1,
    seal: 'age-x25519',
  });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const unsigned = {
    domain: gen.digest,
    source: {
      label: 'src-hsm',
      serial: '01',
      manufacturer: 'SoftHSM project',
      model: 'SoftHSM v2',
    },
    keyId: '0a0b',
    publicKey: ec.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    enrolled: '2026-03-01T09:30:00.000Z',
    endorser: 'authority',
  };
  const enrolment: Enrolment = {
    ...unsigned,
    signature: gen.authority.sign(enrolmentSignedBytes(unsigned)).toString('base64'),
  };
  const domainFile = serialiseDomain(gen.core, gen.authority.sign(gen.core), [enrolment]);
  const domainPath = write('good.domain', domainFile);
  const { plaintexts: domainShareTexts } = dealShares(
    domainSubject(gen.body, gen.digest),
    gen.dealer,
    gen.secret.identity,
  );
  const ids = Object.keys(custodians);
  const domainShareFiles: string[] = [];
  for (const [i, text] of domainShareTexts.entries())
    domainShareFiles.push(
      write(
        `domain-${i}.share`,
        await encryptToRecipient(custodians[ids[i] as string]?.ageRecipient as string, text),
      ),
    );
  const domainCandidates: Candidate[] = domainShareTexts.map((t, i) => ({
    source: `domain-${i}`,
    opened: {
      share: parseShare('d', t),
      recipient: custodians[ids[i] as string]?.ageRecipient as string,
    },
  }));

  const kek = randomBytes(32);
  const { keys, skipped, ...head } = makeBody(kek, {
    publicKey: Buffer.alloc(32),
    sign: () => Buffer.alloc(64),
  });
  const contents: BundleContents = {
    bundleId: head.bundleId,
    created: head.created,
    tool: head.tool,
    source: head.source,
    kek: head.kek,
    wrap: head.wrap,
    keys,
    skipped,
    policy: gen.body.policy,
  };
  contents.kek = {
    algorithm: 'AES-256',
    kcv: (await import('../../src/crypto/aes.js')).aesKcv(kek),
  };
  const seal: DomainSeal = {
    core: gen.body,
    chain: [enrolment],
    sealedKek: {
      recipient: gen.body.seal.recipient,
      age: await encryptBytesToRecipient(gen.body.seal.recipient, kek),
    },
  };
  const authenticated = domainBundleAuthenticatedBytes(contents, seal);
  const v2Bundle = serialiseBundle(
    authenticated,
    hmacWithKek(kek, BUNDLE_MAC_PURPOSE, authenticated),
    {
      by: 'source',
      value: sign('sha256', authenticated, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
    },
  );
  gen.secret.identity.fill(0);

  // ---- identity files: plain, commented, several keys, and one encrypted with a passphrase (a low
  // work factor)
  const e = new Encrypter();
  e.setPassphrase('correct horse');
  e.setScryptWorkFactor(10);
  const idSeeds = [
    Buffer.from(`${custodians['hale-llp']?.ageIdentity}\n`),
    Buffer.from(
      `# created: 2026-01-01T00:00:00Z\n# public key: ${custodians['hale-llp']?.ageRecipient}\n${custodians['hale-llp']?.ageIdentity}\n`,
    ),
    Buffer.from(
      Object.values(custodians)
        .map((c) => c.ageIdentity)
        .join('\n'),
    ),
    Buffer.from(armor.encode(await e.encrypt(`${custodians['okafor-law']?.ageIdentity}\n`))),
  ];

  const configSeeds = [
    'hsms:\n  prod:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token: prod\n    pin: env:PROD_PIN\n    so-pin: file:so.pin\n  dr:\n    module: ./lib.so\n    token: dr\n    pin: escrow:escrow-dir\n',
    '# empty\n',
    'hsms:\n  a: {module: m.so, token: "t a", pin: prompt}\n',
  ].map((s) => Buffer.from(s));
  const policySeeds = [
    join(ROOT, 'policies', 'dr-3-of-5.yaml'),
    join(ROOT, 'policies', 'dfs-custodial.yaml'),
  ]
    .map((p) => readFileSync(p))
    .concat(Buffer.from(policyText));

  // ---- the restore ceremony of the spec, and a host that holds its key, for submissions
  const restoreCeremony = loadCeremony(ctx, v('ceremony/ok-restore.ceremony'));
  const hostDir = join(dir, 'host');
  mkdirSync(hostDir);
  const host = {
    dir: hostDir,
    identity: (
      await parseIdentityFile('host', `${manifest.keys.restoreCeremony.ageIdentity}\n`)
    )[0] as NamedIdentity,
    signer: { publicKey: Buffer.alloc(32), sign: () => Buffer.alloc(64) },
  };
  const submissionNow = new Date(
    manifest.vectors.find((x) => x.file === 'submission/ok-hale-llp.submission')?.now ??
      restoreCeremony.body.created,
  );

  // ---- a forger who holds the KEK and the dealer key (as someone holding every custodian identity
  // could make them): a mutated bundle body is MACed again and its shares signed again over it
  const specKek = Buffer.from(manifest.keys.kek as string, 'hex');
  const specDealer = signerFromSecret(
    Buffer.concat([
      Buffer.from('302e020100300506032b657004220420', 'hex'),
      Buffer.from(manifest.keys.dealer.seed as string, 'hex'),
    ]),
  );
  const forge = (input: Buffer): { file: Buffer; candidates: Candidate[] } => {
    const text = input.toString('latin1');
    const end = text.indexOf('\n--- ');
    const authenticated = input.subarray(0, end < 0 ? input.length : end + 1);
    const file = Buffer.concat([
      authenticated,
      Buffer.from(
        `--- hmac-sha256 ${hmacWithKek(specKek, BUNDLE_MAC_PURPOSE, authenticated).toString('base64')}\n`,
      ),
    ]);
    let bundleId = '';
    try {
      const body = JSON.parse(
        authenticated.toString('utf8').slice(authenticated.indexOf(0x0a) + 1),
      ) as { bundleId?: unknown };
      if (typeof body.bundleId === 'string' && /^[0-9a-f]{32}$/.test(body.bundleId))
        bundleId = body.bundleId;
    } catch {
      // not JSON: the shares keep their id
    }
    const candidates = shareCandidates.map((c): Candidate => {
      if (!('share' in c.opened)) return c;
      const doc = {
        ...c.opened.share.doc,
        bundleDigest: sha256Hex(authenticated),
        ...(bundleId ? { bundleId } : {}),
      };
      return {
        source: c.source,
        opened: {
          share: parseShare(c.source, signShare(specDealer, doc)),
          recipient: c.opened.recipient,
        },
      };
    });
    return { file, candidates };
  };

  const recipientKey = write('recipient.pem', manifest.keys.recipientPrivateKeyPem as string);
  const seedsOf = (files: string[]) => files.map(vector);

  const targets: Target[] = [
    {
      name: 'bundle v1 and v2: parse',
      layout: 'envelope',
      limitMs: 2000,
      seeds: [
        ...seedsOf(filesIn('bundle', /^ok-/)),
        v2Bundle,
        ...seedsOf(filesIn('envelope', /\.bundle$/).slice(0, 4)),
      ],
      run: (input) => parseBundle('fuzz.bundle', input),
    },
    {
      name: 'bundle v1: load, judge a quorum, check KEK and MAC (restore up to the HSM)',
      layout: 'envelope',
      limitMs: 3000,
      seeds: seedsOf([
        'bundle/ok-keys.bundle',
        'bundle/ok-unknown-fields.bundle',
        'bundle/ok-minimal.bundle',
      ]),
      run: async (input) => {
        const bundle = loadBundle(ctx, write('v1.bundle', input));
        const state = judgeShares(
          bundle.quorum,
          bundle.domain ? domainCandidates : shareCandidates,
        );
        requireQuorum(bundle, state);
        (await assembleKek(bundle, state)).fill(0);
      },
    },
    {
      name: 'bundle v1 forged (valid MAC and dealer signatures): load, judge, KEK and MAC',
      layout: 'envelope',
      limitMs: 3000,
      seeds: seedsOf(['bundle/ok-keys.bundle', 'bundle/ok-unknown-fields.bundle']),
      run: async (input) => {
        const { file, candidates } = forge(input);
        const bundle = loadBundle(ctx, write('forged.bundle', file));
        const state = judgeShares(bundle.quorum, candidates);
        requireQuorum(bundle, state);
        (await assembleKek(bundle, state)).fill(0);
      },
    },
    {
      name: 'bundle v2 (domain): load, judge domain shares, check signer chain, open the sealed KEK, MAC',
      layout: 'envelope',
      limitMs: 4000,
      seeds: [v2Bundle],
      run: async (input) => {
        const bundle = loadBundle(ctx, write('v2.bundle', input));
        const state = judgeShares(
          bundle.quorum,
          bundle.domain ? domainCandidates : shareCandidates,
        );
        requireQuorum(bundle, state);
        (await assembleKek(bundle, state)).fill(0);
      },
    },
    {
      name: 'share and domain share: parse',
      layout: 'none',
      limitMs: 1000,
      seeds: [
        ...seedsOf(okShares),
        ...domainShareTexts.map((t) => Buffer.from(t)),
        ...seedsOf(filesIn('share', /^bad-/).slice(0, 5)),
      ],
      run: (input) => parseShare('fuzz.share', input.toString('utf8')),
    },
    {
      name: 'share file (age): open with identities, judge against the bundle (shares verify)',
      layout: 'none',
      limitMs: 3000,
      seeds: armoredShares,
      run: async (input) => {
        const share = write('x.share', input);
        const owner = ['hale-llp', 'okafor-law', 'lindqvist'][input.length % 3] as string;
        judgeShares(
          loadBundle(ctx, v('bundle/ok-keys.bundle')).quorum,
          await openShares(ctx, [share], identities),
        );
        return shown((c) =>
          sharesVerify(c, {
            bundle: v('bundle/ok-keys.bundle'),
            share,
            identity: identityPath[owner] as string,
          }),
        );
      },
    },
    {
      name: 'domain share file (age): open, judge against the domain (shares verify --domain)',
      layout: 'none',
      limitMs: 3000,
      seeds: domainShareFiles.map((f) => readFileSync(join(dir, f))),
      run: async (input) => {
        const share = write('d.share', input);
        await verifyDomainShare(
          ctx,
          domainPath,
          share,
          identityPath[ids[input.length % ids.length] as string] as string,
        );
        return shown((c) =>
          sharesVerify(c, {
            domain: domainPath,
            share,
            identity: identityPath[ids[input.length % ids.length] as string] as string,
          }),
        );
      },
    },
    {
      name: 'domain file: parse, load and check its signatures and enrolment chain',
      layout: 'envelope',
      limitMs: 2000,
      seeds: [domainFile],
      run: (input) => {
        parseDomain('fuzz.domain', input, sha256Hex);
        const path = write('x.domain', input);
        loadDomain(ctx, path);
        return shown((c) => domainShow(c, { domain: path }));
      },
    },
    {
      name: 'ceremony: load (parse, signature) and describe to a custodian',
      layout: 'envelope',
      limitMs: 2000,
      seeds: [
        ...seedsOf(filesIn('ceremony', /^ok-/)),
        ...seedsOf(filesIn('envelope', /\.ceremony$/).slice(0, 3)),
      ],
      run: (input) => {
        parseCeremony('fuzz.ceremony', input, verifyEd25519);
        const lines = describeCeremony(loadCeremony(ctx, write('x.ceremony', input)));
        return shown((c) => c.out.data(lines));
      },
    },
    {
      name: 'submission and payload: judged by the ceremony host (ceremony add)',
      layout: 'none',
      limitMs: 3000,
      seeds: seedsOf([
        ...filesIn('submission', /^ok-.*\.submission$/),
        ...filesIn('submission', /^bad-.*\.submission$/).slice(0, 4),
      ]),
      run: async (input) => {
        try {
          parseSubmission('fuzz.submission', input.toString('utf8'));
        } catch (e) {
          if (!(e instanceof CustosError)) throw e;
        }
        await judgeSubmissions(
          restoreCeremony,
          host,
          [{ source: 'fuzz.submission', bytes: input }],
          submissionNow,
        );
      },
    },
    {
      name: 'submission payload: parse',
      layout: 'none',
      limitMs: 1000,
      seeds: seedsOf(filesIn('submission', /\.payload$/)),
      run: (input) => parsePayload('fuzz.payload', input.toString('utf8')),
    },
    {
      // Parsed only: loading one as an identity opens the module it names, which a fuzzer must not
      // choose.
      name: 'token identity file: parse',
      layout: 'none',
      limitMs: 1000,
      seeds: seedsOf(filesIn('token-identity', /\.token-identity$/)),
      run: (input) => parseTokenStub('fuzz.token-identity', input),
    },
    {
      name: 'audit log line: parse',
      layout: 'lines',
      limitMs: 1000,
      seeds: seedsOf(filesIn('audit', /^ok-/)).flatMap((b) =>
        b
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => Buffer.from(l)),
      ),
      run: (input) => parseEntryLine(input.toString('utf8')),
    },
    {
      name: 'audit log: verify and show (the commands, with their output)',
      layout: 'lines',
      limitMs: 3000,
      seeds: [
        ...seedsOf(filesIn('audit', /^ok-/)),
        ...seedsOf(filesIn('audit', /^bad-/).slice(0, 4)),
      ],
      run: async (input) => {
        checkLog(input, verifyEd25519, sha256Hex);
        const log = write('x.jsonl', input);
        const table = await shown((c) => runShow(c, { log }));
        const json = await shown((c) => runShow(c, { log, json: true }));
        try {
          await runVerify(ctx, { log });
        } catch (e) {
          if (!(e instanceof CustosError && e.code === 'E_AUDIT_TAMPERED')) throw e;
        }
        return { shown: table.shown + json.shown };
      },
    },
    {
      name: 'handover request: load (policy digest, recipient, policy), approvals, status',
      layout: 'envelope',
      limitMs: 3000,
      seeds: [
        ...seedsOf(filesIn('handover-request', /^ok-/)),
        ...seedsOf(filesIn('envelope', /\.request$/).slice(0, 3)),
      ],
      run: async (input) => {
        const parsed = parseRequest('fuzz.request', input);
        requestRecipient('fuzz.request', parsed.body.recipient);
        const p = parsePolicy('embedded', parsed.body.policy.text);
        evaluateRequest(
          parsed,
          p,
          sha256Hex(parsed.signed),
          verifyEd25519,
          new Date(),
          (l) => !!p.handover && isSelected(l, p.handover.keys),
        );
        const path = write('x.request', input);
        loadRequest(ctx, path);
        await handoverStatus(ctx, path);
        return shown((c) => handoverStatusCommand(c, { request: path }));
      },
    },
    {
      name: 'handover package: verify (with and without the recipient key)',
      layout: 'envelope',
      limitMs: 4000,
      seeds: [
        ...seedsOf(filesIn('handover-package', /^ok-/)),
        ...seedsOf(filesIn('envelope', /\.package$/).slice(0, 3)),
      ],
      run: (input) => {
        parsePackage('fuzz.package', input);
        const path = write('x.package', input);
        verifyPackage(ctx, path, input.length % 2 ? recipientKey : undefined);
        return shown((c) =>
          handoverVerifyCommand(c, {
            package: path,
            ...(input.length % 2 ? { key: recipientKey } : {}),
          }),
        );
      },
    },
    {
      name: 'policy YAML: parse (and its key selection alone)',
      layout: 'none',
      limitMs: 2000,
      seeds: policySeeds,
      run: (input) => {
        const text = input.toString('utf8');
        try {
          parseKeySelection('fuzz.yaml', text);
        } catch (e) {
          if (!(e instanceof CustosError)) throw e;
        }
        parsePolicy('fuzz.yaml', text);
        const path = write('x-policy.yaml', input);
        return shown((c) => policyCheck(c, { file: path }));
      },
    },
    {
      name: 'configuration YAML: load (custos.yaml)',
      layout: 'none',
      limitMs: 2000,
      seeds: configSeeds,
      run: (input) => {
        parseConfig('fuzz.yaml', input.toString('utf8'));
        loadConfig(dir, write('custos.yaml', input));
      },
    },
    {
      name: 'age identity file: load (plain and passphrase-protected)',
      layout: 'none',
      limitMs: 15_000,
      seeds: idSeeds,
      run: async (input) => {
        await identityFromFile(ctx, 'fuzz.key', input);
        await loadIdentities(ctx, [write('x.key', input)]);
      },
    },
  ];
  const forgeOnDisk = async (input: Buffer) => {
    const { file, candidates } = forge(input);
    const bundle = join(dir, write('restore.bundle', file));
    const shares: string[] = [];
    const owners: string[] = [];
    for (const [i, c] of candidates.slice(0, 2).entries()) {
      if (!('share' in c.opened)) continue;
      const owner = Object.keys(custodians).find(
        (id) => custodians[id]?.ageRecipient === (c.opened as { recipient: string }).recipient,
      ) as string;
      const plain = Buffer.concat([
        c.opened.share.signed,
        Buffer.from(`signature: ${c.opened.share.signature.toString('base64')}\n`),
      ]).toString('utf8');
      shares.push(
        join(
          dir,
          write(
            `restore-${i}.share`,
            await encryptToRecipient(custodians[owner]?.ageRecipient as string, plain),
          ),
        ),
      );
      owners.push(join(dir, identityPath[owner] as string));
    }
    return { bundle, shares, identities: owners };
  };
  return {
    dir,
    targets,
    forgeOnDisk,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A sample through the real CLI: each command that reads a file, given a mutated one. */
export interface CliCase {
  name: string;
  /** The file the mutant replaces, and the command line given the mutant's path. */
  seed: Buffer;
  args: (file: string) => string[];
  /**
   * Instead of writing the mutant to one file: makes what the command reads, and gives its command
   * line.
   */
  prepare?: (input: Buffer) => Promise<string[]>;
  env?: Record<string, string>;
}

/**
 * `custos restore` into a fresh SoftHSM token, of a forged bundle: the mutant MACed again with
 * the KEK and its shares signed again with the dealer key, as someone holding every custodian
 * identity could make them. This reaches what a restore does after the quorum, on a real token.
 */
function restoreCase(ws: Workspace, seed: Buffer): CliCase {
  const conf = join(ws.dir, 'softhsm2.conf');
  const tokens = join(ws.dir, 'tokens');
  const env = { SOFTHSM2_CONF: conf, FZ_PIN: 'fuzz-pin-1234' };
  return {
    name: 'restore --bundle FORGED-MUTANT --hsm (SoftHSM)',
    seed,
    args: () => [],
    env,
    prepare: async (input) => {
      rmSync(tokens, { recursive: true, force: true });
      mkdirSync(tokens);
      writeFileSync(
        conf,
        `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
      );
      const init = spawnSync(
        'softhsm2-util',
        [
          '--init-token',
          '--free',
          '--label',
          'fz',
          '--so-pin',
          'so-pin-1234',
          '--pin',
          'fuzz-pin-1234',
        ],
        { env: { PATH: process.env.PATH ?? '', SOFTHSM2_CONF: conf }, encoding: 'utf8' },
      );
      if (init.status !== 0) throw new Error(`softhsm2-util: ${init.stderr}`);
      writeFileSync(
        join(ws.dir, 'custos.yaml'),
        'hsms:\n  fz:\n    module: /usr/lib/softhsm/libsofthsm2.so\n    token: fz\n    pin: env:FZ_PIN\n',
      );
      const f = await ws.forgeOnDisk(input);
      return [
        'restore',
        '--hsm',
        'fz',
        '--bundle',
        f.bundle,
        ...f.shares.flatMap((sh, i) => ['--share', sh, '--identity', f.identities[i] as string]),
      ];
    },
  };
}

export function cliCases(ws: Workspace): CliCase[] {
  const byName = new Map(ws.targets.map((t) => [t.name, t]));
  const seedOf = (name: string, i = 0) => byName.get(name)?.seeds[i] as Buffer;
  const v = (p: string) => join(ws.dir, 'v', p);
  const hale = join(ws.dir, 'f', 'hale-llp.key');
  return [
    {
      name: 'shares verify --bundle MUTANT',
      seed: seedOf('bundle v1 and v2: parse'),
      args: (f) => [
        'shares',
        'verify',
        '--bundle',
        f,
        '--share',
        join(ws.dir, 'f', 'hale.share'),
        '--identity',
        hale,
      ],
    },
    {
      name: 'shares verify --share MUTANT',
      seed: seedOf(
        'share file (age): open with identities, judge against the bundle (shares verify)',
      ),
      args: (f) => [
        'shares',
        'verify',
        '--bundle',
        v('bundle/ok-keys.bundle'),
        '--share',
        f,
        '--identity',
        hale,
      ],
    },
    {
      name: 'shares verify --identity MUTANT',
      seed: seedOf('age identity file: load (plain and passphrase-protected)'),
      args: (f) => [
        'shares',
        'verify',
        '--bundle',
        v('bundle/ok-keys.bundle'),
        '--share',
        join(ws.dir, 'f', 'hale.share'),
        '--identity',
        f,
      ],
    },
    {
      name: 'audit verify MUTANT',
      seed: seedOf('audit log: verify and show (the commands, with their output)', 1),
      args: (f) => ['audit', 'verify', f],
    },
    {
      name: 'audit show MUTANT',
      seed: seedOf('audit log: verify and show (the commands, with their output)', 1),
      args: (f) => ['audit', 'show', f],
    },
    {
      name: 'policy check MUTANT',
      seed: seedOf('policy YAML: parse (and its key selection alone)'),
      args: (f) => ['policy', 'check', f],
    },
    {
      name: 'handover verify MUTANT',
      seed: seedOf('handover package: verify (with and without the recipient key)'),
      args: (f) => ['handover', 'verify', f],
    },
    {
      name: 'handover status MUTANT',
      seed: seedOf('handover request: load (policy digest, recipient, policy), approvals, status'),
      args: (f) => ['handover', 'status', f],
    },
    {
      name: 'domain show MUTANT',
      seed: seedOf('domain file: parse, load and check its signatures and enrolment chain'),
      args: (f) => ['domain', 'show', f],
    },
    {
      name: '--config MUTANT policy check',
      seed: seedOf('configuration YAML: load (custos.yaml)'),
      args: (f) => ['--config', f, 'policy', 'check', join(ws.dir, 'v', '..', 'f', 'x.yaml')],
    },
    restoreCase(
      ws,
      seedOf('bundle v1 forged (valid MAC and dealer signatures): load, judge, KEK and MAC'),
    ),
  ];
}

/** Runs the CLI on a mutant; why it failed, or null. */
export async function runCli(
  ws: Workspace,
  c: CliCase,
  input: Buffer,
  timeoutMs = 30_000,
): Promise<string | null> {
  const file = join(ws.dir, 'f', 'cli-mutant');
  writeFileSync(file, input);
  writeFileSync(
    join(ws.dir, 'f', 'x.yaml'),
    readFileSync(join(ROOT, 'policies', 'dr-3-of-5.yaml')),
  );
  const args = c.prepare ? await c.prepare(input) : c.args(file);
  const started = Date.now();
  const r = spawnSync(BIN, args, {
    cwd: ws.dir,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: ws.dir,
      NO_COLOR: '1',
      CUSTOS_AUDIT_LOG: join(ws.dir, 'cli-audit.jsonl'),
      ...(c.env ?? {}),
    },
  });
  if (r.error) return `${c.name}: did not finish in ${timeoutMs} ms (${String(r.error)})`;
  if (r.status === 1) return `${c.name}: exit 1 (internal): ${r.stderr.slice(0, 400)}`;
  if (/internal error|^\s+at\s/m.test(r.stderr)) return `${c.name}: ${r.stderr.slice(0, 400)}`;
  const m = ENGINE.exec(r.stderr);
  if (m) return `${c.name}: engine text "${m[0]}" in: ${r.stderr.slice(0, 400)}`;
  if (Date.now() - started > timeoutMs) return `${c.name}: too slow`;
  return null;
}
