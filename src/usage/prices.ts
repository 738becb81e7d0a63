import type { UsageCounts } from './usage-tap.js';

/**
 * What model use costs (tagbox.yaml `usage.prices`): USD per million tokens,
 * per model. A model is priced by its own entry, else by the longest entry
 * that is a prefix of its name at a `-` (so `claude-sonnet-4` prices
 * `claude-sonnet-4-5-20250929`), else by `default`. Entries in tagbox.yaml add
 * to these defaults or replace them by name. Pure.
 *
 * USD per million tokens is micro-USD per token, so a cost in micro-USD is
 * the sum of tokens times prices, rounded once at the end.
 */
export interface ModelPrice {
  input: number;
  output: number;
  /** Prompt tokens read from the cache. */
  cacheRead: number;
  /** Prompt tokens written to the cache (the 5-minute cache's rate). */
  cacheWrite: number;
}

export type PriceTable = Record<string, ModelPrice>;

/**
 * Anthropic's list prices for the Claude 4 models: Opus 4.5 and later $5/$25,
 * Opus 4 and 4.1 $15/$75, every Sonnet 4.x $3/$15, Haiku 4.5 and later $1/$5;
 * cache reads at 0.1x input, 5-minute cache writes at 1.25x. Unknown models
 * are priced like the dearest, so that a cost budget errs on the side of stopping.
 */
export const DEFAULT_PRICES: PriceTable = {
  'claude-opus-4': { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 },
  'claude-opus-4-0': { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  'claude-opus-4-20250514': { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  'claude-opus-4-1': { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
  'claude-sonnet-4': { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
  'claude-haiku-4': { input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 },
  default: { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 },
};

/** The defaults with tagbox.yaml's entries over them. */
export function priceTable(overrides: PriceTable = {}): PriceTable {
  return { ...DEFAULT_PRICES, ...overrides };
}

/** The entry that prices `model` (its name in the table, for the record) and its price. */
export function priceFor(table: PriceTable, model: string | undefined): { entry: string; price: ModelPrice } {
  if (model !== undefined) {
    if (Object.hasOwn(table, model)) return { entry: model, price: table[model]! };
    let best: string | undefined;
    for (const name of Object.keys(table)) {
      if (name === 'default' || !model.startsWith(`${name}-`)) continue;
      if (best === undefined || name.length > best.length) best = name;
    }
    if (best !== undefined) return { entry: best, price: table[best]! };
  }
  return { entry: 'default', price: table.default ?? DEFAULT_PRICES.default! };
}

/** The cost of these counts, in integer micro-USD. */
export function costMicroUsd(counts: UsageCounts, price: ModelPrice): number {
  const micro = counts.inputTokens * price.input + counts.outputTokens * price.output + counts.cacheReadTokens * price.cacheRead + counts.cacheCreationTokens * price.cacheWrite;
  return Math.round(micro);
}
