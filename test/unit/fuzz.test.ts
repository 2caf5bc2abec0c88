/**
 * A bounded sample of the fuzz run (npm run fuzz has the full one, 100,000+ cases): every parser,
 * through the ops loader and the command's own output where there is one, on mutants of good
 * files; and the real CLI once per command that reads a file. Every case must end in a result or a
 * typed refusal (a CustosError, not E_INTERNAL), quickly, with no engine text in what is shown.
 * The seed is fixed so the sample is the same on every run; FUZZ_SEED changes it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cliCases, makeWorkspace, type Workspace } from '../fuzz/targets.js';
import { casesFor, checkSeeds, fuzzCli, fuzzTarget } from '../fuzz/run.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
/** Cases per target in the sample: fewer for the targets that render tables or open age files. */
const COUNTS = {
  'audit log: verify': 60,
  'share file': 120,
  'domain share file': 120,
  'policy YAML': 120,
  'configuration YAML': 120,
};

let ws: Workspace;
beforeAll(async () => {
  ws = await makeWorkspace();
});
afterAll(() => ws?.cleanup());

describe('fuzz sample', () => {
  test('the seeds themselves pass', async () => {
    for (const t of ws.targets) expect(await checkSeeds(t), t.name).toEqual([]);
  });

  test('mutants of every format: results or typed refusals only', async () => {
    let cases = 0;
    for (const t of ws.targets) {
      const r = await fuzzTarget(t, casesFor(t.name, COUNTS, 300), SEED);
      cases += r.cases;
      expect(r.failure, t.name).toBeUndefined();
    }
    expect(cases).toBeGreaterThan(4000);
  });

  test('the real CLI, once per command that reads a file', async () => {
    for (const c of cliCases(ws))
      expect((await fuzzCli(ws, c, 1, SEED)).failure, c.name).toBeUndefined();
  });
});
