/** Bundles (v1, v2), shares and domain shares, domain files, ceremonies, submissions. */
import { fuzzGroup } from './full.js';

fuzzGroup(
  'envelopes and shares',
  (n) => /^(bundle|share|domain|ceremony|submission)/.test(n),
  {
    'bundle v1 and v2: parse': 12_000,
    'bundle v1: load': 8_000,
    'bundle v1 forged': 8_000,
    'bundle v2': 6_000,
    'share and domain share: parse': 12_000,
    'share file': 4_000,
    'domain share file': 4_000,
    'domain file': 8_000,
    ceremony: 8_000,
    'submission and payload': 6_000,
    'submission payload': 8_000,
  },
  5_000,
);
