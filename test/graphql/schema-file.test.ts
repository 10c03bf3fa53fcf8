import fs from 'node:fs/promises';
import { printSchemaSdl, SCHEMA_FILE } from '../../src/graphql/schema.js';

it('schema.graphql at the repository root matches the resolvers (run `npm run schema:emit` after changing them)', async () => {
  const committed = await fs.readFile(SCHEMA_FILE, 'utf8').catch(() => '');
  expect(committed).toBe(await printSchemaSdl());
});
