import { Link } from '../router';

export function NotFound({ what }: { what?: string }) {
  return (
    <section class="page">
      <h1>Not here</h1>
      <p>{what ?? 'There is no page at this address.'}</p>
      <p>
        <Link href="/chat">Go to the chat</Link>
      </p>
    </section>
  );
}
