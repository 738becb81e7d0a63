import { CopyButton } from './copy-button';

/** A one-time sign-in link, shown once: whoever holds it signs in as that member until it is used or expires. */
export function LinkReveal({ who, url, expiresAt, onDone }: { who: string; url: string; expiresAt: string; onDone: () => void }) {
  return (
    <div class="card link-reveal" role="region" aria-label={`Sign-in link for ${who}`}>
      <p>
        <strong>Sign-in link for {who}.</strong> It is shown only now and works once; it expires{' '}
        <time dateTime={expiresAt}>{new Date(expiresAt).toLocaleString()}</time>. Send it to them privately.
      </p>
      <div class="row">
        <input class="mono link-url" readOnly value={url} aria-label="Sign-in link" onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <CopyButton text={url} label="Copy link" />
        <button type="button" class="btn btn-plain" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
