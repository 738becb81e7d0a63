/**
 * Vault benchmark: opens per second for a static secret on one core, and
 * p50/p99 latency per open, against baselines measured in the same run (raw
 * AES-256-GCM decrypt of the same size; one raw X25519 agreement; the full
 * unseal with no store). Run: npm run bench:vault
 *
 * "cold" opens decrypt every time (X25519 + HKDF + GCM); "cached" opens reuse
 * the value cached under (name, version, envelope) — both read the row from
 * the store and emit an audit event (to an in-memory sink here: the proxy
 * batches its audit writes) on every open.
 */
import { createDecipheriv, createCipheriv, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { initializeVault } from '../src/vault/bootstrap.js';
import type { AuditSink } from '../src/vault/credentials.js';
import { MasterKey } from '../src/vault/master-key.js';
import { Opener } from '../src/vault/private/opener.js';
import { unseal } from '../src/vault/private/unseal.js';
import { seal } from '../src/vault/seal.js';
import { Sealer } from '../src/vault/sealer.js';
import { openVaultStore, type VaultStore } from '../src/vault/store.js';
import type { StoreLocation } from '../src/store/connect.js';
import { rawPublicKey } from '../src/vault/x25519.js';

const VALUE = Buffer.from(`ghp_${randomBytes(18).toString('hex')}`); // a typical 40-byte token
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

interface Result {
  label: string;
  opsPerSec: number;
  p50us: number;
  p99us: number;
}

async function measure(label: string, op: () => unknown): Promise<Result> {
  for (let i = 0; i < 2000; i++) await op(); // warm-up
  const samples: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    const t0 = performance.now();
    await op();
    samples.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - start) / 1000;
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]! * 1000;
  return { label, opsPerSec: samples.length / elapsed, p50us: pct(0.5), p99us: pct(0.99) };
}

function print(result: Result, baseline?: Result): void {
  const ratio = baseline ? `  ${(baseline.opsPerSec / result.opsPerSec).toFixed(1)}x the cost of ${baseline.label}` : '';
  console.log(
    `${result.label.padEnd(46)} ${Math.round(result.opsPerSec).toLocaleString('en-US').padStart(10)} ops/s   p50 ${result.p50us.toFixed(1).padStart(7)} µs   p99 ${result.p99us.toFixed(1).padStart(7)} µs${ratio}`,
  );
}

async function benchStore(location: StoreLocation, label: string): Promise<{ cold: Result; cached: Result }> {
  const store: VaultStore = await openVaultStore(location);
  const masterKey = MasterKey.generate({ kind: 'env', variable: 'BENCH' });
  await initializeVault(store, () => masterKey);
  await (await Sealer.connect(store)).put('bench-token', VALUE);
  const audit: AuditSink = { append: async () => undefined };
  const ctx = { connection: 'github', session: 'bench' };
  const cold = await Opener.unlock(store, masterKey, { audit, cacheValues: false });
  const cached = await Opener.unlock(store, masterKey, { audit, cacheValues: true });
  const results = {
    cold: await measure(`Opener.open, cold (${label})`, () => cold.open('bench-token', ctx)),
    cached: await measure(`Opener.open, cached value (${label})`, () => cached.open('bench-token', ctx)),
  };
  await cold.close();
  await cached.close();
  await store.close();
  return results;
}

async function main(): Promise<void> {
  console.log(`vault bench: ${VALUE.length}-byte static secret, ${SECONDS} s per row, one core, node ${process.versions.node}\n`);

  // Baselines.
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const ct = Buffer.concat([cipher.update(VALUE), cipher.final()]);
  const tag = cipher.getAuthTag();
  const gcm = await measure('baseline: raw AES-256-GCM decrypt', () => {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]);
  });
  const a = generateKeyPairSync('x25519');
  const b = generateKeyPairSync('x25519');
  const x25519 = await measure('baseline: raw X25519 agreement', () => diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }));
  const vaultPub = rawPublicKey(a.publicKey);
  const binding = { name: 'bench-token', version: 1, kind: 'static' };
  const envelope = seal(vaultPub, binding, VALUE);
  const unsealOnly = await measure('unseal in memory (X25519+HKDF+GCM, no store)', () => unseal(a.privateKey, vaultPub, binding, envelope));

  print(gcm);
  print(x25519, gcm);
  print(unsealOnly, gcm);

  const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-'));
  try {
    const sqlite = await benchStore({ dialect: 'sqlite', file: join(dir, 'vault.db') }, 'SQLite');
    print(sqlite.cold, unsealOnly);
    print(sqlite.cached, gcm);
    const verdict = sqlite.cached.opsPerSec >= 20_000 ? 'meets' : 'MISSES';
    console.log(`\ntarget 20,000 opens/s on one core: cached path ${verdict} it (${Math.round(sqlite.cached.opsPerSec).toLocaleString('en-US')}/s); cold path ${Math.round(sqlite.cold.opsPerSec).toLocaleString('en-US')}/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (process.env.BENCH_POSTGRES_URL) {
    const schema = `bench_${randomBytes(4).toString('hex')}`;
    const pg = await benchStore({ dialect: 'postgres', url: process.env.BENCH_POSTGRES_URL, schema }, 'Postgres, sequential');
    print(pg.cold, unsealOnly);
    print(pg.cached, gcm);
    const store = await openVaultStore({ dialect: 'postgres', url: process.env.BENCH_POSTGRES_URL, schema });
    const { sql } = await import('kysely');
    await sql`drop schema ${sql.id(schema)} cascade`.execute(store.db);
    await store.close();
  }
}

await main();
