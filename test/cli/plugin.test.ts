import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { AuditLog } from '../../src/audit/log.js';
import { encodePlugin } from '../../src/plugins/plugin-blob.js';
import { PluginAdmin } from '../../src/plugins/plugin-admin.js';
import { readPluginDir } from '../../src/plugins/read-plugin-dir.js';
import { openControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { minimal, SAMPLE, writeTree } from '../plugins/fixtures.js';

describe.each(BACKENDS)('tagbox plugin on %s', (backendName) => {
  let backend: TestBackend;
  const dirs: string[] = [];
  const tagbox = (...args: string[]) => runTagbox(['plugin', ...args], { env: backend.env });
  const dir = (tree: Record<string, string>) => {
    const d = writeTree(tree);
    dirs.push(d);
    return d;
  };
  beforeEach(async () => {
    backend = await createTestBackend(backendName);
  });
  afterEach(async () => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    await backend.cleanup();
  });

  it('add stores a plugin and says what it has; the same tree again is no change; a new tree replaces it', async () => {
    const kit = dir(SAMPLE);
    const digest = encodePlugin(await readPluginDir(kit)).digest;
    const added = await tagbox('add', kit, '--name', 'kit');
    expect([added.code, added.stderr]).toEqual([0, '']);
    expect(added.stdout).toBe(`added plugin kit (sha256:${digest.slice(0, 12)}…, 2 skills, 1 command, 1 agent, 1 hook event, 1 MCP server)\n`);
    expect((await tagbox('add', `${kit}/`, '--name', 'kit')).stdout).toBe('no changes\n');

    writeFileSync(join(kit, 'commands/more.md'), 'more');
    const replaced = await tagbox('add', kit, '--name', 'kit');
    expect(replaced.stdout).toMatch(/^replaced plugin kit \(sha256:[0-9a-f]{12}…, 2 skills, 2 commands, 1 agent, 1 hook event, 1 MCP server\)\n$/);

    expect((await tagbox('add', dir(minimal()), '--name', 'mini')).stdout).toMatch(/^added plugin mini \(sha256:[0-9a-f]{12}…, 1 skill\)\n$/);
    const list = await tagbox('list');
    expect(list.stdout).toMatch(/^kit\tsha256:[0-9a-f]{12}…\t2 skills, 2 commands, 1 agent, 1 hook event, 1 MCP server\t\(not attached\)\nmini\tsha256:[0-9a-f]{12}…\t1 skill\t\(not attached\)\n$/);
  });

  it('attach and detach mirror `tagbox bundle`; rm removes; every change is audited as cli:$USER', async () => {
    await tagbox('add', dir(SAMPLE), '--name', 'kit');
    const store = await openControlStore(backend.location);
    try {
      const access = new AccessAdmin(store, new AuditLog(store));
      const org = await access.ensureDefaultOrg();
      const ws = await access.createWorkspace('t', { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'acme' });
      const ch = await access.createChannel('t', { workspaceId: ws.id, externalId: 'C1', name: 'eng' });

      expect((await tagbox('attach', 'kit', '--org')).stdout).toBe('attached plugin kit to the org\n');
      expect((await tagbox('attach', 'kit', '--org')).stdout).toBe('no changes: plugin kit is already attached to the org\n');
      expect((await tagbox('attach', 'kit', '--workspace', 'acme')).stdout).toBe('attached plugin kit to workspace acme\n');
      expect((await tagbox('attach', 'kit', '--channel', '#eng')).stdout).toBe('attached plugin kit to channel eng\n');
      expect((await tagbox('list')).stdout).toContain(`\torg workspace:${ws.id} channel:${ch.id}\n`);
      expect((await tagbox('detach', 'kit', '--workspace', ws.id)).stdout).toBe('detached plugin kit from workspace acme\n');
      expect((await tagbox('detach', 'kit', '--workspace', ws.id)).stdout).toBe('no changes: plugin kit is not attached to workspace acme\n');

      const unknownChannel = await tagbox('attach', 'kit', '--channel', 'nope');
      expect([unknownChannel.code, unknownChannel.stderr]).toEqual([2, 'tagbox: --channel "nope": no such channel (give an id or a name)\n']);
      const unknownPlugin = await tagbox('attach', 'ghost', '--org');
      expect([unknownPlugin.code, unknownPlugin.stderr]).toEqual([2, 'tagbox: plugin "ghost" not found\n']);
      expect((await tagbox('attach', 'kit')).code).toBe(2);
      expect((await tagbox('attach', 'kit', '--org', '--workspace', 'acme')).code).toBe(2);

      expect((await tagbox('rm', 'kit')).stdout).toBe('removed plugin kit\n');
      const again = await tagbox('rm', 'kit');
      expect([again.code, again.stderr]).toEqual([2, 'tagbox: plugin "kit" not found\n']);
      expect(await new PluginAdmin(store, new AuditLog(store)).list(org.id)).toEqual([]);

      const events = [];
      for await (const e of new AuditLog(store).query({ type: 'admin-change' })) if (String(e.target).startsWith('plugin:')) events.push(e);
      expect(events.every((e) => String(e.actor).startsWith('cli:'))).toBe(true);
      expect(events.map((e) => `${e.action} ${e.target} ${(e.scope as string | undefined) ?? ''}`.trim())).toEqual([
        'add plugin:kit',
        'attach plugin:kit org',
        `attach plugin:kit workspace:${ws.id}`,
        `attach plugin:kit channel:${ch.id}`,
        `detach plugin:kit workspace:${ws.id}`,
        'remove plugin:kit',
      ]);
    } finally {
      await store.close();
    }
  });

  it('refuses bad input with exit 2 and a message naming the flag or the file; stores nothing', async () => {
    const good = dir(minimal());
    const cases: Array<[string[], string]> = [
      [['add', good, '--name', 'Bad_Name'], 'tagbox: --name "Bad_Name": expected ^[a-z0-9][a-z0-9-]{0,62}$'],
      [['add', good, '--name', '-x'], 'tagbox: --name "-x": expected'],
      [['add', join(good, 'missing'), '--name', 'p'], `tagbox: ${join(good, 'missing')}: no such directory`],
      [['add', dir({ ...minimal(), 'skills/hello/SKILL.md': 'no frontmatter' }), '--name', 'p'], '/skills/hello/SKILL.md: no frontmatter'],
      [['add', dir({ ...minimal(), '.mcp.json': '{' }), '--name', 'p'], '/.mcp.json: not valid JSON'],
      [['add', dir({ '.claude-plugin/plugin.json': '{"name":"p"}' }), '--name', 'p'], ': the plugin has no components'],
    ];
    for (const [args, message] of cases) {
      const r = await tagbox(...args);
      expect([r.code, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toContain(message);
    }
    const linked = dir(minimal());
    symlinkSync('/etc/shadow', join(linked, 'skills/hello/shadow'));
    const r = await tagbox('add', linked, '--name', 'p');
    expect([r.code, r.stderr]).toEqual([2, `tagbox: ${linked}/skills/hello/shadow: a symlink; plugins are plain files and directories only\n`]);
    expect((await tagbox('add', good)).code).toBe(2);
    expect((await tagbox('list')).stdout).toBe('');
  });
});
