// `npm run create-admin-key [-- --name NAME]`: creates an ADMIN key and prints it once.
// Uses the same database settings as the server: DATABASE_URL, or the embedded one under DATA_DIR
// (the running server's, when `npm start` is up; else it starts it for the command's duration).
import 'reflect-metadata';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { printKeyBanner } from '../modules/auth/bootstrap.js';
import { startRuntime } from '../runtime.js';

async function main() {
  const args = process.argv.slice(2);
  const nameIdx = args.indexOf('--name');
  const name = nameIdx >= 0 ? args[nameIdx + 1] : 'admin (command line)';
  if (!name || args.some((a, i) => a.startsWith('--') && a !== '--name' && i !== nameIdx)) {
    process.stderr.write('usage: npm run create-admin-key -- [--name NAME]\n');
    process.exit(2);
  }
  const config = loadConfig();
  const runtime = await startRuntime(config, createLogger('warn'), { embedded: 'attach', role: 'command', background: false });
  try {
    const created = await runtime.services.apiKeys.create({ system: 'cli' }, { name, role: 'ADMIN' });
    printKeyBanner(created.secret, `Admin key "${name}" created (id ${created.id}):`);
  } finally {
    await runtime.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
