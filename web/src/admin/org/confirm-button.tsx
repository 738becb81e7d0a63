import { useState } from 'preact/hooks';
import { Button } from '../../ui/parts';

/**
 * A destructive action asked twice: the first press turns into "Yes, …" and
 * "Cancel" in place (no modal: nothing to trap focus in, works the same on a phone).
 */
export function ConfirmButton(props: { label: string; confirm: string; question: string; onConfirm: () => void | Promise<unknown>; busy?: boolean }) {
  const [asking, setAsking] = useState(false);
  if (!asking)
    return (
      <Button kind="danger" busy={props.busy} onClick={() => setAsking(true)}>
        {props.label}
      </Button>
    );
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      <span class="confirm-question">{props.question}</span>
      <Button
        kind="danger"
        autoFocus
        busy={props.busy}
        onClick={async () => {
          await props.onConfirm();
          setAsking(false);
        }}
      >
        {props.confirm}
      </Button>
      <Button onClick={() => setAsking(false)}>Cancel</Button>
    </span>
  );
}
