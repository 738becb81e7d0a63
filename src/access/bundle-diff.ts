import type { BundleSpec } from './model.js';

/** One line of `tagbox bundle apply`'s plan. */
export type BundleChange =
  | { op: 'create'; name: string; spec: BundleSpec }
  | { op: 'update'; name: string; spec: BundleSpec; fields: string[] }
  | { op: 'delete'; name: string };

/**
 * What applying `wanted` to `current` changes: pure, so the dry run and the
 * real run print the same plan. Both sides must be canonical specs (validated
 * and normalised), or equal bundles would differ in spelling. With prune,
 * bundles missing from `wanted` are deleted.
 */
export function planBundles(current: BundleSpec[], wanted: BundleSpec[], prune: boolean): BundleChange[] {
  const byName = new Map(current.map((b) => [b.name, b]));
  const changes: BundleChange[] = [];
  for (const spec of wanted) {
    const have = byName.get(spec.name);
    if (!have) {
      changes.push({ op: 'create', name: spec.name, spec });
      continue;
    }
    const fields = (['domains', 'connections'] as const).filter((f) => canonical(sorted(have[f])) !== canonical(sorted(spec[f])));
    if (fields.length) changes.push({ op: 'update', name: spec.name, spec, fields });
  }
  if (prune) {
    const names = new Set(wanted.map((b) => b.name));
    for (const b of current) if (!names.has(b.name)) changes.push({ op: 'delete', name: b.name });
  }
  return changes;
}

export function describeChange(change: BundleChange): string {
  if (change.op === 'create') return `+ bundle ${change.name}`;
  if (change.op === 'delete') return `- bundle ${change.name}`;
  return `~ bundle ${change.name} (${change.fields.join(', ')})`;
}

/** The store keeps domains by host and connections by name; the order in a file carries no meaning. */
function sorted(list: ReadonlyArray<{ host: string } | { name: string }>): unknown[] {
  const key = (e: { host: string } | { name: string }) => ('name' in e ? e.name : `${e.host}\u0000${JSON.stringify((e as { ports?: number[] }).ports ?? [])}`);
  return [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** JSON with object keys sorted, so key order never counts as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}
