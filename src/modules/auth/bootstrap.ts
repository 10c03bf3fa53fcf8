// The first admin key. Printed once, at the first start of an empty installation (or made on
// demand by `npm run create-admin-key`); only its hash is kept.
import type { Services } from '../../services.js';

export async function ensureFirstAdminKey(services: Services): Promise<string | null> {
  if (await services.apiKeys.hasActiveAdmin()) return null;
  const created = await services.apiKeys.create({ system: 'bootstrap' }, { name: 'first admin', role: 'ADMIN' });
  return created.secret;
}

export function printKeyBanner(secret: string, what: string): void {
  const line = '='.repeat(78);
  process.stderr.write(`\n${line}\n${what}\n\n    ${secret}\n\nIt is shown only now. Use it as:  Authorization: Bearer <key>\n${line}\n\n`);
}
