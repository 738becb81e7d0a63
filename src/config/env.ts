import { z } from 'zod';

/**
 * Maps TAGBOX_* environment variables onto config key paths by walking the
 * schema, so that every key is settable without a hand-kept list.
 */
export interface EnvBinding {
  variable: string;
  path: string[];
  parse: (raw: string) => unknown;
}

export function envNameFor(path: string[]): string {
  return 'TAGBOX_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

export function envBindings(schema: z.ZodType): EnvBinding[] {
  const out: EnvBinding[] = [];
  walk(schema, [], out);
  return out;
}

function walk(type: z.ZodType, path: string[], out: EnvBinding[]): void {
  const inner = unwrap(type);
  if (inner instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) walk(child, [...path, key], out);
    return;
  }
  out.push({ variable: envNameFor(path), path, parse: parserFor(inner) });
}

function unwrap(type: z.ZodType): z.ZodType {
  let current: z.ZodType = type;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

function parserFor(type: z.ZodType): (raw: string) => unknown {
  if (type instanceof z.ZodNumber) return (raw) => (raw.trim() === '' ? raw : Number(raw));
  if (type instanceof z.ZodBoolean) return (raw) => ({ true: true, '1': true, false: false, '0': false })[raw.toLowerCase()] ?? raw;
  if (type instanceof z.ZodArray) return (raw) => raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  // A map (usage.prices) is JSON; what does not parse is passed on for the schema to name.
  if (type instanceof z.ZodRecord) {
    return (raw) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        return raw;
      }
    };
  }
  return (raw) => raw;
}
