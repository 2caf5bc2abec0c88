/**
 * Runs a target's cases with fast-check: each case a mutant of a seed; the first failure is shrunk
 * and reported.
 */
import fc from 'fast-check';
import { apply, mutant } from './mutate.js';
import { judgeOutcome, runCli, type CliCase, type Target, type Workspace } from './targets.js';

export interface FuzzResult {
  name: string;
  cases: number;
  ms: number;
  /** fast-check's report of the first failure (shrunk), with its seed and path to replay it. */
  failure?: string;
}

function describeInput(input: Buffer): string {
  return `${input.length} bytes; first 600 as JSON: ${JSON.stringify(input.subarray(0, 600).toString('latin1'))}`;
}

/**
 * How long a case took, for its limit: the CPU time this process spent on it (so other work on a
 * shared machine does not fail a case), unless the case waited far longer than that (a hang).
 */
function caseTime(wallStart: number, cpuStart: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(cpuStart);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const wallMs = performance.now() - wallStart;
  return wallMs > Math.max(30_000, cpuMs * 20) ? wallMs : cpuMs;
}

/** Each seed as it is must pass: a clean result or a typed refusal. */
export async function checkSeeds(t: Target): Promise<string[]> {
  const out: string[] = [];
  for (const [i, seed] of t.seeds.entries()) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let error: unknown;
    let value: unknown;
    try {
      value = await t.run(seed);
    } catch (e) {
      error = e;
    }
    const why = judgeOutcome({ error, value }, caseTime(t0, cpu0), t.limitMs);
    if (why) out.push(`${t.name}: seed ${i}: ${why}`);
  }
  return out;
}

export async function fuzzTarget(
  t: Target,
  numRuns: number,
  seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31),
): Promise<FuzzResult> {
  let cases = 0;
  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(mutant(t.seeds.length), async (m) => {
      cases++;
      const input = apply(t.seeds, m, t.layout);
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      let error: unknown;
      let value: unknown;
      try {
        value = await t.run(input);
      } catch (e) {
        error = e;
      }
      const why = judgeOutcome({ error, value }, caseTime(t0, cpu0), t.limitMs);
      if (why) throw new Error(`${why}\n  input: ${describeInput(input)}`);
    }),
    { numRuns, seed, verbose: 0 },
  );
  return {
    name: t.name,
    cases,
    ms: performance.now() - started,
    ...(details.failed ? { failure: `${t.name}: ${failureText(details)}` } : {}),
  };
}

export async function fuzzCli(
  ws: Workspace,
  c: CliCase,
  numRuns: number,
  seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31),
): Promise<FuzzResult> {
  let cases = 0;
  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(mutant(1, 2), async (m) => {
      cases++;
      const input = apply([c.seed], m, 'envelope');
      const why = await runCli(ws, c, input);
      if (why) throw new Error(`${why}\n  input: ${describeInput(input)}`);
    }),
    { numRuns, seed, verbose: 0 },
  );
  return {
    name: `CLI: ${c.name}`,
    cases,
    ms: performance.now() - started,
    ...(details.failed ? { failure: `CLI ${c.name}: ${failureText(details)}` } : {}),
  };
}

/** The shrunk failure, short: what went wrong, the input, and how to replay it. */
function failureText(details: {
  errorInstance: unknown;
  numRuns: number;
  seed: number;
  counterexamplePath: string | null;
}): string {
  const error =
    details.errorInstance instanceof Error
      ? details.errorInstance.message
      : String(details.errorInstance);
  return `failed after ${details.numRuns} cases (replay: FUZZ_SEED=${details.seed}, path ${details.counterexamplePath}): ${error.slice(0, 1500)}`;
}

/**
 * Cases per target: `counts` by target name prefix, else `fallback`; FUZZ_SCALE multiplies them.
 */
export function casesFor(name: string, counts: Record<string, number>, fallback: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? 1) || 1;
  const hit = Object.entries(counts).find(([prefix]) => name.startsWith(prefix));
  return Math.max(1, Math.round((hit ? hit[1] : fallback) * scale));
}

export function summary(results: readonly FuzzResult[]): string {
  const total = results.reduce((n, r) => n + r.cases, 0);
  const ms = results.reduce((n, r) => n + r.ms, 0);
  const lines = results.map(
    (r) =>
      `  ${String(r.cases).padStart(7)} cases ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.failure ? 'FAILED' : 'ok    '}  ${r.name}`,
  );
  return [
    ...lines,
    `  ${String(total).padStart(7)} cases ${(ms / 1000).toFixed(1).padStart(7)} s  in all; ${results.filter((r) => r.failure).length} target(s) failed`,
  ].join('\n');
}
