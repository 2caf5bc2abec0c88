// A command declared as data (src/cli/commands/define.ts) reaches commander whole: its options as
// declared, its help, and its runner called with the options and then the arguments.
import { describe, expect, test } from 'vitest';
import { Command } from 'commander';
import {
  defaulted,
  option,
  register,
  repeated,
  required,
  type CommandContext,
  type CommandSpec,
} from '../../src/cli/commands/define.js';
import type { Context } from '../../src/ops/context.js';

const calls: { context: Context; options: unknown; args: unknown[] }[] = [];
const marker = { cwd: '/nowhere' } as Context;
let contextMade = 0;
const context: CommandContext = async () => {
  contextMade++;
  return marker;
};

const spec: CommandSpec = {
  usage: 'pick <first> <rest...>',
  summary: 'a command to try the wiring',
  options: [
    required('--from <name>', 'where from'),
    repeated('--tag <t>', 'a tag (repeat)'),
    defaulted('--wait <duration>', 'how long', '72h'),
    option('--json', 'machine-readable'),
  ],
  example: ['custos pick a b c --from x'],
  notes: ['Needs nothing.'],
  run: async (ctx, options, ...args) => {
    calls.push({ context: await ctx(), options, args });
  },
};

function program(): Command {
  const p = new Command('custos').exitOverride().configureOutput({
    writeOut: () => {},
    writeErr: () => {},
  });
  register(p, { group: 'things', summary: 'a group', commands: [spec] }, context);
  register(p, { ...spec, usage: 'solo' }, context);
  return p;
}

describe('register', () => {
  test('runs the command with its options, then its arguments, and makes the context then', async () => {
    calls.length = 0;
    contextMade = 0;
    await program().parseAsync(
      ['things', 'pick', 'a', 'b', 'c', '--from', 'x', '--tag', 't1', '--tag', 't2', '--json'],
      { from: 'user' },
    );
    expect(contextMade).toBe(1);
    expect(calls).toEqual([
      {
        context: marker,
        options: { from: 'x', tag: ['t1', 't2'], wait: '72h', json: true },
        args: ['a', ['b', 'c']],
      },
    ]);
  });

  test('a missing required option stops before the runner and before any context', async () => {
    calls.length = 0;
    contextMade = 0;
    await expect(
      program().parseAsync(['things', 'pick', 'a', 'b'], { from: 'user' }),
    ).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
    expect(calls).toEqual([]);
    expect(contextMade).toBe(0);
  });

  test('a command outside a group is registered on the program itself', async () => {
    calls.length = 0;
    await program().parseAsync(['solo', '--from', 'y'], { from: 'user' });
    expect(calls.map((c) => [c.options, c.args])).toEqual([[{ from: 'y', wait: '72h' }, []]]);
  });

  test('help lists the options in order, the example and the notes', () => {
    const pick = program().commands.find((c) => c.name() === 'things')?.commands[0];
    const help = pick?.helpInformation() ?? '';
    const at = (s: string) => help.indexOf(s);
    expect(at('--from <name>')).toBeGreaterThan(-1);
    expect(at('--from <name>')).toBeLessThan(at('--tag <t>'));
    expect(at('--tag <t>')).toBeLessThan(at('--wait <duration>'));
    expect(help).toContain('(default: "72h")');
    let after = '';
    pick?.configureOutput({ writeOut: (s) => (after += s) });
    pick?.outputHelp();
    expect(after).toMatch(/Example:\n {2}custos pick a b c --from x\n\nNeeds nothing\.\n/);
  });
});
