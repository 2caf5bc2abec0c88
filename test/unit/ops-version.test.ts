// The version custos reports and records (src/ops/version.ts) is the package's.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { VERSION } from '../../src/ops/version.js';

describe('VERSION', () => {
  test('is the version in package.json and package-lock.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const lock = JSON.parse(
      readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8'),
    );
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(VERSION).toBe(pkg.version);
    expect(VERSION).toBe(lock.version);
  });
});
