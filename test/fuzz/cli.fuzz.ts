/** The real CLI, spawned, on mutants of every kind of file a command reads. */
import { fuzzGroup } from './full.js';

fuzzGroup('the CLI', () => false, {}, 0, Number(process.env.FUZZ_CLI_CASES ?? 30));
