/** The command tree. Each command's module is imported only when it runs, so --help stays light. */
import { Command, CommanderError } from 'commander';
import { CustosError, EXIT, isCustosError } from '../core/errors.js';
import { Output } from '../io/output.js';
import { VERSION } from '../ops/version.js';
import { finalizeModules } from '../hsm/lifecycle.js';
import type { Context } from '../ops/context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const usage = (message: string) => new CustosError('E_USAGE', message, 'run custos help backup / custos help restore for the forms each command takes');

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  const out = new Output(process.stdout, process.stderr, env);
  // `custos … | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = new Command('custos');
  const context = async (): Promise<Context> => {
    const { loadConfig, auditLogPath, actorName } = await import('../ops/context.js');
    const opts = program.opts<{ config?: string; escrowShare?: string[]; escrowIdentity?: string[]; auditLog?: string; actor?: string }>();
    const escrow = { shares: opts.escrowShare ?? [], identities: opts.escrowIdentity ?? [] };
    return { cwd, env, out, config: loadConfig(cwd, opts.config), escrow, auditLog: auditLogPath(cwd, env, opts.auditLog), actor: actorName(env, opts.actor) };
  };

  program
    .description('HSM key backup, m-of-n custodian escrow and recovery')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'HSM profiles (default: ./custos.yaml if present)')
    .option('--escrow-identity <file>', 'a custodian identity for a token whose profile says pin: escrow:DIR (repeat)', collect)
    .option('--escrow-share <file>', 'a custodian share for such a token, when it is not in the escrow directory (repeat)', collect)
    .option('--audit-log <file>', 'the audit log to append to (default: CUSTOS_AUDIT_LOG, else .custos/audit.jsonl)')
    .option('--actor <name>', 'who is acting, recorded in the audit log (default: CUSTOS_ACTOR, else the login name)')
    .showHelpAfterError('(run custos --help for usage)')
    .configureOutput({ outputError: (text, write) => write(`custos: ${text.replace(/^error: /, 'error: ')}`) })
    .exitOverride();

  const hsm = program.command('hsm').description('manage tokens in the embedded SoftHSM2 store (.custos/)');
  hsm.command('init <label>')
    .description('create a token in the embedded store (SO PIN from CUSTOS_SO_PIN, user PIN from CUSTOS_PIN, else asked)')
    .action(async (label: string) => (await import('./hsm-init.js')).run(await context(), label));

  program.command('inventory')
    .description('list the key objects on a token with their check values')
    .requiredOption('--hsm <name>', 'profile in custos.yaml, or a token label in the embedded store')
    .option('--json', 'machine-readable output')
    .action(async (o: { hsm: string; json?: boolean }) => (await import('./inventory.js')).run(await context(), o));

  program.command('backup')
    .description('wrap keys into an encrypted bundle and split its key among custodians, or copy them to a backup HSM')
    .requiredOption('--hsm <name>', 'the token to back up')
    .option('--policy <file>', 'backup policy (threshold, custodians, keys); with --to-hsm only its keys section counts')
    .option('--out <bundle>', 'bundle file to create')
    .option('--shares-dir <dir>', 'where share files go (default: BUNDLE.shares/)')
    .option('--to-hsm <name>', 'copy the keys into this token under a transport key instead of writing a bundle')
    .option('--domain <file>', 'seal the bundle to this escrow domain: no custodian takes part (--policy then only picks keys)')
    .option('--json', 'machine-readable summary')
    .action(async (o: { hsm: string; policy?: string; out?: string; sharesDir?: string; toHsm?: string; domain?: string; json?: boolean }) => {
      if (o.domain) {
        if (o.toHsm || o.sharesDir) throw usage('--domain writes one bundle sealed to the domain; it takes no --to-hsm or --shares-dir');
        if (!o.out) throw usage('backup --domain needs --out BUNDLE');
        return (await import('./backup-domain.js')).run(await context(), { hsm: o.hsm, domain: o.domain, out: o.out, policy: o.policy, json: o.json });
      }
      if (o.toHsm) {
        if (o.out || o.sharesDir) throw usage('--to-hsm copies into a token; it takes no --out or --shares-dir');
        return (await import('./copy.js')).run(await context(), { from: o.hsm, to: o.toHsm, policy: o.policy, json: o.json });
      }
      if (!o.policy || !o.out) throw usage('backup to a bundle needs --policy and --out (or use --to-hsm NAME)');
      return (await import('./backup.js')).run(await context(), { ...o, policy: o.policy, out: o.out });
    });

  const domain = program.command('domain').description('a long-lived escrow domain: custodians set up once, backups made without them');
  domain.command('init')
    .description('make a domain: split its secret among the policy\'s custodians and enrol source HSMs')
    .requiredOption('--policy <file>', 'threshold and custodians')
    .requiredOption('--out <file>', 'the domain file to create (public: it holds no secret)')
    .option('--shares-dir <dir>', 'where share files go (default: DOMAIN.shares/)')
    .option('--hsm <name>', 'a source HSM to enrol now (repeat)', collect)
    .option('--post-quantum', 'seal bundles with age\'s post-quantum hybrid recipient (ML-KEM-768 + X25519)')
    .option('--json', 'machine-readable summary')
    .action(async (o: { policy: string; out: string; sharesDir?: string; hsm?: string[]; postQuantum?: boolean; json?: boolean }) => (await import('./domain-init.js')).run(await context(), o));
  domain.command('enroll')
    .description('let one more source HSM make bundles for the domain')
    .requiredOption('--domain <file>', 'the domain file')
    .requiredOption('--hsm <name>', 'the token to enrol')
    .option('--endorser <name>', 'an HSM already enrolled, which vouches for the new one')
    .option('--share <file>', 'or: a custodian share of the domain (repeat, with --identity)', collect)
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option('--json', 'machine-readable summary')
    .action(async (o: { domain: string; hsm: string; endorser?: string; share?: string[]; identity?: string[]; json?: boolean }) => (await import('./domain-enroll.js')).run(await context(), o));
  domain.command('rotate')
    .description('with a quorum of the current custodians: a new secret under a new policy; re-seal bundles to it')
    .requiredOption('--domain <file>', 'the current domain file (it is marked as replaced)')
    .requiredOption('--policy <file>', 'the new threshold and custodians')
    .requiredOption('--out <file>', 'the new domain file')
    .option('--shares-dir <dir>', 'where the new share files go (default: NEW.shares/)')
    .option('--rebundle <file>', 'a bundle of the domain to re-seal to the new generation (repeat)', collect)
    .option('--rebundle-dir <dir>', 'where the re-sealed bundles go, under their own names')
    .option('--share <file>', 'a current custodian\'s share (repeat)', collect)
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option('--ceremony <file>', 'or: a ceremony opened with --purpose rotate, whose accepted shares are the quorum')
    .option('--retire-hsm <name>', 'an enrolled token (label or serial) the new generation no longer takes bundles from (repeat)', collect)
    .option('--post-quantum', 'seal the new generation with age\'s post-quantum hybrid recipient')
    .option('--json', 'machine-readable summary')
    .action(async (o: import('./domain-rotate.js').RotateOptions) => (await import('./domain-rotate.js')).run(await context(), o));
  domain.command('show <file>')
    .description('what a domain file says: generation, custodians, enrolled HSMs, and whether it was replaced')
    .option('--json', 'machine-readable')
    .action(async (file: string, o: { json?: boolean }) => (await import('./domain-show.js')).run(await context(), { domain: file, json: o.json }));

  const shares = program.command('shares').alias('share').description('custodian share files');
  shares.command('verify')
    .description('check, alone, that a share opens, belongs to the bundle (or domain) and is signed')
    .option('--bundle <file>', 'the bundle the share is for')
    .option('--domain <file>', 'or: the escrow domain the share is for')
    .requiredOption('--share <file>', 'the share file')
    .requiredOption('--identity <file>', 'your age identity file')
    .action(async (o: { bundle?: string; domain?: string; share: string; identity: string }) => (await import('./shares-verify.js')).run(await context(), o));

  shares.command('submit')
    .description('on your own machine: check your share against a ceremony and seal it to the ceremony\'s key')
    .requiredOption('--ceremony <file>', 'the ceremony file the ceremony lead sent you')
    .requiredOption('--share <file>', 'your share file')
    .requiredOption('--identity <file>', 'your age identity file (if it is passphrase-protected, the passphrase is asked, or taken from CUSTOS_PASSPHRASE)')
    .requiredOption('--out <file>', 'the submission file to write and send back')
    .option('--yes', 'do not ask for confirmation')
    .action(async (o: { ceremony: string; share: string; identity: string; out: string; yes?: boolean }) => (await import('./share-submit.js')).run(await context(), o));

  const ceremony = program.command('ceremony').description('a quorum ceremony: custodians give their shares, checked as they arrive, and the quorum acts');
  ceremony.command('open')
    .description('open a ceremony for a bundle, a PIN escrow or an escrow domain, and write the ceremony file for the custodians')
    .option('--bundle <file>', 'the bundle the ceremony concerns (repeat for several bundles of one escrow domain)', collect)
    .option('--pin-escrow <dir>', 'or: the PIN escrow directory it concerns')
    .option('--domain <file>', 'or: an escrow domain itself, for a drill or a rotation')
    .requiredOption('--purpose <purpose>', 'restore, drill, handover or rotate')
    .requiredOption('--out <file>', 'the ceremony file to create')
    .option('--expires <duration>', 'how long it stays open: 90m, 72h, 7d (at most 30d)', '72h')
    .option('--request <file>', 'for a handover: the request it may release keys for')
    .option('--json', 'machine-readable summary')
    .action(async (o: { bundle?: string[]; pinEscrow?: string; domain?: string; purpose: string; out: string; expires: string; request?: string; json?: boolean }) =>
      (await import('./ceremony.js')).runOpen(await context(), o));
  ceremony.command('add <ceremony> <submission...>')
    .description('check submissions as they arrive and keep the accepted ones')
    .option('--json', 'machine-readable result')
    .action(async (file: string, submissions: string[], o: { json?: boolean }) => (await import('./ceremony.js')).runAdd(await context(), { ceremony: file, submissions, json: o.json }));
  ceremony.command('status <ceremony>')
    .description('who has given a share, who was turned away and why, and the quorum')
    .option('--json', 'machine-readable status')
    .action(async (file: string, o: { json?: boolean }) => (await import('./ceremony.js')).runStatus(await context(), { ceremony: file, json: o.json }));
  const closeOptions = (cmd: Command) => cmd
    .option('--hsm <name>', 'restore: the token to restore into (repeat: one per bundle); PIN-escrow drill: the escrowed token', collect)
    .option('--from-hsm <name>', 'PIN-escrow restore: the escrowed backup token to copy from')
    .option('--subject <file>', 'the bundle (or PIN escrow directory), when it is not where the ceremony file says');
  closeOptions(ceremony.command('close <ceremony>'))
    .description('with a quorum accepted: perform the purpose, sign the closing entry, destroy the ceremony key')
    .option('--json', 'machine-readable result')
    .action(async (file: string, o: { hsm?: string[]; fromHsm?: string; subject?: string; json?: boolean }) => (await import('./ceremony.js')).runClose(await context(), { ceremony: file, ...o }));
  ceremony.command('cancel <ceremony>')
    .description('abandon an open ceremony: destroy its key and the shares it holds, and record it')
    .action(async (file: string) => (await import('./ceremony.js')).runCancel(await context(), { ceremony: file }));
  closeOptions(ceremony.command('run <ceremony>'))
    .description('the interactive ceremony at this terminal: custodians step up in turn, then the quorum acts')
    .action(async (file: string, o: { hsm?: string[]; fromHsm?: string; subject?: string }) => (await import('./ceremony-run.js')).run(await context(), { ceremony: file, ...o }));

  const handover = program.command('handover').description('release named keys to a recipient under documented legal process, as the custodial policy allows');
  handover.command('request')
    .description('record the legal process, the keys it names and the recipient; refused if the policy does not allow it')
    .requiredOption('--bundle <file>', 'the bundle holding the keys')
    .requiredOption('--policy <file>', 'the custodial policy with a handover section')
    .requiredOption('--matter <id>', 'the case or matter reference')
    .requiredOption('--authority <name>', 'who issued the legal process')
    .requiredOption('--basis <kind>', 'the legal basis, as the policy names it (e.g. subpoena, court-order)')
    .requiredOption('--document <file>', 'the legal document (only its SHA-256 is recorded)')
    .requiredOption('--keys <label...>', 'the labels of the keys the process names')
    .requiredOption('--recipient <pem>', 'the recipient\'s RSA public key')
    .requiredOption('--out <file>', 'the request file to create')
    .option('--notice-given <time>', 'when the institution was given notice (default: now)')
    .option('--json', 'machine-readable summary')
    .action(async (o: { bundle: string; policy: string; matter: string; authority: string; basis: string; document: string; keys: string[]; recipient: string; out: string; noticeGiven?: string; json?: boolean }) =>
      (await import('./handover.js')).runRequest(await context(), o));
  handover.command('approve <request>')
    .description('sign an approval of the request as one of the policy\'s approvers')
    .requiredOption('--as <role>', 'the role you approve as (e.g. general-counsel, custodian)')
    .requiredOption('--key <pem>', 'your Ed25519 approval key')
    .option('--document <file>', 'the legal document you reviewed: refuse unless it is the one the request names')
    .action(async (request: string, o: { as: string; key: string; document?: string }) => (await import('./handover.js')).runApprove(await context(), { request, ...o }));
  handover.command('status <request>')
    .description('every rule of the policy: met, or what is still missing')
    .option('--ceremony <file>', 'the handover ceremony, to count its quorum')
    .option('--json', 'machine-readable status')
    .action(async (request: string, o: { ceremony?: string; json?: boolean }) => (await import('./handover.js')).runStatus(await context(), { request, ...o }));
  handover.command('execute <request>')
    .description('with every rule met: release the named keys, wrapped to the recipient, with a signed receipt')
    .requiredOption('--ceremony <file>', 'the handover ceremony bound to this request')
    .requiredOption('--out <file>', 'the handover package to create')
    .option('--bundle <file>', 'the bundle, when it is not where the request says')
    .option('--json', 'machine-readable result')
    .action(async (request: string, o: { ceremony: string; out: string; bundle?: string; json?: boolean }) => (await import('./handover.js')).runExecute(await context(), { request, ...o }));
  handover.command('verify <package>')
    .description('as the recipient: check the receipt, the approvals and the scope; with --key, unwrap and check each key')
    .option('--key <pem>', 'the recipient\'s RSA private key')
    .option('--json', 'machine-readable result')
    .action(async (pkg: string, o: { key?: string; json?: boolean }) => (await import('./handover.js')).runVerify(await context(), { package: pkg, ...o }));

  program.command('policy').description('policy files').command('check <file>')
    .description('validate a policy and say what it allows')
    .option('--json', 'the parsed policy')
    .action(async (file: string, o: { json?: boolean }) => (await import('./policy-check.js')).run(await context(), { file, json: o.json }));

  program.command('restore')
    .description('reassemble the bundle key from a quorum and restore every key into a token, or copy them back from a backup HSM')
    .requiredOption('--hsm <name>', 'the token to restore into')
    .option('--bundle <file>', 'the bundle to restore')
    .option('--share <file>', 'a custodian share file (repeat)', collect)
    .option('--identity <file>', 'an age identity that opens one or more shares (repeat)', collect)
    .option('--from-hsm <name>', 'copy the keys back from this backup token instead of a bundle')
    .option('--policy <file>', 'with --from-hsm: which keys to copy (its keys section)')
    .option('--json', 'machine-readable summary')
    .action(async (o: { bundle?: string; hsm: string; share?: string[]; identity?: string[]; fromHsm?: string; policy?: string; json?: boolean }) => {
      if (o.fromHsm) {
        if (o.bundle || o.share || o.identity) throw usage('--from-hsm copies from a token; it takes no --bundle, --share or --identity');
        return (await import('./copy.js')).run(await context(), { from: o.fromHsm, to: o.hsm, policy: o.policy, json: o.json });
      }
      if (!o.bundle || !o.share || !o.identity) throw usage('restore from a bundle needs --bundle, --share and --identity (or use --from-hsm NAME)');
      return (await import('./restore.js')).run(await context(), { bundle: o.bundle, hsm: o.hsm, share: o.share, identity: o.identity, json: o.json });
    });

  program.command('escrow-pin')
    .description('give a token a fresh random user PIN that only a quorum of custodians can reassemble')
    .requiredOption('--hsm <name>', 'the token (its security officer PIN comes from the profile\'s so-pin:, or CUSTOS_SO_PIN)')
    .requiredOption('--policy <file>', 'threshold and custodians')
    .requiredOption('--out <dir>', 'directory for the escrow record and the share files')
    .option('--json', 'machine-readable summary')
    .action(async (o: { hsm: string; policy: string; out: string; json?: boolean }) => (await import('./escrow-pin.js')).run(await context(), o));

  const audit = program.command('audit').description('the hash-chained audit log');
  audit.command('verify <log>')
    .description('check that no entry was edited, deleted, inserted or reordered, and every signature')
    .option('--json', 'machine-readable result')
    .action(async (log: string, o: { json?: boolean }) => (await import('./audit.js')).runVerify(await context(), { log, json: o.json }));
  audit.command('show <log>')
    .description('the log as a table')
    .option('--ceremony <nonce>', 'only the entries of this ceremony')
    .option('--json', 'the entries as JSON')
    .action(async (log: string, o: { ceremony?: string; json?: boolean }) => (await import('./audit.js')).runShow(await context(), { log, ...o }));

  program.command('demo')
    .description('back up and restore sample keys between two embedded tokens, end to end')
    .option('--dir <dir>', 'working directory for the demo (wiped first)', '.custos/demo')
    .action(async (o: { dir: string }) => (await import('./demo.js')).run(await context(), o));

  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    return report(e, out, env);
  } finally {
    finalizeModules();
  }
}

function report(e: unknown, out: Output, env: NodeJS.ProcessEnv): number {
  if (e instanceof CommanderError) {
    return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? EXIT.ok : EXIT.usage;
  }
  if (isCustosError(e)) {
    out.error(e);
    return e.exitStatus;
  }
  out.error(new CustosError('E_INTERNAL', `internal error: ${e instanceof Error ? e.message : String(e)}`,
    env.CUSTOS_DEBUG ? undefined : 'this is a defect in custos; run again with CUSTOS_DEBUG=1 for details and report it'));
  if (env.CUSTOS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return EXIT.internal;
}
