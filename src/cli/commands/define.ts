/**
 * A command as data — its words, options, help and the module that runs it — and the one function
 * that hands such data to commander.
 */
import type { Command } from 'commander';
import type { Context } from '../../ops/context.js';

/** The context is made only when a command runs: --help and usage errors need none. */
export type CommandContext = () => Promise<Context>;

export interface OptionSpec {
  flags: string;
  description: string;
  required?: boolean;
  /** Given more than once, every value is kept, in order. */
  repeat?: boolean;
  defaultValue?: string;
}

export interface CommandSpec {
  /** The command's word and its arguments, as help shows them: `add <ceremony> <submission...>`. */
  usage: string;
  summary: string;
  options: OptionSpec[];
  /** A short example for the end of its help. */
  example: string[];
  /** Where its PINs and passphrases come from, or that it needs none (lines of at most 80). */
  notes: string[];
  /**
   * Runs the command: its arguments follow the options. It imports the module that does the work,
   * so that loading the command tree (and --help) stays light.
   */
  run(context: CommandContext, options: unknown, ...args: unknown[]): Promise<void>;
}

/** Commands under one word, such as `custos ceremony …`. */
export interface GroupSpec {
  group: string;
  summary: string;
  hidden?: boolean;
  commands: CommandSpec[];
}

export const option = (flags: string, description: string): OptionSpec => ({ flags, description });
export const required = (flags: string, description: string): OptionSpec => ({
  flags,
  description,
  required: true,
});
export const defaulted = (flags: string, description: string, value: string): OptionSpec => ({
  flags,
  description,
  defaultValue: value,
});
export const repeated = (flags: string, description: string): OptionSpec => ({
  flags,
  description,
  repeat: true,
});

/** For options given more than once: each value is kept, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function addCommand(parent: Command, spec: CommandSpec, context: CommandContext): void {
  const cmd = parent.command(spec.usage).description(spec.summary);
  for (const o of spec.options) {
    if (o.repeat) cmd.option(o.flags, o.description, collect);
    else if (o.required) cmd.requiredOption(o.flags, o.description);
    else cmd.option(o.flags, o.description, o.defaultValue);
  }
  cmd.addHelpText(
    'after',
    ['', 'Example:', ...spec.example.map((l) => `  ${l}`), '', ...spec.notes].join('\n'),
  );
  // commander calls an action with the arguments, then the options, then the command itself.
  cmd.action(async (...given: unknown[]) => spec.run(context, given.at(-2), ...given.slice(0, -2)));
}

export function register(
  program: Command,
  entry: CommandSpec | GroupSpec,
  context: CommandContext,
): void {
  if (!('group' in entry)) return addCommand(program, entry, context);
  const group = program
    .command(entry.group, { hidden: entry.hidden ?? false })
    .description(entry.summary);
  for (const spec of entry.commands) addCommand(group, spec, context);
}
