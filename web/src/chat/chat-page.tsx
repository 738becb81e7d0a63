import { useTitle } from '../ui/hooks';

/** The chat (channels, DMs, threads): built in web/src/chat/. */
export function ChatPage({ path }: { path: string }) {
  useTitle('Chat');
  return <section class="page" data-path={path}><h1>Chat</h1></section>;
}
