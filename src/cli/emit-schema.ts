// `npm run schema:emit`: writes schema.graphql from the resolvers.
import 'reflect-metadata';
import { emitSchemaFile, SCHEMA_FILE } from '../graphql/schema.js';

await emitSchemaFile();
process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
