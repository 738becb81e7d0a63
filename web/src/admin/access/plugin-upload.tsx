import { useState } from 'preact/hooks';
import { post } from '../../api';
import { useAction } from '../../ui/hooks';
import { Button, ErrorNote } from '../../ui/parts';
import { Input } from './inputs';

/** Reads a chosen folder into POST /plugins's body: paths inside the folder, contents in base64. */
async function filesOf(list: FileList): Promise<Array<{ path: string; data: string }>> {
  const files = [];
  for (const file of Array.from(list)) {
    // webkitRelativePath is "<folder>/<path>": the plugin's root is the folder itself.
    const path = (file.webkitRelativePath || file.name).split('/').slice(1).join('/') || file.name;
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    files.push({ path, data: btoa(binary) });
  }
  return files;
}

/** Add or replace a plugin from a folder, validated by the server as `tagbox plugin add DIR` validates one. */
export function PluginUpload(props: { onAdded: (note: string) => void }) {
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<FileList>();
  const upload = useAction(async () => {
    const result = await post<{ name: string; change: string }>('plugins', { name: name.trim(), files: await filesOf(chosen!) });
    props.onAdded(result.change === 'unchanged' ? `Plugin ${result.name}: no changes.` : `Plugin ${result.name} ${result.change === 'add' ? 'added' : 'replaced'}.`);
    setName('');
  });
  const dirAttrs = { webkitdirectory: '', directory: '' } as Record<string, string>;
  return (
    <form
      class="card"
      aria-label="Add a plugin"
      onSubmit={(e) => {
        e.preventDefault();
        void upload.run();
      }}
    >
      <h2>Add a plugin</h2>
      <p class="hint">
        A Claude Code plugin folder (with <code>.claude-plugin/plugin.json</code>). From a shell on the server: <code>tagbox plugin add DIR --name NAME</code>.
      </p>
      <Input label="Plugin name" value={name} placeholder="review-kit" onValue={setName} hint="lower-case letters, digits and hyphens" error={upload.error?.field === 'name' ? upload.error.message.replace(/^body\.name: /, '') : undefined} />
      <label class="field">
        <span class="label-text">Plugin folder</span>
        <input type="file" multiple {...dirAttrs} onChange={(e) => setChosen((e.currentTarget as HTMLInputElement).files ?? undefined)} />
      </label>
      {upload.error?.field !== 'name' && <ErrorNote error={upload.error} />}
      <Button kind="primary" type="submit" busy={upload.busy} disabled={!name.trim() || !chosen?.length}>
        Upload plugin
      </Button>
    </form>
  );
}
