/**
 * The Claude Code plugin layout, checked on a file tree (pure):
 *   .claude-plugin/plugin.json   required: `name` (kebab-case), optional version,
 *                                description, author, ..., component path overrides
 *   skills/<skill>/SKILL.md      frontmatter with `name` and `description`
 *   commands/**.md               frontmatter optional
 *   agents/**.md                 frontmatter with `name` and `description`
 *   hooks/hooks.json             {"hooks": {"<Event>": [...]}}
 *   .mcp.json                    {"mcpServers": {"<server>": {...}}}
 * and at least one component. Every refusal is exit 2 and names the file.
 * Override paths (`"skills": "./more-skills/"`) must start with `./` and name
 * something inside the plugin, as Claude Code requires.
 */
import { z } from 'zod';
import { invalidInput } from '../errors.js';
import { parseFrontmatter } from './frontmatter.js';
import { pathProblem, plainLabel, shownPath, type PathLabel, type PluginFile } from './plugin-tree.js';

export const MANIFEST_PATH = '.claude-plugin/plugin.json';
const MCP_PATH = '.mcp.json';
const HOOKS_PATH = 'hooks/hooks.json';

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const componentPath = z.string().startsWith('./', 'expected a path inside the plugin, starting with "./"');
const componentPaths = z.union([componentPath, z.array(componentPath).max(100)]);
const configObject = z.record(z.string(), z.unknown());

/** plugin.json: the fields Tagbox reads; others are kept as they are (Claude Code ignores unknown ones). */
export const pluginJsonSchema = z.looseObject({
  name: z.string().max(64).regex(KEBAB, 'expected a kebab-case name (lower-case letters and digits, words joined by "-")'),
  version: z.string().max(100).optional(),
  description: z.string().max(4000).optional(),
  author: z.union([z.string().max(200), z.looseObject({ name: z.string().max(200), email: z.string().max(200).optional(), url: z.string().max(2000).optional() })]).optional(),
  homepage: z.string().max(2000).optional(),
  repository: z.string().max(2000).optional(),
  license: z.string().max(200).optional(),
  keywords: z.array(z.string().max(100)).max(100).optional(),
  commands: componentPaths.optional(),
  agents: componentPaths.optional(),
  skills: componentPaths.optional(),
  outputStyles: componentPaths.optional(),
  hooks: z.union([componentPaths, configObject]).optional(),
  mcpServers: z.union([componentPaths, configObject]).optional(),
  lspServers: z.union([componentPaths, configObject]).optional(),
});

export type PluginJson = z.infer<typeof pluginJsonSchema>;

export interface PluginCounts {
  skills: number;
  commands: number;
  agents: number;
  /** Hook events configured (PreToolUse, PostToolUse, ...). */
  hooks: number;
  mcpServers: number;
}

/** What is stored with a plugin: its parsed plugin.json and what it offers. */
export interface PluginManifest {
  plugin: PluginJson;
  counts: PluginCounts;
  files: number;
  bytes: number;
}

const COMPONENTS = 'skills/<skill>/SKILL.md, commands/<command>.md, agents/<agent>.md, hooks/hooks.json or .mcp.json';

/** `root` names the plugin as a whole in messages (its directory, or `body.files`). */
export function checkLayout(files: readonly PluginFile[], label: PathLabel = plainLabel, root = 'plugin'): PluginManifest {
  const tree = new Tree(files, label);
  if (!tree.file(MANIFEST_PATH)) throw invalidInput(`${label(MANIFEST_PATH)}: missing; every plugin needs its manifest there`, 'invalid_plugin');
  const parsed = pluginJsonSchema.safeParse(tree.jsonObject(MANIFEST_PATH));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.length ? `${issue.path.map(String).join('.')}: ` : '';
    throw invalidInput(`${label(MANIFEST_PATH)}: ${at}${issue.message}`, 'invalid_plugin');
  }
  const plugin = parsed.data;
  const field = (name: string) => `${label(MANIFEST_PATH)}: ${name}`;
  const overrides = (value: unknown, name: string): string[] => {
    if (value === undefined || (typeof value === 'object' && !Array.isArray(value))) return [];
    return (Array.isArray(value) ? value : [value]).map((p: string, i) => tree.resolve(p, Array.isArray(value) ? `${field(name)}[${i}]` : field(name)));
  };

  const skills = new Set<string>();
  const skillRoots = [...(tree.isDir('skills') ? ['skills'] : []), ...overrides(plugin.skills, 'skills')];
  for (const root of skillRoots) for (const skill of tree.skillsUnder(root)) skills.add(skill);
  if (skillRoots.length === 0 && tree.file('SKILL.md')) skills.add('SKILL.md');
  for (const skill of skills) tree.markdown(skill, ['name', 'description']);

  const commands = tree.markdownUnder([...(tree.isDir('commands') ? ['commands'] : []), ...overrides(plugin.commands, 'commands')], field('commands'));
  for (const command of commands) tree.markdown(command, [], ['description']);
  const agents = tree.markdownUnder([...(tree.isDir('agents') ? ['agents'] : []), ...overrides(plugin.agents, 'agents')], field('agents'));
  for (const agent of agents) tree.markdown(agent, ['name', 'description']);
  overrides(plugin.outputStyles, 'outputStyles');
  overrides(plugin.lspServers, 'lspServers');

  const hookEvents = new Set<string>();
  const addHooks = (config: unknown, where: string) => {
    const hooks = (config as { hooks?: unknown }).hooks;
    if (hooks === undefined || hooks === null || typeof hooks !== 'object' || Array.isArray(hooks)) {
      throw invalidInput(`${where}: expected {"hooks": {"<event>": [...]}}`, 'invalid_plugin');
    }
    for (const [event, entries] of Object.entries(hooks)) {
      if (!Array.isArray(entries)) throw invalidInput(`${where}: hooks.${event}: expected a list of hook entries`, 'invalid_plugin');
      hookEvents.add(event);
    }
  };
  if (tree.file(HOOKS_PATH)) addHooks(tree.jsonObject(HOOKS_PATH), label(HOOKS_PATH));
  if (isConfigObject(plugin.hooks)) addHooks('hooks' in plugin.hooks ? plugin.hooks : { hooks: plugin.hooks }, field('hooks'));
  for (const path of overrides(plugin.hooks, 'hooks')) addHooks(tree.jsonObject(tree.fileAt(path, field('hooks'))), label(path));

  const servers = new Set<string>();
  const addServers = (map: unknown, where: string) => {
    if (map === undefined || map === null || typeof map !== 'object' || Array.isArray(map)) throw invalidInput(`${where}: expected {"mcpServers": {"<server>": {...}}}`, 'invalid_plugin');
    for (const [name, server] of Object.entries(map)) {
      if (server === null || typeof server !== 'object' || Array.isArray(server)) throw invalidInput(`${where}: mcpServers.${name}: expected an object (command, args, env, or url)`, 'invalid_plugin');
      servers.add(name);
    }
  };
  if (tree.file(MCP_PATH)) addServers((tree.jsonObject(MCP_PATH) as { mcpServers?: unknown }).mcpServers, label(MCP_PATH));
  if (isConfigObject(plugin.mcpServers)) addServers('mcpServers' in plugin.mcpServers ? plugin.mcpServers.mcpServers : plugin.mcpServers, field('mcpServers'));
  for (const path of overrides(plugin.mcpServers, 'mcpServers')) {
    addServers((tree.jsonObject(tree.fileAt(path, field('mcpServers'))) as { mcpServers?: unknown }).mcpServers, label(path));
  }

  const counts: PluginCounts = { skills: skills.size, commands: commands.length, agents: agents.length, hooks: hookEvents.size, mcpServers: servers.size };
  if (Object.values(counts).every((n) => n === 0)) throw invalidInput(`${root}: the plugin has no components; expected at least one of ${COMPONENTS}`, 'invalid_plugin');
  return { plugin, counts, files: files.length, bytes: files.reduce((n, f) => n + f.data.length, 0) };
}

function isConfigObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Lookups over a checked file tree; every error names the file. */
class Tree {
  private readonly byPath = new Map<string, PluginFile>();

  constructor(
    files: readonly PluginFile[],
    private readonly label: PathLabel,
  ) {
    for (const f of files) this.byPath.set(f.path, f);
  }

  file(path: string): PluginFile | undefined {
    return this.byPath.get(path);
  }

  isDir(path: string): boolean {
    return this.under(path).length > 0;
  }

  /** Paths of the files below a directory, sorted. */
  under(dir: string): string[] {
    const prefix = `${dir}/`;
    return [...this.byPath.keys()].filter((p) => p.startsWith(prefix)).sort();
  }

  /** A `./` override path to a tree path (a file or a directory), or an error naming the manifest field. */
  resolve(value: string, where: string): string {
    const path = value.slice(2).replace(/\/+$/, '');
    const problem = pathProblem(path);
    if (problem) throw invalidInput(`${where}: ${JSON.stringify(value)}: ${problem}`, 'invalid_plugin');
    if (!this.byPath.has(path) && !this.isDir(path)) throw invalidInput(`${where}: ${JSON.stringify(value)} is not in the plugin`, 'invalid_plugin');
    return path;
  }

  fileAt(path: string, where: string): string {
    if (!this.byPath.has(path)) throw invalidInput(`${where}: ${shownPath(path)}: expected a file, found a directory`, 'invalid_plugin');
    return path;
  }

  text(path: string): string {
    try {
      return UTF8.decode(this.byPath.get(path)!.data);
    } catch {
      throw invalidInput(`${this.label(path)}: not UTF-8 text`, 'invalid_plugin');
    }
  }

  json(path: string): unknown {
    try {
      return JSON.parse(this.text(path));
    } catch (error) {
      if (error instanceof SyntaxError) throw invalidInput(`${this.label(path)}: not valid JSON (${error.message})`, 'invalid_plugin');
      throw error;
    }
  }

  jsonObject(path: string): Record<string, unknown> {
    const value = this.json(path);
    if (!isConfigObject(value)) throw invalidInput(`${this.label(path)}: expected a JSON object`, 'invalid_plugin');
    return value;
  }

  /** The SKILL.md files of a skills root: `<root>/SKILL.md` itself, or one per `<root>/<skill>/`. */
  skillsUnder(root: string): string[] {
    if (this.byPath.has(root)) {
      if (root === 'SKILL.md' || root.endsWith('/SKILL.md')) return [root];
      throw invalidInput(`${this.label(root)}: a skill is a directory with a SKILL.md (or that file itself)`, 'invalid_plugin');
    }
    if (this.byPath.has(`${root}/SKILL.md`)) return [`${root}/SKILL.md`];
    const dirs = new Set(this.under(root).map((p) => p.slice(root.length + 1).split('/')).filter((s) => s.length > 1).map((s) => s[0]!));
    return [...dirs].sort().map((dir) => {
      const skill = `${root}/${dir}/SKILL.md`;
      if (!this.byPath.has(skill)) throw invalidInput(`${this.label(`${root}/${dir}`)}: a skill directory without SKILL.md (expected ${shownPath(skill)})`, 'invalid_plugin');
      return skill;
    });
  }

  /** The .md files of each root (a directory, searched whole, or one file). */
  markdownUnder(roots: string[], where: string): string[] {
    const out = new Set<string>();
    for (const root of roots) {
      if (this.byPath.has(root)) {
        if (!root.endsWith('.md')) throw invalidInput(`${where}: ${shownPath(root)}: expected a Markdown (.md) file or a directory of them`, 'invalid_plugin');
        out.add(root);
      } else {
        for (const p of this.under(root)) if (p.endsWith('.md')) out.add(p);
      }
    }
    return [...out].sort();
  }

  /** A Markdown component: its frontmatter parses, and the given fields are non-empty text. */
  markdown(path: string, required: string[], optional: string[] = []): void {
    const parsed = parseFrontmatter(this.text(path));
    if (!parsed.ok) throw invalidInput(`${this.label(path)}: ${parsed.error}`, 'invalid_plugin');
    const fields = parsed.value;
    if (!fields && required.length) throw invalidInput(`${this.label(path)}: no frontmatter; expected a first block "---" with ${required.join(' and ')}, closed by "---"`, 'invalid_plugin');
    for (const name of required) {
      const value = fields?.[name];
      if (typeof value !== 'string' || value.trim() === '') throw invalidInput(`${this.label(path)}: frontmatter: ${name}: expected non-empty text`, 'invalid_plugin');
    }
    for (const name of optional) {
      const value = fields?.[name];
      if (value !== undefined && typeof value !== 'string') throw invalidInput(`${this.label(path)}: frontmatter: ${name}: expected text`, 'invalid_plugin');
    }
  }
}
