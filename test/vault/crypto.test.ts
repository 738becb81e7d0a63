import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isTagboxError } from '../../src/errors.js';
import { seal } from '../../src/vault/seal.js';
import { unseal } from '../../src/vault/private/unseal.js';
import { MasterKey, loadMasterKey } from '../../src/vault/master-key.js';
import { rawPublicKey } from '../../src/vault/x25519.js';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pair = generateKeyPairSync('x25519');
const pub = rawPublicKey(pair.publicKey);
const binding = { name: 'gh-token', version: 3, kind: 'static' };

describe('seal / unseal', () => {
  it('round-trips with the private key', () => {
    const value = Buffer.from('s3cr3t-value');
    expect(unseal(pair.privateKey, pub, binding, seal(pub, binding, value))?.toString()).toBe('s3cr3t-value');
  });

  it('uses a fresh ephemeral key and nonce each time', () => {
    const a = seal(pub, binding, Buffer.from('x'));
    const b = seal(pub, binding, Buffer.from('x'));
    expect(a.equals(b)).toBe(false);
  });

  it('binds name, version and kind as associated data', () => {
    const envelope = seal(pub, binding, Buffer.from('v'));
    expect(unseal(pair.privateKey, pub, { ...binding, name: 'other' }, envelope)).toBeUndefined();
    expect(unseal(pair.privateKey, pub, { ...binding, version: 4 }, envelope)).toBeUndefined();
    expect(unseal(pair.privateKey, pub, { ...binding, kind: 'aws-sigv4' }, envelope)).toBeUndefined();
  });

  it('refuses any flipped byte', () => {
    const envelope = seal(pub, binding, Buffer.from('value'));
    for (let i = 0; i < envelope.length; i++) {
      const bad = Buffer.from(envelope);
      bad[i] = bad[i]! ^ 0x01;
      expect(unseal(pair.privateKey, pub, binding, bad)).toBeUndefined();
    }
  });

  it('does not open with another private key', () => {
    const other = generateKeyPairSync('x25519');
    expect(unseal(other.privateKey, pub, binding, seal(pub, binding, Buffer.from('v')))).toBeUndefined();
  });
});

describe('master key', () => {
  const source = { kind: 'env', variable: 'TAGBOX_MASTER_KEY' } as const;

  it('accepts base64 of exactly 32 bytes, with surrounding whitespace', () => {
    expect(() => MasterKey.parse(` ${randomBytes(32).toString('base64')}\n`, source)).not.toThrow();
  });

  it.each([
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(33).toString('base64')],
    ['not base64', 'not a key at all, not a key at all, not a k'],
    ['hex', randomBytes(32).toString('hex')],
    ['base64url', Buffer.alloc(32, 0xfb).toString('base64url')],
  ])('refuses %s with a clear exit-2 message that does not echo it', (_label, text) => {
    try {
      MasterKey.parse(text, source);
      expect.unreachable();
    } catch (error) {
      expect(isTagboxError(error) && error.exitCode).toBe(2);
      expect((error as Error).message).toMatch(/TAGBOX_MASTER_KEY: expected .*32 random bytes/);
      expect((error as Error).message).not.toContain(text);
    }
  });

  it('wraps and unwraps; another key or context fails', () => {
    const a = MasterKey.generate(source);
    const b = MasterKey.generate(source);
    const wrapped = a.wrap(Buffer.from('private'), Buffer.from('ctx'));
    expect(a.unwrap(wrapped, Buffer.from('ctx'))?.toString()).toBe('private');
    expect(b.unwrap(wrapped, Buffer.from('ctx'))).toBeUndefined();
    expect(a.unwrap(wrapped, Buffer.from('other'))).toBeUndefined();
  });

  it('creates the key file 0600 on first use and reads it back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-mk-'));
    const keyFile = join(dir, 'master.key');
    const first = loadMasterKey({ keyFile, create: true, env: {} });
    expect(first.created).toBe(true);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const again = loadMasterKey({ keyFile, create: true, env: {} });
    expect(again.created).toBe(false);
    expect(again.key.sameAs(first.key)).toBe(true);
  });

  it('prefers TAGBOX_MASTER_KEY, refuses an empty one, and never creates a file without create', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-mk-'));
    const keyFile = join(dir, 'master.key');
    const text = randomBytes(32).toString('base64');
    expect(loadMasterKey({ keyFile, create: true, env: { TAGBOX_MASTER_KEY: text } }).key.source.kind).toBe('env');
    expect(() => loadMasterKey({ keyFile, create: true, env: { TAGBOX_MASTER_KEY: '' } })).toThrow(/set but empty/);
    expect(() => loadMasterKey({ keyFile, create: false, env: {} })).toThrow(/no master key/);
    writeFileSync(keyFile, 'garbage\n');
    expect(() => loadMasterKey({ keyFile, create: false, env: {} })).toThrow(/master\.key: expected a master key/);
  });
});
