/** The one impure corner of src/policy: read a bundle file, then parse it purely. */
import { readFileSync } from 'node:fs';
import { describeError, invalidInput } from '../errors.js';
import { parseBundleFile } from './bundle-file.js';
import type { BundleFile } from './bundle-schema.js';

export function loadBundleFile(path: string): BundleFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidInput(`${path}: cannot read bundle file: ${describeError(error)}`, 'invalid_bundles');
  }
  return parseBundleFile(text, path);
}
