// Prisma CLI configuration. DATABASE_URL is read with a fallback so that `prisma generate`
// (run at install time, offline) works without a database.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/eyecase' },
});
