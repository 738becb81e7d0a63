import { useEffect, useState } from 'preact/hooks';
import { workspacesWithChannels, type Channel, type Workspace } from '../places';

export interface ScopeTree {
  workspaces: Array<Workspace & { channels: Channel[] }>;
  /** A scope key's name for people: "the org", "workspace Web", "#general". */
  label: (key: string) => string;
  /** Every scope, widest first, for pickers. */
  options: Array<{ value: string; label: string }>;
}

/** The org's workspaces and their channels (the places a bundle or plugin can be attached). */
export function useScopeTree(tick = 0): { tree: ScopeTree | undefined; error: string | undefined } {
  const [tree, setTree] = useState<ScopeTree>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    (async () => {
      const full = await workspacesWithChannels();
      if (live) setTree(treeOf(full));
    })().catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => void (live = false);
  }, [tick]);
  return { tree, error };
}

function treeOf(workspaces: ScopeTree['workspaces']): ScopeTree {
  const names = new Map<string, string>([['org', 'the org']]);
  const options = [{ value: 'org', label: 'The whole org' }];
  for (const w of workspaces) {
    names.set(`workspace:${w.id}`, `workspace ${w.name}`);
    options.push({ value: `workspace:${w.id}`, label: `Workspace ${w.name}` });
    for (const c of w.channels) {
      names.set(`channel:${c.id}`, `#${c.name}`);
      options.push({ value: `channel:${c.id}`, label: `#${c.name} (${w.name})` });
    }
  }
  return { workspaces, options, label: (key) => names.get(key) ?? key };
}
