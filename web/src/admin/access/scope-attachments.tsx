import { useState } from 'preact/hooks';
import { useAction } from '../../ui/hooks';
import { Button, ErrorNote } from '../../ui/parts';

/**
 * What is attached at one scope, with Detach per item and Attach from the
 * rest: used for bundles (Scopes page) and plugins alike.
 */
export function ScopeAttachments(props: { scopeLabel: string; what: string; attached: string[]; available: string[]; onAttach: (name: string) => Promise<unknown>; onDetach: (name: string) => Promise<unknown> }) {
  const [pick, setPick] = useState('');
  const choices = props.available.filter((n) => !props.attached.includes(n));
  const attach = useAction(async (name: string) => {
    await props.onAttach(name);
    setPick('');
  });
  const detach = useAction(props.onDetach);
  const selectId = `attach-${props.scopeLabel.replace(/[^a-z0-9]+/gi, '-')}-${props.what}`;
  return (
    <div class="attachments">
      {props.attached.length === 0 ? (
        <p class="muted">No {props.what}s attached.</p>
      ) : (
        <ul class="chips" aria-label={`${props.what}s attached to ${props.scopeLabel}`}>
          {props.attached.map((name) => (
            <li key={name} class="chip">
              <span>{name}</span>
              <button type="button" class="chip-x" aria-label={`Detach ${name} from ${props.scopeLabel}`} disabled={detach.busy} onClick={() => void detach.run(name)}>
                Detach
              </button>
            </li>
          ))}
        </ul>
      )}
      {choices.length > 0 && (
        <form
          class="row attach-form"
          onSubmit={(e) => {
            e.preventDefault();
            const name = pick || choices[0]!;
            void attach.run(name);
          }}
        >
          <label for={selectId} class="sr-only">
            {`${props.what[0]!.toUpperCase()}${props.what.slice(1)} to attach to ${props.scopeLabel}`}
          </label>
          <select id={selectId} value={pick || choices[0]} onChange={(e) => setPick((e.currentTarget as HTMLSelectElement).value)}>
            {choices.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
          <Button type="submit" busy={attach.busy} aria-label={`Attach to ${props.scopeLabel}`}>
            Attach
          </Button>
        </form>
      )}
      <ErrorNote error={attach.error ?? detach.error} />
    </div>
  );
}
