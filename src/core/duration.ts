/** Durations as people write them on the command line and in policies: 90m, 72h, 14d. */

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type DurationUnit = keyof typeof UNIT_MS;

/**
 * Milliseconds for a whole number (1 to 99999) followed by one of the allowed units, or null.
 * Nothing else is accepted: no spaces, signs, fractions or unit words.
 */
export function durationMs(text: string, units: readonly DurationUnit[]): number | null {
  const m = /^([1-9][0-9]{0,4})([a-z])$/.exec(text);
  const unit = m?.[2] as DurationUnit | undefined;
  if (!m || !unit || !units.includes(unit)) return null;
  return Number(m[1]) * UNIT_MS[unit];
}
