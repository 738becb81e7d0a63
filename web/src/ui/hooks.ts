import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get } from '../api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/** GET a path and keep the answer; `reload()` fetches again (after a change). A newer load wins. */
export function useGet<T>(path: string | undefined): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: path !== undefined });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === undefined) return;
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    get<T>(path, abort.signal).then(
      (data) => setState({ data, loading: false }),
      (error: unknown) => {
        if (abort.signal.aborted) return;
        setState({ error: error instanceof ApiError ? error : new ApiError(0, 'network', String(error)), loading: false });
      },
    );
    return () => abort.abort();
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** Runs an action, keeping its error and whether it is running (for buttons and forms). */
export function useAction<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const live = useRef(true);
  useEffect(() => () => void (live.current = false), []);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setBusy(true);
      setError(undefined);
      try {
        return await action(...args);
      } catch (e) {
        if (live.current) setError(e instanceof ApiError ? e : new ApiError(0, 'error', e instanceof Error ? e.message : String(e)));
        return undefined;
      } finally {
        if (live.current) setBusy(false);
      }
    },
    [action],
  );
  return { run, busy, error, setError };
}

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Tagbox`;
  }, [title]);
}
