/**
 * What the commands that write bundles, shares and domains say about them: paths as typed from
 * where custos runs, the keys and share files as JSON and as tables, and the keys left out.
 */
import { relative } from 'node:path';
import { describeKey, type KeyRecord, type SkippedKey } from '../core/keys.js';
import type { BundleContents } from '../core/bundle.js';
import type { Context } from '../ops/context.js';
import { warnExposedShares } from './render.js';

/** A path as the user would type it from where custos runs. */
export function relativeTo(ctx: Context): (path: string) => string {
  return (p) => relative(ctx.cwd, p) || p;
}

/** What a written bundle is, as JSON: where, its id, its token, and its key's check value. */
export function bundleJson(
  rel: (p: string) => string,
  path: string,
  b: Pick<BundleContents, 'bundleId' | 'source' | 'kek'>,
) {
  return { bundle: rel(path), bundleId: b.bundleId, source: b.source, kekCheckValue: b.kek.kcv };
}

/** The keys of a bundle as JSON: how each is named, its size and its check value. */
export function keysJson(keys: readonly KeyRecord[]) {
  return keys.map((k) => ({
    label: k.label,
    id: k.id,
    class: k.class,
    keyType: k.keyType,
    bits: k.bits,
    checkValue: k.checkValue,
  }));
}

export function warnSkipped(ctx: Context, skipped: readonly SkippedKey[]): void {
  for (const s of skipped) ctx.out.warn(`skipped ${s.class} key ${describeKey(s)}: ${s.reason}`);
}

interface ShareFile {
  custodian: string;
  name: string;
  index: number;
  path: string;
}

/** The share files written, as JSON: whose each is and where. */
export function sharesJson(files: readonly ShareFile[], rel: (p: string) => string) {
  return files.map((s) => ({
    custodian: s.custodian,
    name: s.name,
    index: s.index,
    path: rel(s.path),
  }));
}

/** The share files written, one row a custodian. */
export function shareTable(
  ctx: Context,
  files: readonly ShareFile[],
  total: number,
  rel: (p: string) => string,
): void {
  ctx.out.table(
    ['custodian', 'name', 'share', 'file'],
    files.map((s) => [s.custodian, s.name, `${s.index} of ${total}`, rel(s.path)]),
  );
}

/** Warns where share files were written that others on this host could replace or remove. */
export function warnSharesExposed(ctx: Context, files: readonly { path: string }[]): void {
  warnExposedShares(
    ctx.out,
    files.map((f) => f.path),
  );
}
