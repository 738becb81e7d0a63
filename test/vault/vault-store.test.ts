import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MasterKey } from '../../src/vault/master-key.js';
import { Opener } from '../../src/vault/private/opener.js';
import { rotateMasterKey } from '../../src/vault/rotate-master.js';
import { Sealer } from '../../src/vault/sealer.js';
import { openVaultStore } from '../../src/vault/store.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { createVaultHarness, memorySink, type VaultHarness } from './harness.js';

const ctx = { connection: 'github', bundle: 'platform-eng', session: 'sess-1' };

describe.each(BACKENDS)('vault store on %s', (backendName) => {
  let backend: TestBackend;
  let vault: VaultHarness;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    vault = await createVaultHarness(backend.sibling('vault'));
  });
  afterEach(async () => {
    await vault.close();
    await backend.cleanup();
  });

  it('puts, rotates, lists metadata, opens and deletes', async () => {
    expect(await vault.sealer.put('gh-token', Buffer.from('one'))).toEqual({ name: 'gh-token', kind: 'static', version: 1, created: true });
    expect(await vault.sealer.put('gh-token', Buffer.from('two'))).toEqual({ name: 'gh-token', kind: 'static', version: 2, created: false });
    const [meta] = await vault.sealer.list();
    expect(meta).toMatchObject({ name: 'gh-token', kind: 'static', version: 2, lastUsedAt: null });
    expect(Object.keys(meta!).sort()).toEqual(['createdAt', 'kind', 'lastUsedAt', 'name', 'updatedAt', 'version']);

    const opener = await vault.opener();
    expect(await opener.open('gh-token', ctx)).toEqual({ name: 'gh-token', version: 2, kind: 'static', value: 'two' });
    // A rotation is seen by the next open, even with the value cache.
    await vault.sealer.put('gh-token', Buffer.from('three'));
    expect((await opener.open('gh-token', ctx)).value).toBe('three');

    expect(await vault.sealer.delete('gh-token')).toBe(true);
    await expect(opener.open('gh-token', ctx)).rejects.toThrow(/secret "gh-token" not found/);
    expect(await vault.sealer.delete('gh-token')).toBe(false);
  });

  it('replace needs an existing secret; bad names and sizes are refused', async () => {
    await expect(vault.sealer.replace('nope', Buffer.from('x'))).rejects.toThrow(/not found/);
    await expect(vault.sealer.put('Bad', Buffer.from('x'))).rejects.toMatchObject({ exitCode: 2 });
    await expect(vault.sealer.put('ok', Buffer.alloc(0))).rejects.toThrow(/empty/);
    await expect(vault.sealer.put('ok', Buffer.alloc(64 * 1024 + 1, 0x61))).rejects.toThrow(/64 KiB/);
    await expect(vault.sealer.put('ok', Buffer.from('a\r\nX-Evil: 1'))).rejects.toThrow(/line break/);
    expect((await vault.sealer.put('max', Buffer.alloc(64 * 1024, 0x61))).version).toBe(1);
  });

  it('records every open as a credential-use event, never with the value', async () => {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    await vault.sealer.put('api', Buffer.from(canary));
    const opener = await vault.opener();
    await opener.open('api', ctx);
    await opener.open('api', { connection: 'other' });
    await expect(opener.open('missing', ctx)).rejects.toThrow();
    expect(vault.audit.events).toEqual([
      { type: 'credential-use', outcome: 'opened', secret: 'api', version: 1, kind: 'static', connection: 'github', bundle: 'platform-eng', session: 'sess-1', actor: 'proxy' },
      { type: 'credential-use', outcome: 'opened', secret: 'api', version: 1, kind: 'static', connection: 'other', actor: 'proxy' },
      expect.objectContaining({ type: 'credential-use', outcome: 'failed', secret: 'missing', reason: 'secret "missing" not found in the vault' }),
    ]);
    expect(JSON.stringify(vault.audit.events)).not.toContain(canary);
  });

  it('updates "last used" coalesced, after a flush', async () => {
    await vault.sealer.put('api', Buffer.from('v'));
    const opener = await vault.opener({ lastUsedFlushMs: 60_000 });
    for (let i = 0; i < 100; i++) await opener.open('api', ctx);
    expect((await vault.sealer.metadata('api'))?.lastUsedAt).toBeNull();
    await opener.close();
    expect((await vault.sealer.metadata('api'))?.lastUsedAt).toMatch(/^\d{4}-/);
  });

  it('fails closed when an open fails to audit', async () => {
    await vault.sealer.put('api', Buffer.from('v'));
    const opener = await Opener.unlock(vault.store, vault.masterKey, { audit: { append: async () => Promise.reject(new Error('audit down')) } });
    await expect(opener.open('api', ctx)).rejects.toThrow(/audit down/);
    await opener.close();
  });

  it('the Sealer holds no private key and has no way to open', async () => {
    const sealer: Sealer = vault.sealer;
    // @ts-expect-error the Sealer has no open method, by type...
    expect(sealer.open).toBeUndefined();
    // ...and nothing reachable from it is a private key or the master key.
    const seen = new Set<unknown>();
    const found: string[] = [];
    const walk = (value: unknown, path: string, depth: number): void => {
      if (depth > 3 || value === null || typeof value !== 'object' || seen.has(value)) return;
      seen.add(value);
      if ((value as { type?: unknown }).type === 'private' || value instanceof MasterKey) found.push(path);
      for (const key of Object.getOwnPropertyNames(value)) walk((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
    };
    walk(sealer, 'sealer', 0);
    expect(found).toEqual([]);
    expect(Object.getOwnPropertyNames(Sealer.prototype).sort()).toEqual(['constructor', 'delete', 'list', 'metadata', 'publicKey', 'put', 'replace']);
    // Its only key is the 32-byte public key.
    expect(sealer.publicKey).toHaveLength(32);
  });

  describe('tampering fails closed', () => {
    it('a flipped ciphertext byte', async () => {
      await vault.sealer.put('api', Buffer.from('value'));
      const opener = await vault.opener();
      await opener.open('api', ctx); // warm the value cache: tampering must still be caught
      const row = await vault.store.db.selectFrom('secrets').select('envelope').where('name', '=', 'api').executeTakeFirstOrThrow();
      const bytes = Buffer.from(row.envelope, 'base64');
      bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x80;
      await vault.store.db.updateTable('secrets').set({ envelope: bytes.toString('base64') }).where('name', '=', 'api').execute();
      await expect(opener.open('api', ctx)).rejects.toThrow(/secret "api" \(version 1\) failed to open: its ciphertext was altered/);
      expect(vault.audit.events.at(-1)).toMatchObject({ outcome: 'failed', secret: 'api' });
    });

    it('a row moved to another name', async () => {
      await vault.sealer.put('prod-key', Buffer.from('prod'));
      await vault.sealer.put('test-key', Buffer.from('test'));
      const prod = await vault.store.db.selectFrom('secrets').select('envelope').where('name', '=', 'prod-key').executeTakeFirstOrThrow();
      await vault.store.db.updateTable('secrets').set({ envelope: prod.envelope }).where('name', '=', 'test-key').execute();
      const opener = await vault.opener();
      await expect(opener.open('test-key', ctx)).rejects.toThrow(/secret "test-key" \(version 1\) failed to open/);
      expect((await opener.open('prod-key', ctx)).value).toBe('prod');
    });

    it('a version number edited in place', async () => {
      await vault.sealer.put('api', Buffer.from('v1'));
      await vault.sealer.put('api', Buffer.from('v2'));
      await vault.store.db.updateTable('secrets').set({ version: 7 }).where('name', '=', 'api').execute();
      const opener = await vault.opener();
      await expect(opener.open('api', ctx)).rejects.toThrow(/secret "api" \(version 7\) failed to open/);
    });

    it('a kind edited in place', async () => {
      await vault.sealer.put('api', Buffer.from('v1'));
      await vault.store.db.updateTable('secrets').set({ kind: 'aws-sigv4' }).where('name', '=', 'api').execute();
      await expect((await vault.opener()).open('api', ctx)).rejects.toThrow(/failed to open/);
    });

    it('a wrong master key', async () => {
      const wrong = MasterKey.generate({ kind: 'file', file: '/somewhere/master.key' });
      await expect(Opener.unlock(vault.store, wrong, { audit: memorySink() })).rejects.toThrow(
        'the master key in /somewhere/master.key does not open this vault: it is the wrong key, or the wrapped private key was altered',
      );
    });

    it('a wrapped private key swapped for another vault\'s', async () => {
      const other = await createVaultHarness(backend.sibling('vault2'));
      try {
        const theirs = await other.store.db.selectFrom('vault_key_wrappings').select('wrapped_private_key').executeTakeFirstOrThrow();
        await vault.store.db.updateTable('vault_key_wrappings').set({ wrapped_private_key: theirs.wrapped_private_key }).execute();
        await expect(Opener.unlock(vault.store, other.masterKey, { audit: memorySink() })).rejects.toThrow(/does not open this vault/);
      } finally {
        await other.close();
      }
    });
  });

  it('concurrent writers leave consistent versions', async () => {
    // A second, independent connection stands in for another process.
    const second = await openVaultStore(backend.sibling('vault'));
    try {
      const sealers = [vault.sealer, await Sealer.connect(second)];
      const writes = Array.from({ length: 40 }, (_, i) => sealers[i % 2]!.put('shared', Buffer.from(`value-${i}`)));
      const results = await Promise.all(writes);
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const winner = results.find((r) => r.version === 40)!;
      const opened = await (await vault.opener()).open('shared', ctx);
      expect(opened.version).toBe(40);
      expect(opened.value).toBe(`value-${results.indexOf(winner)}`);
    } finally {
      await second.close();
    }
  });

  it('rotating the master key re-wraps; a failed install keeps the old key working', async () => {
    await vault.sealer.put('api', Buffer.from('v'));
    const next = MasterKey.generate({ kind: 'file', file: '/new/master.key' });
    await expect(
      rotateMasterKey(vault.store, vault.masterKey, next, {
        installNewKey: () => {
          throw new Error('disk full');
        },
      }),
    ).rejects.toThrow('disk full');
    // Interrupted mid-way: both keys open the vault.
    expect((await (await Opener.unlock(vault.store, vault.masterKey, { audit: memorySink() })).open('api', ctx)).value).toBe('v');
    expect((await (await Opener.unlock(vault.store, next, { audit: memorySink() })).open('api', ctx)).value).toBe('v');

    const third = MasterKey.generate({ kind: 'file', file: '/third/master.key' });
    await rotateMasterKey(vault.store, next, third);
    expect((await (await Opener.unlock(vault.store, third, { audit: memorySink() })).open('api', ctx)).value).toBe('v');
    await expect(Opener.unlock(vault.store, next, { audit: memorySink() })).rejects.toThrow(/does not open this vault/);
    await expect(Opener.unlock(vault.store, vault.masterKey, { audit: memorySink() })).rejects.toThrow(/does not open this vault/);
    await expect(rotateMasterKey(vault.store, third, third)).rejects.toThrow(/same as the current/);
    expect(await vault.store.db.selectFrom('vault_key_wrappings').select('id').execute()).toHaveLength(1);
  });
});
