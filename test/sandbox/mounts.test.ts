import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_CA, fixture, sh, type Fixture } from './helpers.js';

/** Read-only mounts under /opt/tagbox (an engine's binary, a session's plugins), attacked from inside. */
describe('read-only mounts', () => {
  let f: Fixture;
  let dir: string;
  beforeAll(async () => {
    f = await fixture();
    dir = mkdtempSync(join(tmpdir(), 'tagbox-mount-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'skills'), { mode: 0o755 });
    writeFileSync(join(dir, 'skills', 'SKILL.md'), 'the skill\n', { mode: 0o644 });
  });
  afterAll(async () => {
    await f?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows the host directory at its target, and nothing inside can change it', async () => {
    const sandbox = await f.provider.create({ proxySocket: f.proxySocket, caCertPem: FAKE_CA, mounts: [{ source: dir, target: '/opt/tagbox/plugins/demo' }] });
    try {
      const read = await sh(f, sandbox, 'cat /opt/tagbox/plugins/demo/skills/SKILL.md');
      expect(read.stdout).toBe('the skill\n');
      const attacks = [
        'echo x > /opt/tagbox/plugins/demo/skills/SKILL.md',
        'rm /opt/tagbox/plugins/demo/skills/SKILL.md',
        'touch /opt/tagbox/plugins/demo/new',
        'mkdir /opt/tagbox/other',
        'chmod 777 /opt/tagbox/plugins/demo',
      ];
      for (const attack of attacks) {
        const result = await sh(f, sandbox, attack);
        expect(result.exitCode, attack).not.toBe(0);
        expect(result.stderr, attack).toMatch(/Read-only file system|Permission denied|Operation not permitted/);
      }
      expect(readFileSync(join(dir, 'skills', 'SKILL.md'), 'utf8')).toBe('the skill\n');
    } finally {
      await f.provider.release(sandbox);
    }
  });

  it('refuses a target outside /opt/tagbox before building anything', async () => {
    await expect(f.provider.create({ proxySocket: f.proxySocket, caCertPem: FAKE_CA, mounts: [{ source: dir, target: '/usr/bin' }] })).rejects.toThrow(/under \/opt\/tagbox/);
  });
});
