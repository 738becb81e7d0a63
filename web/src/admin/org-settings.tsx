import { useEffect, useState } from 'preact/hooks';
import { patch } from '../api';
import { useMe } from '../session';
import { useAction, useGet, useTitle } from '../ui/hooks';
import { Button, ErrorNote, Loading, Page, Select, TextArea, TextInput } from '../ui/parts';
import { Checkbox } from './org/checkbox';
import type { Org } from './org/types';
import './org/org.css';

const OWNER_ONLY = 'Only an owner can change this.';

/** The org's settings: readable by admins, changed by owners (the server says the same). */
export function OrgSettingsPage(_props: { params: Record<string, string> }) {
  useTitle('Org settings');
  const me = useMe();
  const org = useGet<Org>('org');
  const [draft, setDraft] = useState<Org | undefined>();
  const [saved, setSaved] = useState(false);
  useEffect(() => setDraft(org.data), [org.data]);
  const owner = me.role === 'owner';
  const save = useAction(async () => {
    if (!draft || !org.data) return;
    const changes: Partial<Org> = {};
    for (const key of ['memberAccess', 'memberAccessRoles', 'dmsAllowed', 'retentionDays', 'zeroDataRetention', 'instructions'] as const) {
      if (JSON.stringify(draft[key]) !== JSON.stringify(org.data[key])) (changes as Record<string, unknown>)[key] = draft[key];
    }
    if (Object.keys(changes).length === 0) return;
    await patch<Org>('org', changes);
    setSaved(true);
    org.reload();
  });
  if (!draft) return <Page title="Org settings">{org.error ? <ErrorNote error={org.error} /> : <Loading what="settings" />}</Page>;
  const set = <K extends keyof Org>(key: K, value: Org[K]) => {
    setSaved(false);
    setDraft({ ...draft, [key]: value });
  };
  const err = save.error;
  const fieldError = (name: string) => (err?.field === name ? err.message : undefined);
  const disabledNote = owner ? undefined : OWNER_ONLY;
  return (
    <Page title="Org settings" intro={`${draft.name}: who may use the agent, where, and what is kept.`}>
      {!owner && (
        <p class="notice-line" role="note">
          You are an admin: you can read these settings; {OWNER_ONLY.toLowerCase()}
        </p>
      )}
      <form
        class="card settings-form"
        onSubmit={(e) => {
          e.preventDefault();
          void save.run();
        }}
      >
        <fieldset disabled={!owner} title={disabledNote}>
          <legend class="sr-only">Org settings</legend>
          <Select
            label="Who may invoke the agent"
            value={draft.memberAccess}
            onChange={(v) => set('memberAccess', v as Org['memberAccess'])}
            options={[
              { value: 'anyone', label: 'Anyone in a connected workspace (guests too)' },
              { value: 'members', label: 'Members with an org account' },
              { value: 'roles', label: 'Only members with one of the roles below' },
            ]}
            hint="Member access policy: checked on every message, schedule and DM."
            error={fieldError('memberAccess')}
          />
          {draft.memberAccess === 'roles' && (
            <TextInput
              label="Roles allowed"
              value={draft.memberAccessRoles.join(', ')}
              onInput={(v) => set('memberAccessRoles', v.split(/[\s,]+/).filter(Boolean))}
              hint="Comma-separated role names, such as eng, support."
              error={fieldError('memberAccessRoles')}
            />
          )}
          <Checkbox label="Direct messages with the agent" checked={draft.dmsAllowed} onChange={(v) => set('dmsAllowed', v)} hint="Off: nobody can DM the agent; in a DM it acts as the person, with their own connectors." />
          <TextInput
            label="Retention (days)"
            type="number"
            value={String(draft.retentionDays)}
            onInput={(v) => set('retentionDays', Number(v))}
            hint="How long threads, messages and their events are kept."
            error={fieldError('retentionDays')}
          />
          <Checkbox
            label="Zero data retention"
            checked={draft.zeroDataRetention}
            onChange={(v) => set('zeroDataRetention', v)}
            hint="Ask the model provider to keep nothing (for model keys under a zero-data-retention agreement)."
          />
          <TextArea label="Org instructions" rows={6} value={draft.instructions} onInput={(v) => set('instructions', v)} hint="Added to the agent's system prompt everywhere; a channel's own instructions follow." error={fieldError('instructions')} />
        </fieldset>
        {err && !err.field && <ErrorNote error={err} />}
        <div class="row">
          <Button kind="primary" type="submit" busy={save.busy} disabled={!owner} title={disabledNote}>
            Save settings
          </Button>
          <span role="status" class="hint">
            {saved ? 'Saved.' : ''}
          </span>
        </div>
      </form>
    </Page>
  );
}
