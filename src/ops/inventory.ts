/** Lists the key objects on a token with their attributes and check values. */
import type { InventoryRow } from '../core/keys.js';
import { checkValueOf, matchingPublicKey } from './check-values.js';
import { openHsm } from './hsm.js';
import { tokenName } from '../hsm/quirks.js';
import type { Context } from './context.js';

export async function inventory(
  ctx: Context,
  hsm: string,
): Promise<{ token: string; serial: string; rows: InventoryRow[]; name: string }> {
  const token = await openHsm(ctx, hsm, false);
  try {
    const { keys } = token.contents();
    const rows = keys.map((k): InventoryRow => ({
      label: k.label,
      id: k.id,
      class: k.class,
      keyType: k.keyType,
      bits: k.bits,
      extractable: k.extractable,
      sensitive: k.sensitive,
      checkValue: checkValueOf(
        token,
        k,
        k.class === 'private' ? matchingPublicKey(keys, k) : undefined,
      ),
    }));
    rows.sort(
      (a, b) =>
        a.label.localeCompare(b.label) ||
        a.id.localeCompare(b.id) ||
        a.class.localeCompare(b.class),
    );
    return {
      token: token.identity.label,
      serial: token.identity.serial,
      rows,
      name: tokenName(token.identity),
    };
  } finally {
    token.close();
  }
}
