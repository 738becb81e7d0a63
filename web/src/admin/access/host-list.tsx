import { useLayoutEffect, useRef } from 'preact/hooks';
import { Button } from '../../ui/parts';
import { emptyHost, type HostRow } from './bundle-draft';
import { Input } from './inputs';

/**
 * An editable list of host patterns with optional ports (a bundle's domains,
 * a connection's allowed websites). Row i's fields are `${path}[i]` and
 * `${path}[i].ports` for the server's errors.
 */
export function HostList(props: { legend: string; item: string; path: string; rows: HostRow[]; onChange: (rows: HostRow[]) => void; errorOf: (field: string) => string | undefined; hint?: string; placeholder?: string }) {
  const { rows, onChange } = props;
  const set = (i: number, row: Partial<HostRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...row } : r)));
  const listError = props.errorOf(props.path);
  // A row added from the keyboard: go on typing in it.
  const box = useRef<HTMLFieldSetElement>(null);
  const count = useRef(rows.length);
  useLayoutEffect(() => {
    if (rows.length > count.current) box.current?.querySelectorAll<HTMLInputElement>('.host-input')[rows.length - 1]?.focus();
    count.current = rows.length;
  }, [rows.length]);
  return (
    <fieldset class="host-list" ref={box}>
      <legend>{props.legend}</legend>
      {props.hint && <p class="hint">{props.hint}</p>}
      {listError && (
        <p class="field-error" role="alert">
          {listError}
        </p>
      )}
      {rows.length === 0 && <p class="empty">None yet.</p>}
      {rows.map((row, i) => (
        <div class="host-row" key={i}>
          <Input class="host-input" label={`${props.item} ${i + 1}`} value={row.host} placeholder={props.placeholder ?? 'api.example.com or *.example.com'} onValue={(host) => set(i, { host })} error={props.errorOf(`${props.path}[${i}]`)} />
          <Input class="ports-input" label={`${props.item} ${i + 1} ports`} visibleLabel="Ports" value={row.ports} placeholder="443, 80" inputMode="numeric" onValue={(ports) => set(i, { ports })} error={props.errorOf(`${props.path}[${i}].ports`)} />
          <Button aria-label={`Remove ${props.item.toLowerCase()} ${i + 1}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
            Remove
          </Button>
        </div>
      ))}
      <Button onClick={() => onChange([...rows, emptyHost()])}>Add {props.item.toLowerCase()}</Button>
    </fieldset>
  );
}
