/** `custos hsm init`: a token in the embedded SoftHSM2 store. */
import type { GroupSpec } from './define.js';

export const hsm: GroupSpec = {
  group: 'hsm',
  summary: 'manage tokens in the embedded SoftHSM2 store (.custos/)',
  commands: [
    {
      usage: 'init <label>',
      summary:
        'create a token in the embedded store (SO PIN from CUSTOS_SO_PIN, user PIN from CUSTOS_PIN, else asked)',
      options: [],
      example: ['custos hsm init primary'],
      notes: [
        'PINs: the security officer PIN from CUSTOS_SO_PIN and the user PIN from',
        'CUSTOS_PIN; else each is asked twice, without echo: 4 to 255 characters.',
      ],
      run: async (context, _o: object, label: string) =>
        (await import('../hsm-init.js')).run(await context(), label),
    },
  ],
};
