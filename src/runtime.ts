// Brings up what every process needs: database (external or embedded), migrations, object store
// (external or embedded), and the service container. Entry points (server, worker, CLIs) call this.
import path from 'node:path';
import type { Config, S3Config } from './config.js';
import { createPrisma } from './db/prisma.js';
import { migrate } from './db/migrate.js';
import { startEmbeddedPostgres } from './embedded/postgres.js';
import { startEmbeddedS3 } from './embedded/s3-server.js';
import type { Logger } from './logger.js';
import { createServices, type Services, startBackground, stopBackground } from './services.js';
import { ObjectStore } from './storage/object-store.js';

export interface Runtime {
  services: Services;
  databaseUrl: string;
  s3: S3Config;
  stop(): Promise<void>;
}

export async function startRuntime(config: Config, logger: Logger, options: { migrate?: boolean } = {}): Promise<Runtime> {
  const stops: Array<() => Promise<void>> = [];
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const pg = await startEmbeddedPostgres({ directory: path.join(config.dataDir, 'postgres') });
      stops.push(pg.stop);
      databaseUrl = pg.url;
      logger.info('embedded PostgreSQL (PGlite) started', { directory: path.join(config.dataDir, 'postgres') });
    }
    let s3 = config.s3;
    if (!s3) {
      const embedded = await startEmbeddedS3({
        directory: path.join(config.dataDir, 's3'),
        port: config.embeddedS3Port,
        bucket: config.s3Bucket,
      });
      stops.push(embedded.stop);
      s3 = embedded.config;
      logger.info('embedded S3 server started', { port: s3.port, directory: path.join(config.dataDir, 's3') });
    }
    if (options.migrate !== false) {
      const result = await migrate(databaseUrl, { log: (msg) => logger.info(msg) });
      logger.info('database migrated', { applied: result.applied.length, alreadyApplied: result.alreadyApplied.length });
    }
    // The embedded database multiplexes one session: keep its pool small.
    const db = createPrisma(databaseUrl, { max: config.databaseUrl ? 10 : 4 });
    stops.push(() => db.$disconnect());
    const store = new ObjectStore(s3);
    await store.ensureBucket();
    const services = createServices({ config, db, store, logger, databaseUrl });
    await startBackground(services);
    stops.push(() => stopBackground(services));
    return {
      services,
      databaseUrl,
      s3,
      stop: async () => {
        for (const stop of stops.reverse()) await stop().catch((err) => logger.warn('shutdown step failed', { error: err }));
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw err;
  }
}
