import { useId } from 'preact/hooks';

/** A labelled checkbox with its hint (the shared Field puts the label above, which suits inputs, not boxes). */
export function Checkbox(props: { label: string; checked: boolean; onChange: (v: boolean) => void; hint?: string; disabled?: boolean }) {
  const id = useId();
  return (
    <div class="field field-check">
      <div class="row">
        <input id={id} type="checkbox" checked={props.checked} disabled={props.disabled} aria-describedby={props.hint ? `${id}-hint` : undefined} onChange={(e) => props.onChange((e.currentTarget as HTMLInputElement).checked)} />
        <label for={id}>{props.label}</label>
      </div>
      {props.hint && (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      )}
    </div>
  );
}
