/** The command tree. Each command's module is imported only when it runs, so --help stays light. */
import { Command, CommanderError } from 'commander';
import { CustosError, EXIT, isCustosError } from '../core/errors.js';
import { Output } from '../io/output.js';
import { VERSION } from '../ops/version.js';
import { finalizeModules } from '../hsm/lifecycle.js';
import type { Context } from '../ops/context.js';
import { collect, register, type CommandSpec, type GroupSpec } from './commands/define.js';
import { audit } from './commands/audit.js';
import { backup } from './commands/backup.js';
import { ceremony } from './commands/ceremony.js';
import { custodian } from './commands/custodian.js';
import { demo } from './commands/demo.js';
import { domain } from './commands/domain.js';
import { escrowPin } from './commands/escrow-pin.js';
import { handover } from './commands/handover.js';
import { hsm } from './commands/hsm.js';
import { inventory } from './commands/inventory.js';
import { policy } from './commands/policy.js';
import { restore } from './commands/restore.js';
import { share, shares } from './commands/shares.js';

/** Every command, in the order `custos --help` lists them; each file declares its own options. */
const COMMANDS: (CommandSpec | GroupSpec)[] = [
  hsm,
  inventory,
  backup,
  domain,
  shares,
  share,
  custodian,
  ceremony,
  handover,
  policy,
  restore,
  escrowPin,
  audit,
  demo,
];

let fileSizeListener = false;

/**
 * Past the file-size limit (ulimit -f) a write, custos's or the PKCS#11 module's, must fail with
 * EFBIG, which custos reports and rolls back. The lock library's exit hook listens for SIGXFSZ and
 * re-raises it when no one else listens, which kills the process in the middle of a write; a
 * listener of custos's own keeps the signal what `trap '' XFSZ` makes it: ignored.
 */
function keepFileSizeLimitAnError(): void {
  if (fileSizeListener) return;
  fileSizeListener = true;
  process.on('SIGXFSZ', () => {});
}

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<number> {
  const out = new Output(process.stdout, process.stderr, env);
  keepFileSizeLimitAnError();
  // `custos … | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = new Command('custos');
  const context = async (): Promise<Context> => {
    const { loadConfig, auditLogPath, actorName } = await import('../ops/context.js');
    const opts = program.opts<{
      config?: string;
      escrowShare?: string[];
      escrowIdentity?: string[];
      auditLog?: string;
      actor?: string;
    }>();
    const escrow = { shares: opts.escrowShare ?? [], identities: opts.escrowIdentity ?? [] };
    return {
      cwd,
      env,
      out,
      config: loadConfig(cwd, opts.config),
      escrow,
      // Loaded only when a token's PIN is escrowed: a backup or an inventory need none of it.
      unlockEscrowedPin: async (ctx, dir, token) =>
        (await import('../ops/escrowed-pin.js')).unlockEscrowedPin(ctx, dir, token),
      auditLog: auditLogPath(cwd, env, opts.auditLog),
      actor: actorName(env, opts.actor),
    };
  };

  program
    .description('HSM key backup, m-of-n custodian escrow and recovery')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'HSM profiles (default: ./custos.yaml if present)')
    .option(
      '--escrow-identity <file>',
      'a custodian identity for a token whose profile says pin: escrow:DIR (repeat)',
      collect,
    )
    .option(
      '--escrow-share <file>',
      'a custodian share for such a token, when it is not in the escrow directory (repeat)',
      collect,
    )
    .option(
      '--audit-log <file>',
      'the audit log to append to (default: CUSTOS_AUDIT_LOG, else .custos/audit.jsonl)',
    )
    .option(
      '--actor <name>',
      'who is acting, recorded in the audit log (default: CUSTOS_ACTOR, else the login name)',
    )
    .showHelpAfterError('(run custos --help for usage)')
    .configureOutput({
      outputError: (text, write) => write(`custos: ${text.replace(/^error: /, 'error: ')}`),
      // Help fits the terminal, or 80 columns (COLUMNS) when there is none.
      getOutHelpWidth: () => out.width,
      getErrHelpWidth: () => out.width,
    })
    // Wrap descriptions even beside long command forms, rather than let them run off the line.
    .configureHelp({ minWidthToWrap: 24 })
    .exitOverride();

  for (const entry of COMMANDS) register(program, entry, context);

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
    return e.exitCode === 0 ||
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version'
      ? EXIT.ok
      : EXIT.usage;
  }
  if (isCustosError(e)) {
    out.error(e);
    return e.exitStatus;
  }
  out.error(
    new CustosError(
      'E_INTERNAL',
      `internal error: ${e instanceof Error ? e.message : String(e)}`,
      env.CUSTOS_DEBUG
        ? undefined
        : 'this is a defect in custos; run again with CUSTOS_DEBUG=1 for details and report it',
    ),
  );
  if (env.CUSTOS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return EXIT.internal;
}
