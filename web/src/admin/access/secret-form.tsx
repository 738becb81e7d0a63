import { useRef, useState } from 'preact/hooks';
import { put, seg } from '../../api';
import { useAction } from '../../ui/hooks';
import { Button, ErrorNote, Field, Select } from '../../ui/parts';
import { messageOf } from './field-errors';
import { Input } from './inputs';
import { assembleValue, documentFieldError, KINDS, kindOf } from './secret-kinds';
import type { CredentialKind, Secret } from './types';

/**
 * Set a new secret or replace an existing one. Write-only: the fields are
 * password fields (or a masked text area for a PEM key), never filled from the
 * server, and cleared as soon as the vault has sealed the value.
 */
export function SecretForm(props: { replacing?: Secret; onSaved: (saved: Secret) => void; onCancel?: () => void }) {
  const r = props.replacing;
  const [name, setName] = useState(r?.name ?? '');
  const [kind, setKind] = useState<CredentialKind>(r?.kind ?? 'static');
  const [values, setValues] = useState<Record<string, string>>({});
  const pem = useRef<HTMLInputElement>(null);
  const save = useAction(async () => {
    const saved = await put<Secret>(`secrets/${seg(name.trim())}`, { value: assembleValue(kind, values), kind });
    setValues({});
    if (!r) setName('');
    props.onSaved(saved);
  });
  const docError = save.error ? documentFieldError(save.error.message) : undefined;
  const fieldError = (key: string) => {
    if (docError?.key === key) return docError.message;
    if (kind === 'static' && key === 'value' && save.error?.field === 'value') return messageOf(save.error.message);
    return undefined;
  };
  const nameError = save.error?.field === 'name' ? messageOf(save.error.message) : save.error?.code === 'forbidden' && save.error.message.startsWith('name:') ? save.error.message.slice(6) : undefined;
  const shownOnField = Boolean(docError || nameError || (save.error?.field === 'value' && kind === 'static'));
  const spec = kindOf(kind);
  return (
    <form
      class="card secret-form"
      aria-label={r ? `Replace secret ${r.name}` : 'Set a secret'}
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <h2>{r ? `Replace ${r.name}` : 'Set a secret'}</h2>
      <p class="hint">Sealed to the vault’s public key as soon as it arrives. Nobody can read it back — not here, not in the API, not in the CLI.</p>
      {!r && <Input label="Secret name" value={name} placeholder="gh-token" onValue={setName} error={nameError} hint="a-z 0-9 . _ - ; a connection names it" />}
      <Select label="Kind" value={kind} onChange={(k) => setKind(k as CredentialKind)} options={KINDS.map((k) => ({ value: k.kind, label: k.label }))} hint={spec.about} />
      {spec.fields.map((f) =>
        f.choices ? (
          <Select key={`${kind}-${f.key}`} label={f.label} value={values[f.key] ?? f.choices[0]!} onChange={(v) => setValues({ ...values, [f.key]: v })} options={f.choices.map((c) => ({ value: c, label: c }))} hint={f.hint} error={fieldError(f.key)} />
        ) : f.multiline ? (
          <Field key={`${kind}-${f.key}`} label={f.label} hint="Paste it, or choose the .pem file; it is masked and never shown again" error={fieldError(f.key)}>
            {(id, describedBy) => (
              <>
                <textarea
                  id={id}
                  class="mono masked"
                  rows={4}
                  value={values[f.key] ?? ''}
                  autoComplete="off"
                  spellcheck={false}
                  aria-invalid={fieldError(f.key) ? true : undefined}
                  aria-describedby={describedBy}
                  placeholder={f.placeholder}
                  onInput={(e) => setValues({ ...values, [f.key]: (e.currentTarget as HTMLTextAreaElement).value })}
                />
                <input
                  ref={pem}
                  type="file"
                  accept=".pem,.key,text/plain"
                  aria-label={`${f.label}: choose a file`}
                  onChange={async (e) => {
                    const file = (e.currentTarget as HTMLInputElement).files?.[0];
                    if (file) setValues({ ...values, [f.key]: await file.text() });
                    if (pem.current) pem.current.value = '';
                  }}
                />
              </>
            )}
          </Field>
        ) : (
          <Input
            key={`${kind}-${f.key}`}
            label={f.optional ? `${f.label} (optional)` : f.label}
            type={f.secret ? 'password' : 'text'}
            value={values[f.key] ?? ''}
            placeholder={f.placeholder}
            hint={f.hint}
            onValue={(v) => setValues({ ...values, [f.key]: v })}
            error={fieldError(f.key)}
          />
        ),
      )}
      {!shownOnField && <ErrorNote error={save.error} />}
      <div class="form-actions">
        <Button kind="primary" type="submit" busy={save.busy}>
          {r ? 'Replace secret' : 'Save secret'}
        </Button>
        {props.onCancel && <Button onClick={props.onCancel}>Cancel</Button>}
      </div>
    </form>
  );
}
