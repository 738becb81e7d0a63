import { useState } from 'preact/hooks';
import { del, post, seg } from '../api';
import { ConfirmButton } from '../ui/confirm-button';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Empty, ErrorNote, Loading, Page, Time } from '../ui/parts';
import './access/access.css';
import { PluginUpload } from './access/plugin-upload';
import { ScopeAttachments } from './access/scope-attachments';
import { useScopeTree } from './access/scope-names';
import { scopeKeyOf, scopeRefOf, type Plugin } from './access/types';

/** Installed Claude Code plugins and where they are mounted (attached like bundles). */
export function PluginsPage(_props: { params: Record<string, string> }) {
  useTitle('Plugins');
  const plugins = useGet<Plugin[]>('plugins');
  const { tree } = useScopeTree();
  const [note, setNote] = useState<string>();
  const remove = useAction(async (name: string) => {
    await del(`plugins/${seg(name)}`);
    setNote(`Removed plugin ${name}.`);
    plugins.reload();
  });
  const label = (key: string) => tree?.label(key) ?? key;
  return (
    <Page title="Plugins" intro="Skills, commands, agents and MCP servers in the Claude Code plugin format, mounted read-only into the sessions of the scopes they are attached to.">
      {note && (
        <p class="ok-note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={plugins.error ?? remove.error} />
      {plugins.loading && !plugins.data && <Loading what="plugins" />}
      {plugins.data?.length === 0 && <Empty>No plugins installed.</Empty>}
      {plugins.data?.map((p) => {
        const attached = p.attachments.map(scopeKeyOf);
        const c = p.counts;
        return (
          <section key={p.name} class="card" aria-labelledby={`plugin-${p.name}`}>
            <header class="row">
              <h2 id={`plugin-${p.name}`}>{p.name}</h2>
              {p.plugin.version && <span class="badge">v{p.plugin.version}</span>}
              <span class="muted mono" title={p.digest}>
                {p.digest.slice(0, 12)}
              </span>
              <span class="push-right">
                <ConfirmButton label={`Remove ${p.name}`} question="Remove it and detach it everywhere?" confirmLabel={`Yes, remove ${p.name}`} onConfirm={() => remove.run(p.name)} />
              </span>
            </header>
            {p.plugin.description && <p>{p.plugin.description}</p>}
            <p class="muted">
              {c.skills} skills · {c.commands} commands · {c.agents} agents · {c.hooks} hooks · {c.mcpServers} MCP servers · {p.fileCount} files · updated <Time iso={p.updatedAt} />
            </p>
            <h3>Attached to</h3>
            <ScopeAttachments
              scopeLabel={p.name}
              what="scope"
              attached={attached.map(label)}
              available={(tree?.options ?? []).map((o) => label(o.value))}
              onAttach={async (scopeLabel) => {
                const key = tree?.options.find((o) => label(o.value) === scopeLabel)?.value ?? 'org';
                await post(`plugins/${seg(p.name)}/attachments`, { scope: scopeRefOf(key) });
                plugins.reload();
              }}
              onDetach={async (scopeLabel) => {
                const key = attached.find((k) => label(k) === scopeLabel)!;
                await del(`plugins/${seg(p.name)}/attachments`, { scope: scopeRefOf(key) });
                plugins.reload();
              }}
            />
          </section>
        );
      })}
      <PluginUpload
        onAdded={(text) => {
          setNote(text);
          plugins.reload();
        }}
      />
    </Page>
  );
}
