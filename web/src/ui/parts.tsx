import type { ComponentChildren, JSX } from 'preact';
import { useId } from 'preact/hooks';
import type { ApiError } from '../api';

/** Shared building blocks: every field has a label and shows the server's error for it. */

export function Field(props: { label: string; hint?: string; error?: string | undefined; children: (id: string, describedBy: string | undefined) => ComponentChildren }) {
  const id = useId();
  const hintId = props.hint ? `${id}-hint` : undefined;
  const errorId = props.error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field${props.error ? ' field-invalid' : ''}`}>
      <label for={id}>{props.label}</label>
      {props.children(id, describedBy)}
      {props.hint && (
        <p class="hint" id={hintId}>
          {props.hint}
        </p>
      )}
      {props.error && (
        <p class="field-error" id={errorId} role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

export function TextInput(props: { label: string; value: string; onInput: (v: string) => void; hint?: string; error?: string | undefined; type?: string; placeholder?: string; required?: boolean; autoComplete?: string; name?: string }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error}>
      {(id, describedBy) => (
        <input
          id={id}
          name={props.name}
          type={props.type ?? 'text'}
          value={props.value}
          placeholder={props.placeholder}
          required={props.required}
          autoComplete={props.autoComplete ?? 'off'}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy}
          onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
        />
      )}
    </Field>
  );
}

export function TextArea(props: { label: string; value: string; onInput: (v: string) => void; hint?: string; error?: string | undefined; rows?: number; mono?: boolean; name?: string }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error}>
      {(id, describedBy) => (
        <textarea
          id={id}
          name={props.name}
          rows={props.rows ?? 4}
          class={props.mono ? 'mono' : undefined}
          value={props.value}
          spellcheck={!props.mono}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy}
          onInput={(e) => props.onInput((e.currentTarget as HTMLTextAreaElement).value)}
        />
      )}
    </Field>
  );
}

export function Select(props: { label: string; value: string; onChange: (v: string) => void; options: Array<{ value: string; label: string }>; hint?: string; error?: string | undefined; name?: string }) {
  return (
    <Field label={props.label} hint={props.hint} error={props.error}>
      {(id, describedBy) => (
        <select id={id} name={props.name} value={props.value} aria-describedby={describedBy} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
          {props.options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

export function Button(props: JSX.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: 'primary' | 'danger' | 'plain'; busy?: boolean; type?: 'button' | 'submit' }) {
  const { kind = 'plain', busy, type = 'button', children, disabled, ...rest } = props;
  return (
    <button {...rest} type={type} class={`btn btn-${kind}`} disabled={Boolean(disabled) || busy} aria-busy={busy ? true : undefined}>
      {children}
    </button>
  );
}

/** An error the server gave that belongs to no field. */
export function ErrorNote({ error }: { error: ApiError | undefined }) {
  if (!error) return null;
  return (
    <p class="error-note" role="alert">
      {error.message}
    </p>
  );
}

export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren; intro?: ComponentChildren }) {
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title">{props.title}</h1>
        {props.actions && <div class="page-actions">{props.actions}</div>}
      </header>
      {props.intro && <p class="intro">{props.intro}</p>}
      {props.children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

/** A relative time with the exact one on hover ("3 min ago"). */
export function Time({ iso }: { iso: string }) {
  const date = new Date(iso);
  return (
    <time dateTime={iso} title={date.toLocaleString()}>
      {relative(date)}
    </time>
  );
}

export function relative(date: Date, now = Date.now()): string {
  const s = Math.round((now - date.getTime()) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return date.toLocaleDateString();
}
