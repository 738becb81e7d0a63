import { useEffect, useState } from 'preact/hooks';
import { ApiError, get } from '../../api';

/**
 * The next firings of a cron expression as it is typed: asked of the server
 * (`GET /schedules/preview`, the same parser the scheduler uses) a moment after
 * the typing stops, so an invalid expression shows the server's own reason.
 */
export function useCronPreview(cron: string, timezone: string, count = 5): { next: string[]; error: ApiError | undefined; pending: boolean } {
  const [state, setState] = useState<{ next: string[]; error: ApiError | undefined; pending: boolean }>({ next: [], error: undefined, pending: false });
  useEffect(() => {
    if (!cron.trim()) return setState({ next: [], error: undefined, pending: false });
    setState((s) => ({ ...s, pending: true }));
    const abort = new AbortController();
    const timer = setTimeout(() => {
      const q = new URLSearchParams({ cron, count: String(count), ...(timezone ? { timezone } : {}) });
      get<{ next: string[] }>(`schedules/preview?${q.toString()}`, abort.signal).then(
        (r) => setState({ next: r.next, error: undefined, pending: false }),
        (e: unknown) => {
          if (abort.signal.aborted) return;
          setState({ next: [], error: e instanceof ApiError ? e : new ApiError(0, 'network', String(e)), pending: false });
        },
      );
    }, 300);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [cron, timezone, count]);
  return state;
}
