import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

/**
 * A destructive action asked twice, in the page (no window.confirm, which
 * blocks and cannot be styled): the first press shows the question, with
 * focus on the confirming button so Enter confirms; Escape or Cancel puts
 * the focus back on the first button.
 */
export function ConfirmButton(props: { label: string; question: ComponentChildren; confirmLabel: string; onConfirm: () => void | Promise<unknown>; busy?: boolean }) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  const first = useRef<HTMLButtonElement>(null);
  const moved = useRef(false);
  useLayoutEffect(() => {
    if (asking) yes.current?.focus();
    else if (moved.current) first.current?.focus();
    moved.current = asking;
  }, [asking]);
  if (!asking) {
    return (
      <button ref={first} type="button" class="btn btn-danger" onClick={() => setAsking(true)}>
        {props.label}
      </button>
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
          moved.current = false;
          setAsking(false);
          void props.onConfirm();
        }}
      >
        {props.confirmLabel}
      </button>
      <button type="button" class="btn btn-plain" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}
