import { Button } from '../../ui/parts';
import type { ConnectionDraft } from './bundle-draft';
import { HostList } from './host-list';
import { Check, Input } from './inputs';

/**
 * One connection of a bundle: which vault secret, the websites it may go to,
 * how it is injected, and the optional narrowing. Its fields are named
 * `connections[i].…` as the server names them.
 */
export function ConnectionEditor(props: { index: number; draft: ConnectionDraft; onChange: (d: ConnectionDraft) => void; onRemove: () => void; secrets: string[]; errorOf: (field: string) => string | undefined }) {
  const { draft: c, index: i } = props;
  const p = `connections[${i}]`;
  const set = (part: Partial<ConnectionDraft>) => props.onChange({ ...c, ...part });
  const listId = `secrets-${i}`;
  const injectError = props.errorOf(`${p}.inject`) ?? props.errorOf(p);
  return (
    <fieldset class="connection card">
      <legend>
        Connection {i + 1}
        {c.name ? `: ${c.name}` : ''}
      </legend>
      <div class="grid-2">
        <Input label="Connection name" value={c.name} placeholder="github" onValue={(name) => set({ name })} error={props.errorOf(`${p}.name`)} />
        <Input label="Secret" value={c.secret} list={listId} placeholder="gh-token" hint="A name in the vault: pick one or type it (set it on the Secrets page)" onValue={(secret) => set({ secret })} error={props.errorOf(`${p}.secret`)} />
        <datalist id={listId}>
          {props.secrets.map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
      </div>
      {c.injectKind !== 'github' && (
        <HostList legend="Allowed websites" item="Allowed website" path={`${p}.allowedWebsites`} rows={c.websites} onChange={(websites) => set({ websites })} errorOf={props.errorOf} hint="The credential is sent to these hosts only." />
      )}
      <fieldset class="inject">
        <legend>How the secret is sent</legend>
        {injectError && (
          <p class="field-error" role="alert">
            {injectError}
          </p>
        )}
        <div class="row" role="radiogroup" aria-label="Injection">
          <label class="check">
            <input type="radio" name={`inject-${i}`} checked={c.injectKind === 'header'} onChange={() => set({ injectKind: 'header' })} /> A header
          </label>
          <label class="check">
            <input type="radio" name={`inject-${i}`} checked={c.injectKind === 'basic'} onChange={() => set({ injectKind: 'basic' })} /> Basic auth
          </label>
          <label class="check">
            <input type="radio" name={`inject-${i}`} checked={c.injectKind === 'github'} onChange={() => set({ injectKind: 'github' })} /> GitHub App
          </label>
        </div>
        {c.injectKind === 'github' ? (
          <GithubFields {...props} />
        ) : c.injectKind === 'header' ? (
          <div class="grid-2">
            <Input label="Header name" value={c.header} onValue={(header) => set({ header })} error={props.errorOf(`${p}.inject.header`)} />
            <Input label="Header value" value={c.value} hint="{{secret}} is replaced by the secret" onValue={(value) => set({ value })} error={props.errorOf(`${p}.inject.value`)} />
          </div>
        ) : (
          <Input label="Username" value={c.username} hint="Sent as Authorization: Basic base64(username:secret)" onValue={(username) => set({ username })} error={props.errorOf(`${p}.inject.basic`)} />
        )}
      </fieldset>
      {c.injectKind !== 'github' && (
      <fieldset class="narrow">
        <legend>Narrowing (optional)</legend>
        <div class="grid-2">
          <Input label="Only this host" value={c.narrowHost} placeholder="api.github.com" onValue={(narrowHost) => set({ narrowHost })} error={props.errorOf(`${p}.narrow.host`)} />
          <Input label="Path prefix" value={c.pathPrefix} placeholder="/repos/acme/" onValue={(pathPrefix) => set({ pathPrefix })} error={props.errorOf(`${p}.narrow.pathPrefix`)} />
        </div>
        <Check label="Read-only" hint="GET, HEAD and OPTIONS only" checked={c.readOnly} onChange={(readOnly) => set({ readOnly })} />
        <Check label="Also over plain HTTP" hint="by default the secret is only sent over TLS" checked={c.plainHttp} onChange={(plainHttp) => set({ plainHttp })} />
      </fieldset>
      )}
      <Button kind="danger" onClick={props.onRemove}>
        Remove connection {i + 1}
      </Button>
    </fieldset>
  );
}

/** A GitHub App connection's settings: the token goes to github.com (git) and api.github.com, minted narrowed. */
function GithubFields(props: { index: number; draft: ConnectionDraft; onChange: (d: ConnectionDraft) => void; errorOf: (field: string) => string | undefined }) {
  const { draft: c } = props;
  const p = `connections[${props.index}].github`;
  const set = (part: Partial<ConnectionDraft>) => props.onChange({ ...c, ...part });
  const repoError = props.errorOf(`${p}.repositories`) ?? c.repositories.split(/[\s,]+/).filter(Boolean).map((_, j) => props.errorOf(`${p}.repositories[${j}]`)).find(Boolean);
  return (
    <div class="grid-2">
      <Input label="Repositories" value={c.repositories} placeholder="acme/widgets, acme/docs" hint="The token is minted for these only; empty: all the installation reaches" onValue={(repositories) => set({ repositories })} error={repoError} />
      <Input label="Push branches" value={c.pushBranches} hint="Pushes to other branches are refused; {thread} is the thread's id" onValue={(pushBranches) => set({ pushBranches })} error={props.errorOf(`${p}.pushBranches`)} />
      <Input label="Permissions" value={c.permissions} placeholder="contents: write, pull_requests: write" hint="Optional: the token gets these only" onValue={(permissions) => set({ permissions })} error={props.errorOf(`${p}.permissions`) ?? props.errorOf(p)} />
    </div>
  );
}
