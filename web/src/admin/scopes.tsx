import { del, post, seg } from '../api';
import { Link } from '../router';
import { useGet, useTitle } from '../ui/hooks';
import { Empty, ErrorNote, Loading, Page } from '../ui/parts';
import './access/access.css';
import { ScopeAttachments } from './access/scope-attachments';
import { useScopeTree } from './access/scope-names';
import { hostText, type Bundle, type ChannelAccess } from './access/types';

/** Where each bundle applies: the org, each workspace, each channel (a channel gets the union of all three). */
export function ScopesPage(_props: { params: Record<string, string> }) {
  useTitle('Scopes');
  const bundles = useGet<Bundle[]>('bundles');
  const { tree, error } = useScopeTree();
  const names = (bundles.data ?? []).map((b) => b.name);
  const at = (key: string) => (bundles.data ?? []).filter((b) => b.scopes.includes(key)).map((b) => b.name);
  const section = (key: string, label: string) => (
    <ScopeAttachments
      scopeLabel={label}
      what="bundle"
      attached={at(key)}
      available={names}
      onAttach={async (name) => {
        await post(`bundles/${seg(name)}/scopes`, { scope: key });
        bundles.reload();
      }}
      onDetach={async (name) => {
        await del(`bundles/${seg(name)}/scopes`, { scope: key });
        bundles.reload();
      }}
    />
  );
  return (
    <Page title="Scopes" intro="In a channel the agent may reach the union of the bundles attached to the org, to the channel’s workspace and to the channel — whoever asks. Open a channel’s effective access to see that union.">
      <ErrorNote error={bundles.error} />
      {error && <p class="error-note">{error}</p>}
      {(!tree || !bundles.data) && !error && !bundles.error && <Loading what="scopes" />}
      {tree && bundles.data && (
        <>
          {names.length === 0 && (
            <Empty>
              No bundles to attach yet: <Link href="/admin/bundles/new">create one</Link>.
            </Empty>
          )}
          <section class="card scope" aria-labelledby="scope-org">
            <h2 id="scope-org">The org</h2>
            <p class="hint">Every channel of every workspace.</p>
            {section('org', 'the org')}
          </section>
          {tree.workspaces.map((w) => (
            <section key={w.id} class="card scope" aria-labelledby={`scope-w-${w.id}`}>
              <h2 id={`scope-w-${w.id}`}>
                Workspace {w.name} <span class="badge">{w.kind}</span>
              </h2>
              {section(`workspace:${w.id}`, `workspace ${w.name}`)}
              <h3>Channels</h3>
              {w.channels.length === 0 && <p class="muted">No channels.</p>}
              <ul class="scope-channels">
                {w.channels.map((c) => (
                  <li key={c.id} aria-labelledby={`scope-c-${c.id}`}>
                    <div class="row">
                      <strong id={`scope-c-${c.id}`}>#{c.name}</strong>
                      {c.isPrivate && <span class="badge">private</span>}
                      <Link class="push-right" href={`/admin/scopes/channel/${seg(c.id)}`}>
                        Effective access of #{c.name}
                      </Link>
                    </div>
                    {section(`channel:${c.id}`, `#${c.name}`)}
                  </li>
                ))}
              </ul>
            </section>
          ))}
        </>
      )}
    </Page>
  );
}

/** What a channel's sessions may reach (GET /channels/{id}/access) and where each part comes from. */
export function ChannelAccessPage({ params }: { params: Record<string, string> }) {
  const access = useGet<ChannelAccess>(`channels/${seg(params.id ?? '')}/access`);
  const name = access.data ? `#${access.data.channel.name}` : 'a channel';
  useTitle(`Access of ${name}`);
  const a = access.data;
  return (
    <Page title={`Effective access of ${name}`} actions={<Link href="/admin/scopes">All scopes</Link>} intro="The union the Agent Proxy enforces for every session in this channel, whoever asks. Anything not listed is blocked.">
      <ErrorNote error={access.error} />
      {access.loading && !a && <Loading what="the channel’s access" />}
      {a && (
        <>
          <h2>Bundles</h2>
          {a.bundles.length === 0 && <Empty>No bundle applies here: only the model connection is reachable.</Empty>}
          {a.bundles.map((b) => (
            <section key={b.name} class="card" aria-labelledby={`eff-${b.name}`}>
              <header class="row">
                <h3 id={`eff-${b.name}`}>
                  <Link href={`/admin/bundles/${seg(b.name)}`}>{b.name}</Link>
                </h3>
                <span class={`badge from-${b.from.split(':')[0]}`}>from {b.fromLabel}</span>
              </header>
              {b.domains.length > 0 && (
                <p>
                  <span class="muted">Domains: </span>
                  {b.domains.map(hostText).join(', ')}
                </p>
              )}
              {b.connections.map((c) => (
                <p key={c.name} class="conn-line">
                  <strong>{c.name}</strong> <span class="muted">sends secret</span> <code>{c.secret}</code> <span class="muted">({c.inject.replace(/^header:/, 'header ')}) to</span> {c.allowedWebsites.map(hostText).join(', ')}
                  {c.narrow && (
                    <span class="muted">
                      {' '}
                      — only {[c.narrow.host, c.narrow.pathPrefix && `paths ${c.narrow.pathPrefix}`, c.narrow.readOnly && 'read-only'].filter(Boolean).join(', ')}
                    </span>
                  )}
                </p>
              ))}
            </section>
          ))}
          <h2>Model connection</h2>
          {a.model ? (
            <p>
              <code>{a.model.host}</code> with the secret <code>{a.model.secret}</code>, added to every session.
            </p>
          ) : (
            <p class="muted">No model key is configured (agent.modelSecret).</p>
          )}
          <h2>Plugins</h2>
          {a.plugins.length === 0 ? (
            <p class="muted">
              No plugins are mounted here (<Link href="/admin/plugins">Plugins</Link>).
            </p>
          ) : (
            <ul>
              {a.plugins.map((p) => (
                <li key={p.name}>
                  <strong>{p.name}</strong> <span class="badge">from {p.fromLabel}</span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Page>
  );
}
