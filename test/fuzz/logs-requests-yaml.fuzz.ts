/**
 * Audit lines and logs, handover requests and packages, policy and configuration YAML, age identity
 * files and token identity files.
 */
import { fuzzGroup } from './full.js';

fuzzGroup(
  'logs, requests, YAML, identities',
  (n) => /^(audit|handover|policy|configuration|age identity|token identity)/.test(n),
  {
    'audit log line': 12_000,
    'audit log: verify': 2_000,
    'handover request': 8_000,
    'handover package': 6_000,
    'policy YAML': 4_000,
    'configuration YAML': 4_000,
    'age identity file': 5_000,
    'token identity file': 8_000,
  },
  5_000,
);
