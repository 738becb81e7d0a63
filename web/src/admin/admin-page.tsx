import { useTitle } from '../ui/hooks';

/** The admin console: built in web/src/admin/. */
export function AdminPage({ path }: { path: string }) {
  useTitle('Admin');
  return <section class="page" data-path={path}><h1>Admin</h1></section>;
}
