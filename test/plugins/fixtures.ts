import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { PluginFile } from '../../src/plugins/plugin-tree.js';

/** A small, valid plugin: two skills, a command, an agent, a hook event and an MCP server. */
export const SAMPLE: Record<string, string> = {
  '.claude-plugin/plugin.json': JSON.stringify({ name: 'review-kit', version: '1.2.0', description: 'Code review helpers', author: { name: 'Ada' } }),
  'skills/review/SKILL.md': '---\nname: review\ndescription: Review a diff for bugs\n---\nRead the diff; list bugs.\n',
  'skills/review/checklist.md': '- tests\n- names\n',
  'skills/triage/SKILL.md': '---\nname: triage\ndescription: "Triage an issue: label it"\n---\nLabel it.\n',
  'commands/ship.md': '---\ndescription: Ship the branch\n---\nRun the release.\n',
  'agents/security.md': '---\nname: security\ndescription: Looks for security bugs\n---\nYou review for security.\n',
  'hooks/hooks.json': JSON.stringify({ hooks: { PostToolUse: [{ matcher: 'Edit', hooks: [{ type: 'command', command: '${CLAUDE_PLUGIN_ROOT}/scripts/fmt.sh' }] }] } }),
  'scripts/fmt.sh': '#!/bin/sh\nexit 0\n',
  '.mcp.json': JSON.stringify({ mcpServers: { lint: { command: '${CLAUDE_PLUGIN_ROOT}/scripts/fmt.sh', args: [] } } }),
};

/** The smallest valid plugin: a manifest and one skill. */
export function minimal(name = 'mini', extra: Record<string, string> = {}): Record<string, string> {
  return {
    '.claude-plugin/plugin.json': JSON.stringify({ name }),
    'skills/hello/SKILL.md': '---\nname: hello\ndescription: Say hello\n---\nSay hello.\n',
    ...extra,
  };
}

export function filesOf(tree: Record<string, string | Buffer>, executable: string[] = ['scripts/fmt.sh']): PluginFile[] {
  return Object.entries(tree).map(([path, data]) => ({ path, mode: executable.includes(path) ? 0o755 : 0o644, data: Buffer.isBuffer(data) ? data : Buffer.from(data) }));
}

/** Writes a tree into a fresh directory (or `root`) and returns the directory. */
export function writeTree(tree: Record<string, string | Buffer>, root = mkdtempSync(join(tmpdir(), 'tagbox-plugin-')), executable: string[] = ['scripts/fmt.sh']): string {
  for (const [path, data] of Object.entries(tree)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), data);
    chmodSync(join(root, path), executable.includes(path) ? 0o755 : 0o644);
  }
  return root;
}
