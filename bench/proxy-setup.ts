/**
 * What every proxy bench stands on: the upstream's CA and leaf, one local CA
 * every intercepting proxy signs its leaves with, the files the peers read,
 * the upstream (bench/proxy-upstream.ts) and Tagbox's proxy (the real CLI,
 * bench/proxy-tagbox.ts) with the credential sealed.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority } from '../src/tls/certificates.js';
import { nextLine, runNode } from './node-children.js';
import { startTagboxProxy, type TagboxProxy } from './proxy-tagbox.js';

export interface ProxyBench {
  files: { upstreamCa: string; cert: string; key: string; localCa: string; localCaKey: string; both: string; hosts: string };
  localCa: CertificateAuthority;
  /** The Authorization value the upstream expects (and the injecting proxies set). */
  inject: string;
  upstream: ChildProcess;
  upstreamPort: number;
  upstreamStats(): Promise<{ requests: number; withCredential: number; connections: number }>;
  tagbox: TagboxProxy;
  /** Another `tagbox proxy` like `tagbox` (its own home under `dir/name`), with `workers` processes. */
  startTagbox(name: string, workers: number): Promise<TagboxProxy>;
}

/** `extraHosts` are served too (mapped, certified, allowed by *.bench.test): the new hosts of the first-request test. */
export async function setUpProxyBench(children: ChildProcess[], dir: string, extraHosts: string[] = []): Promise<ProxyBench> {
  const upstreamCa = await createCertificateAuthority({ commonName: 'Bench Upstream CA', validDays: 1 });
  const names = ['bench.test', 'api.bench.test', 'pass.bench.test', ...extraHosts];
  // 127.0.0.1 too: mitmproxy may name the upstream by the address it dials.
  const leaf = await issueServerCertificate(upstreamCa, [...names, '*.bench.test', '127.0.0.1']);
  const localCa = await createCertificateAuthority({ commonName: 'Bench Local CA', validDays: 1 });
  const files = {
    upstreamCa: join(dir, 'upstream-ca.pem'),
    cert: join(dir, 'leaf.pem'),
    key: join(dir, 'leaf.key'),
    localCa: join(dir, 'local-ca.pem'),
    localCaKey: join(dir, 'local-ca.key'),
    both: join(dir, 'both-cas.pem'),
    hosts: join(dir, 'hosts'),
  };
  writeFileSync(files.upstreamCa, upstreamCa.certPem);
  writeFileSync(files.cert, leaf.certPem);
  writeFileSync(files.key, leaf.keyPem);
  writeFileSync(files.localCa, localCa.certPem);
  writeFileSync(files.localCaKey, localCa.keyPem, { mode: 0o600 });
  writeFileSync(files.both, `${upstreamCa.certPem}\n${localCa.certPem}`);
  writeFileSync(files.hosts, `${names.map((n) => `127.0.0.1 ${n}`).join('\n')}\n`);
  chmodSync(files.hosts, 0o644);

  const secret = `bench-token-${Date.now()}`;
  const inject = `Bearer ${secret}`;
  const upstream = runNode(children, 'proxy-upstream.ts', [files.cert, files.key, inject]);
  const upstreamPort = (JSON.parse(await nextLine(upstream, 20_000)) as { port: number }).port;
  const upstreamStats = async () => {
    upstream.stdin!.write('stats\n');
    return JSON.parse(await nextLine(upstream, 5000)) as { requests: number; withCredential: number; connections: number };
  };
  const options = {
    caCertPem: localCa.certPem,
    caKeyPem: localCa.keyPem,
    upstreamCaFile: files.upstreamCa,
    hosts: names,
    upstreamPort,
    secret,
    passthrough: ['pass.bench.test'],
  };
  const tagbox = await startTagboxProxy(children, dir, options);
  const startTagbox = (name: string, workers: number) => {
    const home = join(dir, name);
    mkdirSync(home, { recursive: true, mode: 0o755 });
    return startTagboxProxy(children, home, { ...options, workers });
  };
  return { files, localCa, inject, upstream, upstreamPort, upstreamStats, tagbox, startTagbox };
}
