import { useEffect, useMemo, useState } from 'preact/hooks';
import { useAction, useTitle } from '../ui/hooks';
import { Empty, ErrorNote, Loading, Page, Select } from '../ui/parts';
import { UsageChart } from './org/usage-chart';
import { daysOf, loadUsage, type Usage } from './org/usage-data';
import './org/org.css';

const RANGES = [
  { value: '7', label: 'Last 7 days' },
  { value: '30', label: 'Last 30 days' },
  { value: '90', label: 'Last 90 days' },
];

/** Model usage per day, by channel (channel work) or member (DM work), with the range's totals. */
export function UsagePage(_props: { params: Record<string, string> }) {
  useTitle('Usage');
  const [by, setBy] = useState<'channel' | 'member'>('channel');
  const [range, setRange] = useState('30');
  const [usage, setUsage] = useState<Usage | undefined>();
  const { since, until } = useMemo(() => {
    const u = new Date();
    const s = new Date(Date.UTC(u.getUTCFullYear(), u.getUTCMonth(), u.getUTCDate() - Number(range) + 1));
    return { since: s, until: u };
  }, [range]);
  const load = useAction(loadUsage);
  useEffect(() => {
    setUsage(undefined);
    void load.run(by, since, until).then((u) => u && setUsage(u));
  }, [by, since]);
  const days = daysOf(since, until);
  const dated = usage?.rows.filter((r) => r.day) ?? [];
  return (
    <Page title="Usage" intro="Model tokens metered at the Agent Proxy. Channel work counts for the channel; DM work for the member.">
      <div class="row usage-controls">
        <div class="toggle" role="group" aria-label="Group by">
          {(['channel', 'member'] as const).map((b) => (
            <button key={b} type="button" class="btn" aria-pressed={by === b} onClick={() => setBy(b)}>
              By {b}
            </button>
          ))}
        </div>
        <Select label="Range" value={range} onChange={setRange} options={RANGES} />
      </div>
      <ErrorNote error={load.error} />
      {!usage ? (
        load.error ? null : <Loading what="usage" />
      ) : (
        <>
          <dl class="totals" aria-label="Totals for the range">
            <div>
              <dt>Input tokens</dt>
              <dd>{usage.totals.inputTokens.toLocaleString()}</dd>
            </div>
            <div>
              <dt>Output tokens</dt>
              <dd>{usage.totals.outputTokens.toLocaleString()}</dd>
            </div>
            <div>
              <dt>Requests</dt>
              <dd>{usage.totals.requests.toLocaleString()}</dd>
            </div>
            {usage.totals.costUsd !== null && usage.totals.costUsd > 0 && (
              <div>
                <dt>Cost</dt>
                <dd>${usage.totals.costUsd.toFixed(2)}</dd>
              </div>
            )}
          </dl>
          {usage.rows.length === 0 ? (
            <Empty>No model use in this range.</Empty>
          ) : (
            <>
              {dated.length > 0 && <UsageChart days={days} rows={dated} />}
              <div class="table-wrap">
                <table>
                  <caption>Tokens per day by {by}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Day</th>
                      <th scope="col">{by === 'channel' ? 'Channel' : 'Member'}</th>
                      <th scope="col">Input</th>
                      <th scope="col">Output</th>
                      <th scope="col">Requests</th>
                      <th scope="col">Cost</th>
                    </tr>
                  </thead>
                  <tbody>
                    {usage.rows.map((r) => (
                      <tr key={`${r.day}-${r.key}`}>
                        <td>{r.day ?? 'range'}</td>
                        <td>{r.label}</td>
                        <td>{r.inputTokens.toLocaleString()}</td>
                        <td>{r.outputTokens.toLocaleString()}</td>
                        <td>{r.requests.toLocaleString()}</td>
                        <td>{r.costUsd !== null ? `$${r.costUsd.toFixed(2)}` : '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </>
          )}
        </>
      )}
    </Page>
  );
}
