/** `custos ceremony`: a quorum ceremony, step by step or at one terminal. */
import type { Command } from 'commander';
import { collect, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
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
      (await import('../ceremony.js')).runOpen(await context(), o));
  ceremony.command('add <ceremony> <submission...>')
    .description('check submissions as they arrive and keep the accepted ones')
    .option('--json', 'machine-readable result')
    .action(async (file: string, submissions: string[], o: { json?: boolean }) => (await import('../ceremony.js')).runAdd(await context(), { ceremony: file, submissions, json: o.json }));
  ceremony.command('status <ceremony>')
    .description('who has given a share, who was turned away and why, and the quorum')
    .option('--json', 'machine-readable status')
    .action(async (file: string, o: { json?: boolean }) => (await import('../ceremony.js')).runStatus(await context(), { ceremony: file, json: o.json }));
  const closeOptions = (cmd: Command) => cmd
    .option('--hsm <name>', 'restore: the token to restore into (repeat: one per bundle); PIN-escrow drill: the escrowed token', collect)
    .option('--from-hsm <name>', 'PIN-escrow restore: the escrowed backup token to copy from')
    .option('--subject <file>', 'the bundle (or PIN escrow directory), when it is not where the ceremony file says');
  closeOptions(ceremony.command('close <ceremony>'))
    .description('with a quorum accepted: perform the purpose, sign the closing entry, destroy the ceremony key')
    .option('--json', 'machine-readable result')
    .action(async (file: string, o: { hsm?: string[]; fromHsm?: string; subject?: string; json?: boolean }) => (await import('../ceremony.js')).runClose(await context(), { ceremony: file, ...o }));
  ceremony.command('cancel <ceremony>')
    .description('abandon an open ceremony: destroy its key and the shares it holds, and record it')
    .action(async (file: string) => (await import('../ceremony.js')).runCancel(await context(), { ceremony: file }));
  closeOptions(ceremony.command('run <ceremony>'))
    .description('the interactive ceremony at this terminal: custodians step up in turn, then the quorum acts')
    .action(async (file: string, o: { hsm?: string[]; fromHsm?: string; subject?: string }) => (await import('../ceremony-run.js')).run(await context(), { ceremony: file, ...o }));
}
