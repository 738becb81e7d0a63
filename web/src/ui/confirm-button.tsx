import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Button } from './parts';

/**
 * A destructive action asked twice, in the page (no window.confirm, which
 * blocks and cannot be styled): the first press shows the question, with
 * focus on the confirming button so Enter or Escape decides.
 */
export function ConfirmButton(props: { label: string; question: ComponentChildren; confirmLabel: string; onConfirm: () => void | Promise<unknown>; busy?: boolean }) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) yes.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <Button kind="danger" onClick={() => setAsking(true)}>
        {props.label}
      </Button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.label} onKeyDown={(e) => e.key === 'Escape' && setAsking(false)}>
      <span class="confirm-question">{props.question}</span>
      <button
        ref={yes}
        type="button"
        class="btn btn-danger"
        disabled={props.busy}
        onClick={() => {
          setAsking(false);
          void props.onConfirm();
        }}
      >
        {props.confirmLabel}
      </button>
      <Button onClick={() => setAsking(false)}>Cancel</Button>
    </span>
  );
}
