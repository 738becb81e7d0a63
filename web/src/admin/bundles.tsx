import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { del, put, seg } from '../api';
import { Link, navigate } from '../router';
import { ConfirmButton } from '../ui/confirm-button';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page } from '../ui/parts';
import './access/access.css';
import { bodyOf, draftOf, emptyBundle, emptyConnection, fieldsOf, type BundleDraft } from './access/bundle-draft';
import { ConnectionEditor } from './access/connection-editor';
import { placeError } from './access/field-errors';
import { setFlash, takeFlash } from './access/flash';
import { HostList } from './access/host-list';
import { Input } from './access/inputs';
import { useScopeTree } from './access/scope-names';
import { hostText, type Bundle, type Secret } from './access/types';

/** Every access bundle: what it allows, with which secrets, and where it is attached. */
export function BundlesPage(_props: { params: Record<string, string> }) {
  useTitle('Bundles');
  const bundles = useGet<Bundle[]>('bundles');
  const { tree } = useScopeTree();
  const [flash] = useState(takeFlash);
  return (
    <Page
      title="Access bundles"
      intro="A bundle is a set of domains the agent may reach without a credential, and connections that send a vault secret to chosen websites. It applies where it is attached (Scopes)."
      actions={
        <>
          <Link class="btn" href="/admin/bundles-yaml">
            As YAML
          </Link>
          <Link class="btn btn-primary" href="/admin/bundles/new">
            New bundle
          </Link>
        </>
      }
    >
      {flash && (
        <p class="ok-note" role="status">
          {flash}
        </p>
      )}
      <ErrorNote error={bundles.error} />
      {bundles.loading && !bundles.data && <Loading what="bundles" />}
      {bundles.data?.length === 0 && <Empty>No bundles yet: the agent can reach nothing but the model. Create one, or import a bundle file.</Empty>}
      {bundles.data && bundles.data.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Bundle</th>
                <th scope="col">Domains</th>
                <th scope="col">Connections</th>
                <th scope="col">Attached to</th>
              </tr>
            </thead>
            <tbody>
              {bundles.data.map((b) => (
                <tr key={b.name}>
                  <td>
                    <Link href={`/admin/bundles/${seg(b.name)}`}>
                      <strong>{b.name}</strong>
                    </Link>
                    {b.description && <div class="muted">{b.description}</div>}
                  </td>
                  <td>
                    <ul class="chips">
                      {b.domains.map((d) => (
                        <li key={hostText(d)} class="chip mono">
                          {hostText(d)}
                        </li>
                      ))}
                    </ul>
                  </td>
                  <td>
                    {b.connections.map((c) => (
                      <div key={c.name} class="conn-line">
                        <strong>{c.name}</strong> <span class="muted">sends</span> <code>{c.secret}</code> <span class="muted">to</span> {(c.allowedWebsites ?? []).map(hostText).join(', ')}
                        {c.github && <span class="muted"> (GitHub App; pushes to {c.github.pushBranches ?? 'tagbox/*'} only)</span>}
                      </div>
                    ))}
                  </td>
                  <td>{b.scopes.length === 0 ? <span class="muted">nowhere</span> : b.scopes.map((s) => tree?.label(s) ?? '…').join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

/** Create (/admin/bundles/new) or edit one bundle; Save replaces it whole (PUT /bundles/{name}). */
export function BundleEditPage({ params }: { params: Record<string, string> }) {
  const existing = params.name;
  useTitle(existing ? `Bundle ${existing}` : 'New bundle');
  const loaded = useGet<Bundle>(existing ? `bundles/${seg(existing)}` : undefined);
  const secrets = useGet<Secret[]>('secrets');
  const [draft, setDraft] = useState<BundleDraft>(emptyBundle);
  useEffect(() => {
    if (loaded.data) setDraft(draftOf(loaded.data));
  }, [loaded.data]);

  const [nameMissing, setNameMissing] = useState(false);
  const save = useAction(async (d: BundleDraft) => {
    await put(`bundles/${seg(d.name.trim())}`, bodyOf(d));
    setFlash(`Saved bundle ${d.name.trim()}.`);
    navigate('/admin/bundles');
  });
  const remove = useAction(async () => {
    await del(`bundles/${seg(existing!)}`);
    setFlash(`Deleted bundle ${existing}.`);
    navigate('/admin/bundles');
  });
  const fields = useMemo(() => fieldsOf(draft), [draft]);
  const placed = placeError(save.error, fields);
  const errorOf = (field: string) => (placed.field === field ? placed.message : undefined);
  const nameError = nameMissing ? 'expected a bundle name' : errorOf('name');
  // After a refused save, the first field the server named gets the focus.
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => {
    if (save.error || nameMissing) form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [save.error, nameMissing]);

  if (existing && loaded.loading && !loaded.data) return <Loading what="the bundle" />;
  if (existing && loaded.error) return <ErrorNote error={loaded.error} />;
  const set = (part: Partial<BundleDraft>) => setDraft((d) => ({ ...d, ...part }));
  return (
    <Page title={existing ? `Bundle ${existing}` : 'New bundle'} actions={<Link href="/admin/bundles">All bundles</Link>}>
      <form
        class="bundle-form"
        ref={form}
        aria-label={existing ? `Edit bundle ${existing}` : 'New bundle'}
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setNameMissing(!existing && !draft.name.trim());
          if (existing || draft.name.trim()) void save.run(existing ? { ...draft, name: existing } : draft);
        }}
      >
        {existing ? (
          <p class="muted">
            Name: <strong>{existing}</strong> (to rename, create a new bundle and delete this one)
          </p>
        ) : (
          <Input label="Bundle name" value={draft.name} placeholder="platform-eng" required onValue={(name) => set({ name })} error={nameError} hint="Letters, digits, . _ -" />
        )}
        <Input label="Description" value={draft.description} onValue={(description) => set({ description })} error={errorOf('description')} />
        <HostList legend="Domains" item="Domain" path="domains" rows={draft.domains} onChange={(domains) => set({ domains })} errorOf={errorOf} hint="Reachable without a credential. Ports default to 443 and 80." />
        <h2>Connections</h2>
        {errorOf('connections') && (
          <p class="field-error" role="alert">
            {errorOf('connections')}
          </p>
        )}
        {draft.connections.length === 0 && <p class="empty">No connections: nothing in this bundle sends a secret.</p>}
        {draft.connections.map((c, i) => (
          <ConnectionEditor
            key={i}
            index={i}
            draft={c}
            secrets={(secrets.data ?? []).map((s) => s.name)}
            errorOf={errorOf}
            onChange={(next) => set({ connections: draft.connections.map((x, j) => (j === i ? next : x)) })}
            onRemove={() => set({ connections: draft.connections.filter((_, j) => j !== i) })}
          />
        ))}
        <Button onClick={() => set({ connections: [...draft.connections, emptyConnection()] })}>Add connection</Button>
        {placed.message && !placed.field && <ErrorNote error={save.error} />}
        <div class="form-actions">
          <Button kind="primary" type="submit" busy={save.busy}>
            Save bundle
          </Button>
          {existing && <ConfirmButton label="Delete bundle" question={`Delete ${existing} and detach it everywhere?`} confirmLabel={`Yes, delete ${existing}`} busy={remove.busy} onConfirm={() => remove.run()} />}
        </div>
        <ErrorNote error={remove.error} />
      </form>
    </Page>
  );
}
