/**
 * Quirk `store-read-at-initialise`: SoftHSM2 reads its store of tokens at C_Initialize only. A
 * token it missed — made by another process after custos loaded the module, as one whose files
 * another process was writing at that moment is missed — is found once custos initialises the
 * module again, which it does only while it has no session open on it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustosError } from '../../src/core/errors.js';
import { finalizeAll, loadModule } from '../../src/hsm/module.js';
import { findSlot } from '../../src/hsm/session.js';
import { Token } from '../../src/hsm/token.js';
import { loadConfig } from '../../src/ops/context.js';
import { copyKeys } from '../../src/ops/copy.js';
import { testContext } from '../unit/on-disk.js';
import {
  cleanup,
  initToken,
  makeKey,
  MODULE,
  p11,
  profileFor,
  TIMEOUT,
  workspace,
  writeConfig,
  type Profile,
  type TokenRef,
} from './helpers.js';

const ws = workspace('store-reread');
let first: TokenRef;

const open = (t: TokenRef) =>
  Token.open({ module: MODULE, token: t.label }, async () => t.pin, false);

async function refusal(t: TokenRef): Promise<CustosError> {
  const e = await open(t).then(
    (opened) => {
      opened.close();
      return undefined;
    },
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CustosError);
  return e as CustosError;
}

beforeAll(() => {
  first = initToken(ws, 'first');
  process.env.SOFTHSM2_CONF = ws.conf;
}, TIMEOUT);

afterAll(() => {
  finalizeAll();
  cleanup(ws);
});

describe('a token SoftHSM2 missed at C_Initialize', () => {
  it('is found by initialising the module again, with no session open', async () => {
    (await open(first)).close();
    const later = initToken(ws, 'made-later');
    // The module as loaded does not see it: the quirk is real.
    const missing = (() => {
      try {
        findSlot(loadModule(MODULE), { module: MODULE, token: later.label });
      } catch (e) {
        return e;
      }
    })();
    expect((missing as CustosError).code).toBe('E_TOKEN_NOT_FOUND');
    const t = await open(later);
    expect(t.identity.label).toBe('made-later');
    t.close();
    // The first token is still there after the module was initialised again.
    (await open(first)).close();
  });

  it('is not looked for again while a session is open on the module, which stays usable', async () => {
    const held = await open(first);
    const later = initToken(ws, 'made-while-open');
    try {
      const e = await refusal(later);
      expect(e.code).toBe('E_TOKEN_NOT_FOUND');
      expect(e.message).toBe(`no token labelled "made-while-open" in ${MODULE}`);
      expect(held.contents().keys).toEqual([]);
    } finally {
      held.close();
    }
    // With the session closed, the same token is found.
    const found = await open(later);
    expect(found.identity.label).toBe('made-while-open');
    found.close();
  });

  it('is found by a copy to it (backup --to-hsm), which looks for both tokens before it opens one', async () => {
    const profiles: Profile[] = [];
    const from = initToken(ws, 'copy-from');
    makeKey(ws, from, { kind: 'aes', label: 'k', id: '01' });
    profileFor(ws, profiles, from);
    (await open(from)).close(); // the module is loaded, and sees no target yet
    const to = initToken(ws, 'copy-to');
    profileFor(ws, profiles, to);
    writeConfig(ws, profiles);
    const ctx = { ...testContext(ws.dir), env: ws.env, config: loadConfig(ws.dir) };
    const copied = await copyKeys(ctx, { from: from.label, to: to.label });
    expect(copied.target.label).toBe('copy-to');
    expect(copied.keys.map((k) => [k.record.label, k.status])).toEqual([['k', 'restored']]);
    expect(p11(ws, to, ['--list-objects', '--type', 'secrkey'])).toMatch(/label:\s+k\n/);
  });

  it('a token that does not exist is still named as missing, with what the module sees', async () => {
    const e = await refusal({ ...first, label: 'never-made' });
    expect(e.code).toBe('E_TOKEN_NOT_FOUND');
    expect(e.message).toBe(`no token labelled "never-made" in ${MODULE}`);
    const sees = e.details?.join('\n') ?? '';
    for (const label of ['first', 'made-later', 'made-while-open', 'copy-to'])
      expect(sees).toMatch(new RegExp(`the module sees: .*"${label}"`));
  });
});
