import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PluginAdmin } from '../../src/plugins/plugin-admin.js';
import { pluginsForPlace } from '../../src/plugins/session-plugins.js';
import { runInSandbox } from '../../src/sandbox/index.js';
import { createWorld, type World } from '../access/fixtures.js';
import { FAKE_CA, fixture, type Fixture } from '../sandbox/helpers.js';
import { filesOf, SAMPLE } from './fixtures.js';

/**
 * What the engine side does with pluginsForPlace: each hostDir bound
 * read-only at /opt/tagbox/plugins/<name> of a real bubblewrap sandbox, which
 * runs as its own user. The sandbox reads every file and changes none.
 */
describe('extracted plugins in a real sandbox', () => {
  let w: World;
  let f: Fixture;
  let root: string;
  beforeAll(async () => {
    w = await createWorld('sqlite');
    f = await fixture();
    root = mkdtempSync(join(tmpdir(), 'tagbox-plugin-mount-'));
    chmodSync(root, 0o755);
  });
  afterAll(async () => {
    await f?.close();
    await w?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('reads the plugin at /opt/tagbox/plugins/<name>, runs its executable, and cannot write to it', async () => {
    const plugins = new PluginAdmin(w.store, w.audit);
    await plugins.add('alice', w.org.id, 'review-kit', filesOf(SAMPLE));
    await plugins.attach('alice', w.org.id, 'review-kit', { kind: 'channel', id: w.eng.id });
    const session = await pluginsForPlace(w.store, { kind: 'channel', channelId: w.eng.id }, join(root, 'cache'));
    const sandbox = await f.provider.create({
      proxySocket: f.proxySocket,
      caCertPem: FAKE_CA,
      mounts: session.map((p) => ({ source: p.hostDir, target: `/opt/tagbox/plugins/${p.name}` })),
    });
    try {
      const run = (script: string) => runInSandbox(f.provider, sandbox, { argv: ['/bin/sh', '-c', script] });
      const read = await run('id -u; cat /opt/tagbox/plugins/review-kit/skills/review/SKILL.md; /opt/tagbox/plugins/review-kit/scripts/fmt.sh && echo ran');
      expect(read.exitCode).toBe(0);
      expect(read.stdout).toBe(`1000\n${SAMPLE['skills/review/SKILL.md']}ran\n`);
      const write = await run('echo x > /opt/tagbox/plugins/review-kit/new 2>/dev/null && echo wrote; echo x >> /opt/tagbox/plugins/review-kit/.mcp.json 2>/dev/null && echo appended; rm -f /opt/tagbox/plugins/review-kit/commands/ship.md 2>/dev/null; ls /opt/tagbox/plugins/review-kit/commands');
      expect(write.stdout).toBe('ship.md\n');
    } finally {
      await f.provider.release(sandbox);
    }
  });
});
