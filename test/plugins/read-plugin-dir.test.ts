import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePlugin } from '../../src/plugins/plugin-blob.js';
import { readPluginDir } from '../../src/plugins/read-plugin-dir.js';
import { minimal, SAMPLE, writeTree } from './fixtures.js';

const dirs: string[] = [];
const fresh = (tree: Record<string, string> = minimal()) => {
  const dir = writeTree(tree);
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const refusal = async (dir: string): Promise<string> => {
  try {
    await readPluginDir(dir);
  } catch (error) {
    expect((error as { exitCode?: number }).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('reading a plugin directory', () => {
  it('reads every plain file with its bytes and executable bit, skipping .git', async () => {
    const dir = fresh(SAMPLE);
    mkdirSync(join(dir, '.git/objects'), { recursive: true });
    writeFileSync(join(dir, '.git/config'), '[remote "origin"]\nurl = https://token@github.com/x\n');
    const files = await readPluginDir(dir);
    expect(files.map((f) => f.path).sort()).toEqual(Object.keys(SAMPLE).sort());
    expect(files.find((f) => f.path === 'scripts/fmt.sh')!.mode).toBe(0o755);
    expect(files.find((f) => f.path === '.mcp.json')!.mode).toBe(0o644);
    expect(files.find((f) => f.path === 'commands/ship.md')!.data.toString()).toBe(SAMPLE['commands/ship.md']);
  });

  it('gives the same digest for the same tree whatever the mtimes, other mode bits and creation order', async () => {
    const a = fresh(SAMPLE);
    const reversed = Object.fromEntries(Object.entries(SAMPLE).reverse());
    const b = fresh(reversed);
    for (const [i, path] of Object.keys(SAMPLE).entries()) utimesSync(join(b, path), 1_000_000 + i, 2_000_000 + i * 7);
    chmodSync(join(b, 'scripts/fmt.sh'), 0o700);
    chmodSync(join(b, 'commands/ship.md'), 0o600);
    chmodSync(join(b, 'skills'), 0o700);
    const [da, db] = [encodePlugin(await readPluginDir(a)).digest, encodePlugin(await readPluginDir(b)).digest];
    expect(db).toBe(da);
    chmodSync(join(b, 'commands/ship.md'), 0o744);
    expect(encodePlugin(await readPluginDir(b)).digest).not.toBe(da);
  });

  it('refuses a symlink anywhere, naming it', async () => {
    const dir = fresh();
    symlinkSync('/etc/passwd', join(dir, 'skills/hello/passwd'));
    expect(await refusal(dir)).toBe(`${dir}/skills/hello/passwd: a symlink; plugins are plain files and directories only`);
    const dir2 = fresh();
    symlinkSync('/etc', join(dir2, 'etc'));
    expect(await refusal(dir2)).toBe(`${dir2}/etc: a symlink; plugins are plain files and directories only`);
    const dir3 = fresh();
    symlinkSync('nowhere', join(dir3, 'dangling'));
    expect(await refusal(dir3)).toContain('dangling: a symlink');
  });

  it('refuses a plugin directory that is itself a symlink, or not a directory, or missing', async () => {
    const dir = fresh();
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    dirs.push(link);
    expect(await refusal(link)).toBe(`${link}: a symlink; give the plugin directory itself`);
    expect(await refusal(join(dir, '.claude-plugin/plugin.json'))).toBe(`${join(dir, '.claude-plugin/plugin.json')}: not a directory`);
    expect(await refusal(join(dir, 'nope'))).toBe(`${join(dir, 'nope')}: no such directory`);
  });

  it('refuses FIFOs, sockets and devices', async () => {
    const fifo = fresh();
    execFileSync('mkfifo', [join(fifo, 'pipe')]);
    expect(await refusal(fifo)).toBe(`${fifo}/pipe: a FIFO; plugins are plain files and directories only`);

    const sock = mkdtempSync(join(tmpdir(), 'tp-')); // short: socket paths are limited to ~108 bytes
    dirs.push(sock);
    writeTree(minimal(), sock);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(sock, 's'), resolve));
    try {
      expect(await refusal(sock)).toBe(`${sock}/s: a socket; plugins are plain files and directories only`);
    } finally {
      server.close();
    }

    if (process.getuid?.() === 0) {
      const dev = fresh();
      execFileSync('mknod', [join(dev, 'null'), 'c', '1', '3']);
      expect(await refusal(dev)).toBe(`${dev}/null: a character device; plugins are plain files and directories only`);
    }
  });

  it('refuses setuid and setgid bits', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool'), 0o4755);
    expect(await refusal(dir)).toBe(`${dir}/tool: has the setuid or setgid bit; plugins are plain files (chmod u-s,g-s)`);
    chmodSync(join(dir, 'tool'), 0o2755);
    expect(await refusal(dir)).toContain('tool: has the setuid or setgid bit');
    chmodSync(join(dir, 'tool'), 0o755);
    chmodSync(join(dir, 'skills'), 0o2755);
    expect(await refusal(dir)).toContain('skills: has the setuid or setgid bit');
  });

  it('refuses names that are not UTF-8 or hold control characters', async () => {
    const dir = fresh();
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/skills/bad-`), Buffer.from([0xff, 0x1b]), Buffer.from('.md')]), 'x');
    expect(await refusal(dir)).toBe(`${dir}/skills: has a file name that is not UTF-8 ("bad-\\xff\\x1b.md")`);
    const dir2 = fresh();
    writeFileSync(join(dir2, 'a\u001b[31mb'), 'x');
    expect(await refusal(dir2)).toBe(`${dir2}/"a\\u001b[31mb": the path contains a control character`);
  });

  it('refuses more than 2000 files and more than 20 MiB in total', async () => {
    const dir = fresh();
    mkdirSync(join(dir, 'many'));
    for (let i = 0; i < 1999; i++) writeFileSync(join(dir, 'many', `f${i}`), '');
    expect(await refusal(dir)).toBe(`${dir}: more than 2000 files; a plugin has at most 2000`);
    rmSync(join(dir, 'many', 'f0'));
    expect(await readPluginDir(dir)).toHaveLength(2000);

    const big = fresh();
    writeFileSync(join(big, 'a.bin'), Buffer.alloc(10 * 1024 * 1024));
    writeFileSync(join(big, 'b.bin'), Buffer.alloc(10 * 1024 * 1024));
    expect(await refusal(big)).toBe(`${big}: more than 20 MiB in total (at b.bin)`);
  });
});
