/** `custos policy check`: a policy file validated and explained. */
import type { GroupSpec } from './define.js';
import { json, NO_SECRET_NOTE } from './shared.js';

export const policy: GroupSpec = {
  group: 'policy',
  summary: 'policy files',
  commands: [
    {
      usage: 'check <file>',
      summary: 'validate a policy and say what it allows',
      options: [json('the parsed policy')],
      example: ['custos policy check policies/dr-3-of-5.yaml'],
      notes: NO_SECRET_NOTE,
      run: async (context, o: { json?: boolean }, file: string) =>
        (await import('../policy-check.js')).run(await context(), { file, json: o.json }),
    },
  ],
};
