import { useCallback, useEffect, useState } from 'preact/hooks';
import { post, put, seg } from '../api';
import { useAction, useTitle } from '../ui/hooks';
import { Button, Empty, ErrorNote, Loading, Page, Select, TextInput } from '../ui/parts';
import { LinkReveal } from './org/link-reveal';
import { apiRole, loadMembers } from './org/members-data';
import type { Member, Workspace } from './org/types';
import './org/org.css';

interface Reveal {
  who: string;
  url: string;
  expiresAt: string;
}

/** Members of every workspace, their roles, invitations and sign-in links. */
export function MembersPage(_props: { params: Record<string, string> }) {
  useTitle('Members');
  const [state, setState] = useState<{ members: Member[]; workspaces: Workspace[] } | undefined>();
  const load = useAction(loadMembers);
  const [reveal, setReveal] = useState<Reveal | undefined>();
  const reload = useCallback(() => void load.run().then((r) => r && setState(r)), [load.run]);
  useEffect(reload, []);

  return (
    <Page title="Members" intro="Everyone in the org's workspaces. An admin manages members and admins; only an owner changes owners.">
      <InviteForm onInvited={(r) => (setReveal(r), reload())} />
      {reveal && <LinkReveal {...reveal} onDone={() => setReveal(undefined)} />}
      <ErrorNote error={load.error} />
      {!state ? (
        <Loading what="members" />
      ) : state.members.length === 0 ? (
        <Empty>No members yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="members-table">
            <caption class="sr-only">Members</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Workspace</th>
                <th scope="col">Roles</th>
                <th scope="col">Account</th>
                <th scope="col">Sign-in</th>
              </tr>
            </thead>
            <tbody>
              {state.members.map((m) => (
                <MemberRow key={m.id} member={m} onChanged={reload} onLink={setReveal} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Page>
  );
}

function MemberRow({ member, onChanged, onLink }: { member: Member; onChanged: () => void; onLink: (r: Reveal) => void }) {
  const [roles, setRoles] = useState(member.roles.join(', '));
  const save = useAction(async () => {
    const list = roles.split(/[\s,]+/).filter(Boolean);
    await put(`members/${seg(member.id)}/roles`, { roles: list });
    onChanged();
  });
  const link = useAction(async () => {
    const r = await post<{ url: string; expiresAt: string }>(`members/${seg(member.id)}/login-links`);
    onLink({ who: member.displayName, url: r.url, expiresAt: r.expiresAt });
  });
  const changed = roles.split(/[\s,]+/).filter(Boolean).join(',') !== member.roles.join(',');
  return (
    <tr>
      <th scope="row">
        {member.displayName}
        {member.isGuest && <span class="tag">guest</span>}
        <div class="hint mono">{member.id}</div>
      </th>
      <td>{member.workspaceName}</td>
      <td>
        <form
          class="row roles-form"
          onSubmit={(e) => {
            e.preventDefault();
            void save.run();
          }}
        >
          <input class="roles-input" value={roles} aria-label={`Roles of ${member.displayName}`} onInput={(e) => setRoles((e.currentTarget as HTMLInputElement).value)} />
          <Button type="submit" busy={save.busy} disabled={!changed}>
            Save
          </Button>
        </form>
        <span class={`tag tag-${apiRole(member)}`}>{apiRole(member)}</span>
        {save.error && (
          <p class="field-error" role="alert">
            {save.error.message}
          </p>
        )}
      </td>
      <td>{member.hasAccount ? 'Yes' : 'No'}</td>
      <td>
        <Button busy={link.busy} onClick={() => void link.run()} aria-label={`Sign-in link for ${member.displayName}`}>
          Sign-in link
        </Button>
        <ErrorNote error={link.error} />
      </td>
    </tr>
  );
}

function InviteForm({ onInvited }: { onInvited: (r: Reveal) => void }) {
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('member');
  const invite = useAction(async () => {
    const r = await post<{ member: { id: string; displayName?: string; name?: string }; link: { url: string; expiresAt: string } }>('invitations', {
      name,
      ...(email ? { email } : {}),
      role,
    });
    onInvited({ who: name, url: r.link.url, expiresAt: r.link.expiresAt });
    setName('');
    setEmail('');
  });
  // An invitation makes a member or an admin; an owner is made by changing an existing member's roles.
  const roles = [
    { value: 'member', label: 'Member' },
    { value: 'admin', label: 'Admin' },
  ];
  const err = invite.error;
  return (
    <form
      class="card invite-form"
      aria-labelledby="invite-title"
      onSubmit={(e) => {
        e.preventDefault();
        void invite.run();
      }}
    >
      <h2 id="invite-title">Invite someone</h2>
      <div class="form-grid">
        <TextInput label="Name" value={name} onInput={setName} required error={err?.field === 'name' ? err.message : undefined} />
        <TextInput label="Email (optional)" type="email" value={email} onInput={setEmail} error={err?.field === 'email' ? err.message : undefined} hint="Only to remember who it is for; Tagbox sends no mail." />
        <Select label="Role" value={role} onChange={setRole} options={roles} error={err?.field === 'role' ? err.message : undefined} hint="To make an owner, invite them, then give them the owner role below (owners only)." />
      </div>
      {err && !['name', 'email', 'role'].includes(err.field ?? '') && <ErrorNote error={err} />}
      <Button kind="primary" type="submit" busy={invite.busy} disabled={!name.trim()}>
        Invite
      </Button>
    </form>
  );
}
