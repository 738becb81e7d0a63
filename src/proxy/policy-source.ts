import { invalidInput } from '../errors.js';
import type { Bundle } from '../policy/bundle-schema.js';
import { compilePolicy, type EgressPolicy } from '../policy/compile.js';
import { loadBundleFile } from '../policy/load-bundle-file.js';

/**
 * The policy for `--bundles FILE [--bundle NAME]...`: all bundles in the file,
 * or exactly those named. With no file, nothing is reachable.
 */
export function policyFromBundleFile(file: string | undefined, names: string[] = []): { policy: EgressPolicy; bundles: Bundle[] } {
  if (!file) {
    if (names.length) throw invalidInput('--bundle needs --bundles FILE');
    return { policy: compilePolicy([]), bundles: [] };
  }
  const chosen = chooseBundles(loadBundleFile(file).bundles, names, file);
  return { policy: compilePolicy(chosen), bundles: chosen };
}

/** All of a file's bundles, or exactly those named (an unknown name is an error naming the file and what it has). */
export function chooseBundles(all: Bundle[], names: string[], file: string): Bundle[] {
  if (!names.length) return all;
  const unknown = names.filter((n) => !all.some((b) => b.name === n));
  if (unknown.length) {
    throw invalidInput(`${file}: no bundle named ${unknown.map((n) => `"${n}"`).join(', ')} (it has ${all.map((b) => `"${b.name}"`).join(', ') || 'none'})`);
  }
  return all.filter((b) => names.includes(b.name));
}
