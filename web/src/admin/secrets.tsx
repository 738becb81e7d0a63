import { useState } from 'preact/hooks';
import { del, seg } from '../api';
import { Link } from '../router';
import { ConfirmButton } from '../ui/confirm-button';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page, Time } from '../ui/parts';
import './access/access.css';
import { useScopeTree } from './access/scope-names';
import { SecretForm } from './access/secret-form';
import { kindOf } from './access/secret-kinds';
import type { Secret } from './access/types';

/** The org's vault secrets: metadata only, which connections send each one, set / replace / delete. */
export function SecretsPage(_props: { params: Record<string, string> }) {
  useTitle('Secrets');
  const secrets = useGet<Secret[]>('secrets');
  const { tree } = useScopeTree();
  const [replacing, setReplacing] = useState<Secret>();
  const [note, setNote] = useState<string>();
  const remove = useAction(async (name: string) => {
    await del(`secrets/${seg(name)}`);
    setNote(`Deleted secret ${name}.`);
    secrets.reload();
  });
  const saved = (s: Secret) => {
    setNote(`Saved ${s.name}: version ${s.version}. The value is sealed and will not be shown again.`);
    setReplacing(undefined);
    secrets.reload();
  };
  return (
    <Page title="Secrets and connections" intro="Secrets are write-only: set or replace a value, never read it. A connection in a bundle names the secret it sends; it is sent only where that bundle is attached.">
      {note && (
        <p class="ok-note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={secrets.error ?? remove.error} />
      {secrets.loading && !secrets.data && <Loading what="secrets" />}
      {secrets.data?.length === 0 && <Empty>No secrets yet.</Empty>}
      {secrets.data && secrets.data.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Kind</th>
                <th scope="col">Version</th>
                <th scope="col">Updated</th>
                <th scope="col">Used by</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {secrets.data.map((s) => (
                <tr key={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td>{kindOf(s.kind)?.label ?? s.kind}</td>
                  <td>v{s.version}</td>
                  <td>
                    <Time iso={s.updatedAt} />
                    {s.lastUsedAt && (
                      <div class="muted">
                        used <Time iso={s.lastUsedAt} />
                      </div>
                    )}
                  </td>
                  <td>
                    {s.usedBy.length === 0 && <span class="muted">no connection</span>}
                    {s.usedBy.map((u) => (
                      <div key={`${u.bundle}/${u.connection}`}>
                        <Link href={`/admin/bundles/${seg(u.bundle)}`}>{u.bundle}</Link> / {u.connection}{' '}
                        <span class="muted">{u.scopes.length ? `in ${u.scopes.map((k) => tree?.label(k) ?? k).join(', ')}` : '(bundle not attached)'}</span>
                      </div>
                    ))}
                    <span class={`badge ${s.sent ? 'badge-on' : 'badge-off'}`}>{s.sent ? 'sent' : 'not sent'}</span>
                  </td>
                  <td class="actions">
                    <Button aria-label={`Replace ${s.name}`} onClick={() => setReplacing(s)}>
                      Replace
                    </Button>
                    <ConfirmButton label={`Delete ${s.name}`} question={s.usedBy.length ? `${s.usedBy.length} connection(s) use it and will fail. Delete?` : 'Delete it?'} confirmLabel={`Yes, delete ${s.name}`} busy={remove.busy} onConfirm={() => remove.run(s.name)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {replacing ? <SecretForm key={`replace-${replacing.name}`} replacing={replacing} onSaved={saved} onCancel={() => setReplacing(undefined)} /> : <SecretForm key="new" onSaved={saved} />}
    </Page>
  );
}
