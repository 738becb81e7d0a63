import { navigate } from '../../router';

/** The page's query string as an object (filters live there, so a filtered view is a link to share). */
export function readQuery(keys: readonly string[]): Record<string, string> {
  const q = new URLSearchParams(location.search);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = q.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/** Replaces the query string (one history entry per applied filter, so Back undoes it). */
export function writeQuery(values: Record<string, string | undefined>): void {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v) q.set(k, v);
  const s = q.toString();
  navigate(`${location.pathname}${s ? `?${s}` : ''}`);
}
