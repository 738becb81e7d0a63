import { describe, expect, it } from 'vitest';
import { parseFrontmatter } from '../../src/plugins/frontmatter.js';
import { checkLayout } from '../../src/plugins/plugin-layout.js';
import { filesOf, minimal, SAMPLE } from './fixtures.js';

const label = (p: string) => `DIR/${p}`;
const layout = (tree: Record<string, string | Buffer>) => checkLayout(filesOf(tree), label, 'DIR');
const refusal = (tree: Record<string, string | Buffer>): string => {
  try {
    layout(tree);
  } catch (error) {
    expect((error as { exitCode?: number }).exitCode).toBe(2);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};
const manifest = (m: unknown) => ({ '.claude-plugin/plugin.json': JSON.stringify(m) });
const skill = (fm: string) => `---\n${fm}\n---\nbody\n`;

describe('the Claude Code plugin layout', () => {
  it('counts skills, commands, agents, hook events and MCP servers, and keeps plugin.json', () => {
    const m = layout(SAMPLE);
    expect(m.counts).toEqual({ skills: 2, commands: 1, agents: 1, hooks: 1, mcpServers: 1 });
    expect(m.plugin).toEqual({ name: 'review-kit', version: '1.2.0', description: 'Code review helpers', author: { name: 'Ada' } });
    expect(m.files).toBe(Object.keys(SAMPLE).length);
    expect(m.bytes).toBe(Object.values(SAMPLE).reduce((n, s) => n + Buffer.byteLength(s), 0));
  });

  it('accepts any one component alone', () => {
    const only = (tree: Record<string, string>) => layout({ ...manifest({ name: 'p' }), ...tree }).counts;
    expect(only({ 'skills/a/SKILL.md': skill('name: a\ndescription: d') }).skills).toBe(1);
    expect(only({ 'commands/a.md': 'Just text, no frontmatter.\n' }).commands).toBe(1);
    expect(only({ 'commands/git/push.md': '---\ndescription: push\n---\n' }).commands).toBe(1);
    expect(only({ 'agents/a.md': skill('name: a\ndescription: d') }).agents).toBe(1);
    expect(only({ 'hooks/hooks.json': '{"hooks":{"Stop":[],"PreToolUse":[]}}' }).hooks).toBe(2);
    expect(only({ '.mcp.json': '{"mcpServers":{"a":{"command":"x"},"b":{"url":"https://x"}}}' }).mcpServers).toBe(2);
    expect(only({ 'SKILL.md': skill('name: root\ndescription: the plugin is one skill') }).skills).toBe(1);
  });

  it('follows component path overrides in plugin.json', () => {
    const m = layout({
      ...manifest({ name: 'p', skills: './extra/', commands: ['./cmds/one.md', './more-cmds'], agents: './team', mcpServers: './servers.json', hooks: { PostToolUse: [] } }),
      'extra/s1/SKILL.md': skill('name: s1\ndescription: d'),
      'cmds/one.md': 'one',
      'more-cmds/two.md': 'two',
      'more-cmds/notes.txt': 'not a command',
      'team/rev.md': skill('name: rev\ndescription: d'),
      'servers.json': '{"mcpServers":{"x":{"command":"y"}}}',
    });
    expect(m.counts).toEqual({ skills: 1, commands: 2, agents: 1, hooks: 1, mcpServers: 1 });
    expect(layout({ ...manifest({ name: 'p', mcpServers: { a: { command: 'x' } } }) }).counts.mcpServers).toBe(1);
  });

  it.each<[string, Record<string, string | Buffer>, string]>([
    ['no manifest', { 'skills/a/SKILL.md': skill('name: a\ndescription: d') }, 'DIR/.claude-plugin/plugin.json: missing; every plugin needs its manifest there'],
    ['unparseable plugin.json', { ...minimal('p'), '.claude-plugin/plugin.json': '{"name": "p",}' }, 'DIR/.claude-plugin/plugin.json: not valid JSON ('],
    ['plugin.json not UTF-8', { ...minimal('p'), '.claude-plugin/plugin.json': Buffer.from([0x7b, 0xff, 0x7d]) }, 'DIR/.claude-plugin/plugin.json: not UTF-8 text'],
    ['plugin.json a list', { ...minimal('p'), ...manifest(['p']) }, 'DIR/.claude-plugin/plugin.json: expected a JSON object'],
    ['no name', { ...minimal('p'), ...manifest({ version: '1' }) }, 'DIR/.claude-plugin/plugin.json: name: '],
    ['a name not kebab-case', { ...minimal('p'), ...manifest({ name: 'My Plugin' }) }, 'DIR/.claude-plugin/plugin.json: name: expected a kebab-case name'],
    ['a version that is not text', { ...minimal('p'), ...manifest({ name: 'p', version: 1 }) }, 'DIR/.claude-plugin/plugin.json: version: '],
    ['an override without ./', { ...minimal('p'), ...manifest({ name: 'p', commands: 'cmds/' }) }, 'DIR/.claude-plugin/plugin.json: commands: expected a path inside the plugin, starting with "./"'],
    ['an override leaving the plugin', { ...minimal('p'), ...manifest({ name: 'p', agents: ['./../../etc'] }) }, 'DIR/.claude-plugin/plugin.json: agents[0]: "./../../etc": the path has a ".." segment'],
    ['an override to nothing', { ...minimal('p'), ...manifest({ name: 'p', skills: './nope' }) }, 'DIR/.claude-plugin/plugin.json: skills: "./nope" is not in the plugin'],
    ['no components', { ...manifest({ name: 'p' }), 'README.md': 'hi' }, 'DIR: the plugin has no components; expected at least one of skills/<skill>/SKILL.md'],
    ['a skill without frontmatter', { ...minimal('p'), 'skills/b/SKILL.md': 'no frontmatter' }, 'DIR/skills/b/SKILL.md: no frontmatter; expected a first block "---" with name and description'],
    ['a skill without description', { ...minimal('p'), 'skills/b/SKILL.md': skill('name: b') }, 'DIR/skills/b/SKILL.md: frontmatter: description: expected non-empty text'],
    ['a skill with a name that is not text', { ...minimal('p'), 'skills/b/SKILL.md': skill('name: [b]\ndescription: d') }, 'DIR/skills/b/SKILL.md: frontmatter: name: expected non-empty text'],
    ['unparseable skill frontmatter', { ...minimal('p'), 'skills/b/SKILL.md': skill('name: b\ndescription: "open') }, 'DIR/skills/b/SKILL.md: frontmatter line '],
    ['unclosed frontmatter', { ...minimal('p'), 'skills/b/SKILL.md': '---\nname: b\n' }, 'DIR/skills/b/SKILL.md: frontmatter: no closing "---" line'],
    ['a skill directory without SKILL.md', { ...minimal('p'), 'skills/b/README.md': 'x' }, 'DIR/skills/b: a skill directory without SKILL.md (expected skills/b/SKILL.md)'],
    ['an agent without name', { ...minimal('p'), 'agents/x.md': skill('description: d') }, 'DIR/agents/x.md: frontmatter: name: expected non-empty text'],
    ['a command with bad frontmatter', { ...minimal('p'), 'commands/x.md': '---\n: : :\n---\n' }, 'DIR/commands/x.md: frontmatter line 2: invalid YAML'],
    ['a command with a non-text description', { ...minimal('p'), 'commands/x.md': '---\ndescription: [1]\n---\n' }, 'DIR/commands/x.md: frontmatter: description: expected text'],
    ['duplicate frontmatter keys', { ...minimal('p'), 'agents/x.md': skill('name: a\nname: b\ndescription: d') }, 'DIR/agents/x.md: frontmatter line '],
    ['unparseable .mcp.json', { ...minimal('p'), '.mcp.json': '{mcpServers: {}}' }, 'DIR/.mcp.json: not valid JSON ('],
    ['.mcp.json without mcpServers', { ...minimal('p'), '.mcp.json': '{"servers": {}}' }, 'DIR/.mcp.json: expected {"mcpServers": {"<server>": {...}}}'],
    ['an MCP server that is not an object', { ...minimal('p'), '.mcp.json': '{"mcpServers": {"a": "npx a"}}' }, 'DIR/.mcp.json: mcpServers.a: expected an object'],
    ['unparseable hooks.json', { ...minimal('p'), 'hooks/hooks.json': '[' }, 'DIR/hooks/hooks.json: not valid JSON ('],
    ['hooks.json without hooks', { ...minimal('p'), 'hooks/hooks.json': '{"PostToolUse": []}' }, 'DIR/hooks/hooks.json: expected {"hooks": {"<event>": [...]}}'],
    ['a hook event that is not a list', { ...minimal('p'), 'hooks/hooks.json': '{"hooks": {"Stop": {}}}' }, 'DIR/hooks/hooks.json: hooks.Stop: expected a list of hook entries'],
    ['a YAML alias bomb', { ...minimal('p'), 'agents/x.md': skill(`name: a\ndescription: d\n${bomb()}`) }, 'DIR/agents/x.md: frontmatter: invalid YAML'],
  ])('refuses %s, naming the file', (_what, tree, message) => {
    expect(refusal(tree)).toContain(message);
  });
});

describe('parseFrontmatter', () => {
  it.each([
    ['no frontmatter', 'text', undefined],
    ['empty', '---\n---\n', {}],
    ['CRLF', '---\r\nname: a\r\n---\r\nbody', { name: 'a' }],
    ['closed by ...', '---\nname: a\n...\nbody', { name: 'a' }],
    ['not at the start', '\n---\nname: a\n---\n', undefined],
  ])('%s', (_what, text, value) => {
    expect(parseFrontmatter(text)).toEqual({ ok: true, value });
  });

  it('refuses a list or a scalar', () => {
    expect(parseFrontmatter('---\n- a\n---\n')).toEqual({ ok: false, error: 'frontmatter: expected a mapping of fields (name: ..., description: ...)' });
    expect(parseFrontmatter('---\nhello\n---\n').ok).toBe(false);
  });
});

/** Nine levels of ten aliases each: a billion entries if expanded. */
function bomb(): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
  return lines.join('\n');
}
