/** custos ceremony open: the ceremony described, and the steps each party takes next. */
import { relative } from 'node:path';
import { fitLines } from '../../core/layout.js';
import { openCeremony, type OpenRequest } from '../../ops/ceremony/open.js';
import type { Context } from '../../ops/context.js';
import { describeCeremony } from '../ceremony-view.js';

export async function run(ctx: Context, o: OpenRequest & { json?: boolean }): Promise<void> {
  const { ceremony, hostDir } = await openCeremony(ctx, o);
  if (o.json)
    return ctx.out.json({
      ceremony: ceremony.body,
      file: o.out,
      digest: ceremony.digest,
      hostDir: relative(ctx.cwd, hostDir),
    });
  const width = ctx.out.width;
  ctx.out.data(
    fitLines(
      [
        ...describeCeremony(ceremony, width),
        '',
        `ceremony file ${o.out} written; it holds nothing secret`,
        `its key stays on this host, in ${relative(ctx.cwd, hostDir)}/ (0600)`,
        'next:',
        `  1. send ${o.out} to each custodian, with the guide for custodians`,
        '  2. read each of them the SHA-256 above, by phone, never with the file',
        '  3. each custodian runs, on their own machine:',
        `       custos share submit --ceremony ${o.out} --share THEIR.share`,
        '         --identity THEIR.key --out THEIR-ID.submission',
        `  4. as submissions arrive: custos ceremony add ${o.out} FILE...`,
        `     (or take shares in person here: custos ceremony run ${o.out})`,
      ],
      width,
      4,
    ),
  );
}
