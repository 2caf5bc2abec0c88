/** The command tree. Each command's module is imported only when it runs, so --help stays light. */
import { Command, CommanderError, Option } from 'commander';
import { CustosError, EXIT, isCustosError } from '../core/errors.js';
import { Output } from '../io/output.js';
import { VERSION } from '../ops/version.js';
import { finalizeModules } from '../hsm/lifecycle.js';
import type { Context } from '../ops/context.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<number> {
  const out = new Output(process.stdout, process.stderr, env);
  const program = new Command('custos');
  const context = async (): Promise<Context> => {
    const { loadConfig } = await import('../ops/context.js');
    return { cwd, env, out, config: loadConfig(cwd, program.opts<{ config?: string }>().config) };
  };

  program
    .description('HSM key backup, m-of-n custodian escrow and recovery')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'HSM profiles (default: ./custos.yaml if present)')
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
    .description('wrap keys into an encrypted bundle and split its key among custodians')
    .requiredOption('--hsm <name>', 'the token to back up')
    .requiredOption('--policy <file>', 'backup policy (threshold, custodians, keys)')
    .requiredOption('--out <bundle>', 'bundle file to create')
    .option('--shares-dir <dir>', 'where share files go (default: BUNDLE.shares/)')
    .option('--json', 'machine-readable summary')
    .action(async (o: { hsm: string; policy: string; out: string; sharesDir?: string; json?: boolean }) => (await import('./backup.js')).run(await context(), o));

  const shares = program.command('shares').description('custodian share files');
  shares.command('verify')
    .description('check, alone, that a share opens, belongs to the bundle and is signed')
    .requiredOption('--bundle <file>', 'the bundle the share is for')
    .requiredOption('--share <file>', 'the share file')
    .requiredOption('--identity <file>', 'your age identity file')
    .action(async (o: { bundle: string; share: string; identity: string }) => (await import('./shares-verify.js')).run(await context(), o));

  program.command('restore')
    .description('reassemble the bundle key from a quorum and restore every key into a token')
    .requiredOption('--bundle <file>', 'the bundle to restore')
    .requiredOption('--hsm <name>', 'the token to restore into')
    .addOption(new Option('--share <file>', 'a custodian share file (repeat)').argParser(collect).makeOptionMandatory())
    .addOption(new Option('--identity <file>', 'an age identity that opens one or more shares (repeat)').argParser(collect).makeOptionMandatory())
    .option('--json', 'machine-readable summary')
    .action(async (o: { bundle: string; hsm: string; share: string[]; identity: string[]; json?: boolean }) => (await import('./restore.js')).run(await context(), o));

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
