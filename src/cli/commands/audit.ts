/** `custos audit`: verify and show the audit log. */
import type { Command } from 'commander';
import { NO_SECRET_NOTE, explain, type CommandContext } from './shared.js';

export function register(program: Command, context: CommandContext): void {
  const audit = program.command('audit').description('the hash-chained audit log');
  explain(
    audit
      .command('verify <log>')
      .description(
        'check that no entry was edited, deleted, inserted or reordered, and every signature',
      )
      .option('--json', 'machine-readable result'),
    ['custos audit verify .custos/audit.jsonl'],
    NO_SECRET_NOTE,
  ).action(async (log: string, o: { json?: boolean }) =>
    (await import('../audit/verify.js')).run(await context(), { log, json: o.json }),
  );
  explain(
    audit
      .command('show <log>')
      .description('the log as a table')
      .option('--ceremony <nonce>', 'only the entries of this ceremony')
      .option('--json', 'the entries as JSON'),
    ['custos audit show .custos/audit.jsonl \\', '    --ceremony b81411729c0f5e03d2856ddf1d491dde'],
    NO_SECRET_NOTE,
  ).action(async (log: string, o: { ceremony?: string; json?: boolean }) =>
    (await import('../audit/show.js')).run(await context(), { log, ...o }),
  );
}
