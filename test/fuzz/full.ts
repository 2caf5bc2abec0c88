/**
 * The full fuzz run (npm run fuzz): every target with its share of the cases, then a report. Each
 * *.fuzz.ts file runs a group of targets, so vitest spreads them over the cores.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { cliCases, makeWorkspace, type Workspace } from './targets.js';
import { casesFor, checkSeeds, fuzzCli, fuzzTarget, summary, type FuzzResult } from './run.js';

export function fuzzGroup(
  group: string,
  pick: (name: string) => boolean,
  counts: Record<string, number>,
  fallback: number,
  cli = 0,
): void {
  let ws: Workspace;
  const results: FuzzResult[] = [];
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  beforeAll(async () => {
    ws = await makeWorkspace();
  });
  afterAll(() => {
    ws?.cleanup();
    process.stdout.write(`\nfuzz ${group} (FUZZ_SEED=${seed}):\n${summary(results)}\n`);
    for (const r of results) if (r.failure) process.stdout.write(`\n${r.failure}\n`);
  });

  test(`${group}: every seed passes as it is`, async () => {
    const bad = (await Promise.all(ws.targets.filter((t) => pick(t.name)).map(checkSeeds))).flat();
    expect(bad).toEqual([]);
  });

  test(`${group}: mutants get a result or a typed refusal, quickly, with no engine text`, async () => {
    for (const t of ws.targets.filter((x) => pick(x.name)))
      results.push(await fuzzTarget(t, casesFor(t.name, counts, fallback), seed));
    // The forged-bundle restore reaches the most code (a real token, after the quorum): more of it.
    if (cli > 0)
      for (const c of cliCases(ws))
        results.push(await fuzzCli(ws, c, c.name.startsWith('restore') ? cli * 4 : cli, seed));
    expect(results.filter((r) => r.failure).map((r) => r.failure)).toEqual([]);
  });
}
