import type { JSX } from 'preact';
import { Field } from '../../ui/parts';

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'onInput' | 'value' | 'label'>;

/** A labelled text input that shows the server's error for it (aria-invalid, message tied by aria-describedby). */
export function Input(props: InputProps & { label: string; value: string; onValue: (v: string) => void; hint?: string; error?: string | undefined; visibleLabel?: string }) {
  const { label, value, onValue, hint, error, class: className, visibleLabel, ...rest } = props;
  return (
    <Field label={visibleLabel ?? label} hint={hint} error={error}>
      {(id, describedBy) => (
        <input
          {...rest}
          id={id}
          class={className}
          value={value}
          autoComplete={rest.autoComplete ?? 'off'}
          spellcheck={false}
          aria-invalid={error ? true : undefined}
          aria-describedby={describedBy}
          aria-label={visibleLabel ? label : undefined}
          onInput={(e) => onValue((e.currentTarget as HTMLInputElement).value)}
        />
      )}
    </Field>
  );
}

export function Check(props: { label: string; checked: boolean; onChange: (v: boolean) => void; hint?: string }) {
  return (
    <label class="check">
      <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange((e.currentTarget as HTMLInputElement).checked)} />
      <span>
        {props.label}
        {props.hint && <span class="hint"> — {props.hint}</span>}
      </span>
    </label>
  );
}
