/**
 * A custodian identity held on a PKCS#11 token: the stub file (`custos-token-identity/1`) read as
 * an age identity. It opens only the `ssh-rsa` stanza tagged for its own key; only then is the
 * token opened and its PIN asked for, on the terminal without echo (or from the pin source of the
 * custos.yaml profile the stub names, for automation). The private-key operation is the token's.
 */
import type { Identity, Stanza } from 'age-encryption';
import { CustosError } from '../core/errors.js';
import { parseTokenStub, type TokenStub } from '../core/token-stub.js';
import type { TokenIdentity as TokenDescription } from '../core/bundle.js';
import type { NamedIdentity } from '../crypto/age.js';
import { parseSshRsa, stanzasFor, type SshRsaKey } from '../crypto/ssh-rsa.js';
import {
  decryptStanza,
  findCustodianKey,
  openCustodianToken,
  type DecryptWay,
} from '../hsm/custodian-key.js';
import type { TokenLocation } from '../hsm/session.js';
import { readPin } from '../io/pin.js';
import { askSecret } from '../io/terminal.js';
import type { Context } from './context.js';
import { wipe } from '../crypto/wipe.js';

/** Where the stub's token is, and how its PIN comes: the named profile if custos.yaml has it. */
function locate(
  ctx: Context,
  stub: TokenStub,
): { location: TokenLocation; pin: (t: TokenDescription) => Promise<string> } {
  const profile = stub.profile !== undefined ? ctx.config.hsms.get(stub.profile) : undefined;
  const location: TokenLocation = profile
    ? {
        module: profile.module,
        token: stub.token.label,
        ...(profile.libraryParameters !== undefined
          ? { libraryParameters: profile.libraryParameters }
          : {}),
      }
    : {
        module: stub.module,
        token: stub.token.label,
        ...(stub.libraryParameters !== undefined
          ? { libraryParameters: stub.libraryParameters }
          : {}),
      };
  const source = profile?.pin;
  const pin = async (t: TokenDescription): Promise<string> => {
    if (source && source.kind !== 'prompt' && source.kind !== 'escrow')
      return readPin(source, `token "${t.label}"`, (m) => ctx.out.warn(m), ctx.env);
    return askSecret(
      `PIN of token "${t.label}" (key "${stub.key.label}"):`,
      "a custodian token's PIN is typed at a terminal, never given on the command line: run custos at a terminal",
    );
  };
  return { location, pin };
}

export class TokenCustodianIdentity implements Identity {
  readonly key: SshRsaKey;
  /** How the last stanza was opened (for enrolment's report and the tests). */
  way: DecryptWay | undefined;

  constructor(
    private readonly ctx: Context,
    readonly source: string,
    readonly stub: TokenStub,
  ) {
    this.key = parseSshRsa(stub.recipient, `the recipient in ${source}`);
  }

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    const mine = stanzasFor(this.key, stanzas);
    if (mine.length === 0) return null;
    const { location, pin } = locate(this.ctx, this.stub);
    const session = await openCustodianToken(location, pin);
    try {
      const handle = findCustodianKey(session, Buffer.from(this.stub.key.id, 'hex'), this.key);
      for (const stanza of mine) {
        if (stanza.body.length !== Math.ceil(this.key.bits / 8)) continue;
        const { fileKey, way } = decryptStanza(session, handle, this.key, Buffer.from(stanza.body));
        this.way = way;
        if (fileKey && fileKey.length === 16) {
          const copy = new Uint8Array(fileKey);
          wipe(fileKey);
          return copy;
        }
        wipe(fileKey);
      }
    } finally {
      session.close();
    }
    throw new CustosError(
      'E_IDENTITY',
      `the key on token "${this.stub.token.label}" does not open the ssh-rsa stanza made for it in this file`,
      'the file was damaged or forged: ask for an intact copy',
    );
  }
}

/** The identity of a token stub file, for any command that takes `--identity`. */
export function tokenIdentityFromStub(ctx: Context, source: string, file: Buffer): NamedIdentity {
  const stub = parseTokenStub(source, file);
  const token = new TokenCustodianIdentity(ctx, source, stub);
  return { source, secret: '', recipient: stub.recipient, token };
}
