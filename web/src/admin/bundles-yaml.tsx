import { useState } from 'preact/hooks';
import { post } from '../api';
import { Link } from '../router';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, ErrorNote, Field, Loading, Page } from '../ui/parts';
import './access/access.css';
import { Check } from './access/inputs';

interface Plan {
  applied: boolean;
  changes: Array<{ bundle: string; action: 'create' | 'update' | 'delete'; description: string }>;
}

/**
 * Access as code in the browser: the stored bundles as a bundle file, and a
 * file applied the way `tagbox bundle apply` does (the same endpoint and
 * parser): preview first (a dry run), then apply exactly what was previewed.
 */
export function BundlesYamlPage(_props: { params: Record<string, string> }) {
  useTitle('Bundles as YAML');
  const exported = useGet<{ yaml: string }>('bundles/export');
  const [text, setText] = useState('');
  const [prune, setPrune] = useState(false);
  // What the preview was made of: Apply sends only that, so nothing unseen is applied.
  const [preview, setPreview] = useState<{ plan: Plan; yaml: string; prune: boolean }>();
  const [applied, setApplied] = useState<Plan>();
  const dryRun = useAction(async () => {
    setApplied(undefined);
    const plan = await post<Plan>('bundles/apply', { yaml: text, dryRun: true, prune });
    setPreview({ plan, yaml: text, prune });
  });
  const apply = useAction(async () => {
    const plan = await post<Plan>('bundles/apply', { yaml: preview!.yaml, prune: preview!.prune });
    setApplied(plan);
    setPreview(undefined);
    exported.reload();
  });
  const error = dryRun.error ?? apply.error;
  const line = error ? /body\.yaml:(\d+)/.exec(error.message)?.[1] : undefined;
  const stale = preview !== undefined && (preview.yaml !== text || preview.prune !== prune);

  const download = () => {
    const url = URL.createObjectURL(new Blob([exported.data?.yaml ?? ''], { type: 'application/yaml' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'bundles.yaml';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <Page title="Bundles as YAML" intro={<>The same file format as <code>tagbox bundle apply</code> (CONTRACT.md). Applying changes bundles only; where they are attached is kept (<Link href="/admin/scopes">Scopes</Link>).</>}>
      <section aria-labelledby="export-title" class="card">
        <h2 id="export-title">Export</h2>
        {exported.loading && !exported.data && <Loading what="the bundles" />}
        <ErrorNote error={exported.error} />
        <Field label="Current bundles (bundles.yaml)" hint="Read-only. Applying it back changes nothing.">
          {(id, describedBy) => <textarea id={id} class="mono yaml" rows={12} readOnly value={exported.data?.yaml ?? ''} aria-describedby={describedBy} spellcheck={false} />}
        </Field>
        <div class="row">
          <Button onClick={download} disabled={!exported.data}>
            Download bundles.yaml
          </Button>
          <Button onClick={() => setText(exported.data?.yaml ?? '')} disabled={!exported.data}>
            Copy into the editor below
          </Button>
        </div>
      </section>

      <section aria-labelledby="import-title" class="card">
        <h2 id="import-title">Import</h2>
        <Field label="Bundle file to apply" hint="Paste YAML or choose a file." error={error && line ? `Line ${line}: ${error.message.replace(/^body\.yaml:\d+:\s*/, '')}` : undefined}>
          {(id, describedBy) => (
            <textarea
              id={id}
              class="mono yaml"
              rows={12}
              value={text}
              spellcheck={false}
              placeholder={'bundles:\n  - name: platform-eng\n    domains: [registry.npmjs.org]'}
              aria-invalid={line ? true : undefined}
              aria-describedby={describedBy}
              onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
            />
          )}
        </Field>
        <div class="row">
          <label class="btn file-btn">
            Choose a file…
            <input
              type="file"
              accept=".yaml,.yml,application/yaml,text/yaml,text/plain"
              class="sr-only"
              onChange={async (e) => {
                const input = e.currentTarget as HTMLInputElement;
                const file = input.files?.[0];
                if (file) setText(await file.text());
                input.value = '';
              }}
            />
          </label>
          <Check label="Prune" hint="delete stored bundles the file does not list" checked={prune} onChange={setPrune} />
        </div>
        {error && !line && <pre class="error-note pre-wrap" role="alert">{error.message}</pre>}
        <div class="form-actions">
          <Button kind="primary" onClick={() => void dryRun.run()} busy={dryRun.busy} disabled={!text.trim()}>
            Preview changes
          </Button>
          <Button kind="primary" onClick={() => void apply.run()} busy={apply.busy} disabled={!preview || stale || preview.plan.changes.length === 0}>
            Apply
          </Button>
        </div>
        {preview && (
          <div class="plan" aria-labelledby="plan-title">
            <h3 id="plan-title">{stale ? 'Preview (out of date: preview again)' : 'Preview: nothing is applied yet'}</h3>
            <Changes plan={preview.plan} />
          </div>
        )}
        {applied && (
          <div class="plan" role="status">
            <h3>{applied.applied ? `Applied ${applied.changes.length} change(s)` : 'No changes'}</h3>
            <Changes plan={applied} />
          </div>
        )}
      </section>
    </Page>
  );
}

function Changes({ plan }: { plan: Plan }) {
  if (plan.changes.length === 0) return <p class="muted">no changes</p>;
  return (
    <ul class="diff" aria-label="Changes">
      {plan.changes.map((c) => (
        <li key={c.description} class={`diff-${c.action}`}>
          <code>{c.description}</code>
        </li>
      ))}
    </ul>
  );
}
