/**
 * custos custodian enroll: the key made or picked on the custodian's token, how it was proved, the
 * identity file, and the recipient line that goes into the policy.
 */
import { DECRYPT_WAY_WORDS } from '../hsm/custodian-key.js';
import type { Context } from '../ops/context.js';
import { enrollCustodian } from '../ops/custodian-enroll.js';

export async function run(
  ctx: Context,
  o: { hsm: string; label: string; out?: string; json?: boolean },
): Promise<void> {
  const r = await enrollCustodian(ctx, { hsm: o.hsm, label: o.label, out: o.out });
  const { stub } = r;
  if (o.json) {
    return ctx.out.json({
      identity: r.file,
      token: stub.token,
      key: { ...stub.key, bits: r.bits, made: r.made },
      decryption: r.way,
      notes: r.notes,
      recipient: stub.recipient,
    });
  }
  for (const note of r.notes) ctx.out.warn(note);
  ctx.out.data([
    `${r.made ? 'made' : 'picked'} key "${stub.key.label}" (RSA-${r.bits}, id ${stub.key.id})`,
    `  on token "${stub.token.label}" (serial ${stub.token.serial || 'none'})`,
    '  it decrypts and does nothing else; it never leaves the token',
    `  proved by a test decryption: ${DECRYPT_WAY_WORDS[r.way]}`,
    `identity file: ${r.file} (no secret in it: pass it as --identity)`,
    "the custodian's recipient, for the policy (one line):",
    stub.recipient,
  ]);
}
