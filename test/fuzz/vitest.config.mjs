// npm run fuzz: the full fuzz run (test/fuzz/*.fuzz.ts), kept out of npm test, which runs a bounded
// sample (test/unit/fuzz.test.ts). FUZZ_SEED replays a run; FUZZ_SCALE scales the case counts.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/fuzz/**/*.fuzz.ts'],
    pool: 'forks',
    testTimeout: 0,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
