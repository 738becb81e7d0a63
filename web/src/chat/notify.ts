/**
 * Telling a member whose tab is in the background that the agent answered: a
 * desktop notification (if they granted it, asked on their first send — a
 * user gesture, as browsers require) and an unread count in the tab's title
 * until the tab is visible again.
 */

let unread = 0;
let baseTitle = 'Chat · Tagbox';

function render() {
  document.title = unread > 0 ? `(${unread}) ${baseTitle}` : baseTitle;
}

/** The page's own title (without the count). */
export function setChatTitle(title: string): void {
  baseTitle = `${title} · Tagbox`;
  render();
}

export function clearUnread(): void {
  unread = 0;
  render();
}

/** Asks once, on a send (a click or Enter): later calls see the answer and do nothing. */
export function askForNotifications(): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'default') return;
  void Notification.requestPermission().catch(() => undefined);
}

/** A turn finished: counted and announced only while the tab is hidden. */
export function turnFinished(where: string, answer: string | undefined, thread: string): void {
  if (document.visibilityState !== 'hidden') return;
  unread += 1;
  render();
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    const body = answer ? answer.replace(/\s+/g, ' ').trim().slice(0, 140) : undefined;
    const n = new Notification(`Tagbox: agent answered in ${where}`, { tag: `tagbox-thread-${thread}`, ...(body ? { body } : {}) });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker: the title still counts.
  }
}

if (typeof document !== 'undefined') {
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') clearUnread();
  });
}
