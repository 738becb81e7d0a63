/**
 * What the master key's wrapping of the private key is bound to: the vault's
 * public key. A wrapped key copied from another vault fails to unwrap here.
 */
export function wrappingContext(vaultPublicKey: Buffer): Buffer {
  return Buffer.concat([Buffer.from('tagbox-vault/v1 private-key\0', 'utf8'), vaultPublicKey]);
}
