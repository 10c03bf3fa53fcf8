// `npm run db:migrate`: applies prisma/migrations to DATABASE_URL, offline.
import { migrate } from '../db/migrate.js';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('DATABASE_URL is not set. Example: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/eyecase npm run db:migrate\n(`npm start` migrates its embedded database by itself.)\n');
  process.exit(2);
}
migrate(url, { log: (m) => process.stdout.write(m + '\n') })
  .then((r) => {
    process.stdout.write(`${r.applied.length} migration(s) applied, ${r.alreadyApplied.length} already applied\n`);
  })
  .catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
