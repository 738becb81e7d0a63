import { useState } from 'preact/hooks';
import { del, put, seg } from '../../api';
import { useAction, useGet } from '../../ui/hooks';
import { Button, Empty, ErrorNote, Select, TextInput } from '../../ui/parts';
import type { BudgetStatus } from './types';

/** A budget's amount as people read it: tokens, or micro-USD shown as dollars. */
export const amount = (unit: string, value: number) => (unit === 'cost' ? `$${(value / 1e6).toFixed(2)}` : `${value.toLocaleString()} tokens`);

/** The budgets that hold this channel's work (its own, and the org's), spent vs limit; set or remove its own. */
export function ChannelBudgets({ channelId }: { channelId: string }) {
  const status = useGet<BudgetStatus[]>(`budgets/status?channel=${seg(channelId)}`);
  const [period, setPeriod] = useState('day');
  const [unit, setUnit] = useState('tokens');
  const [limit, setLimit] = useState('');
  const save = useAction(async () => {
    // A cost budget is typed in dollars, stored in micro-USD.
    const n = unit === 'cost' ? Math.round(Number(limit) * 1e6) : Number(limit);
    await put('budgets', { scope: { kind: 'channel', id: channelId }, period, unit, limit: n });
    setLimit('');
    status.reload();
  });
  const remove = useAction(async (id: string) => {
    await del(`budgets/${seg(id)}`);
    status.reload();
  });
  const err = save.error;
  return (
    <section class="card" aria-labelledby="budgets-title">
      <h2 id="budgets-title">Model budgets</h2>
      <p class="hint">The proxy blocks model requests over budget. Periods are UTC days and months.</p>
      <ErrorNote error={status.error ?? remove.error} />
      {status.data && status.data.length === 0 && <Empty>No budget holds this channel.</Empty>}
      <ul class="plain-list">
        {(status.data ?? []).map((b) => {
          const pct = b.limit === 0 ? 100 : Math.min(100, Math.round((b.spent / b.limit) * 100));
          return (
            <li key={b.id} class="budget">
              <div class="row">
                <strong>
                  {b.scope.kind === 'org' ? 'Org' : 'This channel'}, per {b.period}
                </strong>
                <span>
                  {amount(b.unit, b.spent)} of {amount(b.unit, b.limit)} spent{b.isSpent ? ' — spent, model requests are blocked' : ''}
                </span>
                {b.scope.kind === 'channel' && (
                  <Button kind="danger" onClick={() => void remove.run(b.id)} aria-label={`Remove the ${b.period} ${b.unit} budget`}>
                    Remove
                  </Button>
                )}
              </div>
              <meter class="budget-meter" min={0} max={100} value={pct} high={80} optimum={0} aria-label={`${pct}% of the ${b.period} budget spent`} />
            </li>
          );
        })}
      </ul>
      <form
        class="budget-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <h3>Set a budget for this channel</h3>
        <div class="form-grid">
          <Select label="Period" value={period} onChange={setPeriod} options={[{ value: 'day', label: 'Per day' }, { value: 'month', label: 'Per month' }]} error={err?.field === 'period' ? err.message : undefined} />
          <Select label="Unit" value={unit} onChange={setUnit} options={[{ value: 'tokens', label: 'Tokens' }, { value: 'cost', label: 'Cost (USD)' }]} error={err?.field === 'unit' ? err.message : undefined} />
          <TextInput label={unit === 'cost' ? 'Limit (USD)' : 'Limit (tokens)'} type="number" value={limit} onInput={setLimit} error={err?.field === 'limit' ? err.message : undefined} hint="0 stops all model use here." />
        </div>
        {err && !['period', 'unit', 'limit'].includes(err.field ?? '') && <ErrorNote error={err} />}
        <Button type="submit" busy={save.busy} disabled={limit === ''}>
          Set budget
        </Button>
      </form>
    </section>
  );
}
