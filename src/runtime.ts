// Brings up what every process needs: database (external or embedded), migrations, object store
// (external or embedded), and the service container. Entry points (server, worker, CLIs) call this.
import path from 'node:path';
import type { Config, S3Config } from './config.js';
import { connectionBudget, openDatabase, type ProcessRole } from './db/connections.js';
import { migrate } from './db/migrate.js';
import { acquireInstanceLock, InstanceLockError, instanceOwner } from './embedded/instance-lock.js';
import { runningEmbeddedPostgresUrl, startEmbeddedPostgres } from './embedded/postgres.js';
import { embeddedS3Credentials, startEmbeddedS3 } from './embedded/s3-server.js';
import type { Logger } from './logger.js';
import { createServices, type Services, startBackground, stopBackground } from './services.js';
import { ObjectStore } from './storage/object-store.js';

export interface Runtime {
  services: Services;
  databaseUrl: string;
  s3: S3Config;
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  migrate?: boolean;
  /**
   * 'own' (the server): this process runs the embedded servers of DATA_DIR, refusing if another
   * does. 'attach' (side commands such as create-admin-key): use the embedded servers of a running
   * server when there is one, else run them for the command's duration.
   */
  embedded?: 'own' | 'attach';
  /** Sizes the process's connections (db/connections.ts); default 'api'. */
  role?: ProcessRole;
  /** Start the job queue and the event listener (a one-shot command that needs neither skips them). */
  background?: boolean;
}

/** The embedded S3 server of a running owner process, seen from a side command. */
function attachedS3(config: Config, port: number): S3Config {
  return { ...embeddedS3Credentials, endPoint: '127.0.0.1', port, useSSL: false, bucket: config.s3Bucket };
}

export async function startRuntime(config: Config, logger: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  const stops: Array<() => Promise<void>> = [];
  try {
    let databaseUrl = config.databaseUrl;
    let s3 = config.s3;
    const usesEmbedded = !databaseUrl || !s3;
    const owner = usesEmbedded && options.embedded === 'attach' ? instanceOwner(config.dataDir) : null;
    if (owner) {
      // A server runs on this DATA_DIR: share its database and object store.
      databaseUrl ??= runningEmbeddedPostgresUrl(path.join(config.dataDir, 'postgres')) ?? undefined;
      if (!databaseUrl) throw new InstanceLockError(`The eyecase process (pid ${owner.pid}) that owns ${config.dataDir} is not serving its database yet; try again in a moment.`);
      if (!s3 && owner.s3Port) s3 = attachedS3(config, owner.s3Port);
      logger.info('attached to the running server\'s embedded services', { pid: owner.pid });
    }
    const lock = usesEmbedded && !owner ? acquireInstanceLock(config.dataDir) : undefined;
    if (lock) stops.push(async () => lock.release());
    if (!databaseUrl) {
      const directory = path.join(config.dataDir, 'postgres');
      const pg = await startEmbeddedPostgres({ directory, onLog: (line) => logger.debug('postgres', { line }) });
      stops.push(pg.stop);
      databaseUrl = pg.url;
      if (pg.stoppedOrphan) logger.warn('stopped an embedded PostgreSQL that a killed process had left running', { pid: pg.stoppedOrphan });
      logger.info('embedded PostgreSQL started', { directory, port: pg.port });
    }
    if (!s3) {
      const embedded = await startEmbeddedS3({
        directory: path.join(config.dataDir, 's3'),
        port: config.embeddedS3Port,
        bucket: config.s3Bucket,
      });
      stops.push(embedded.stop);
      s3 = embedded.config;
      lock?.update({ s3Port: s3.port });
      logger.info('embedded S3 server started', { port: s3.port, directory: path.join(config.dataDir, 's3') });
    }
    if (options.migrate !== false) {
      const result = await migrate(databaseUrl, { log: (msg) => logger.info(msg) });
      logger.info('database migrated', { applied: result.applied.length, alreadyApplied: result.alreadyApplied.length });
    }
    const connections = connectionBudget(options.role ?? 'api', options.background !== false);
    const database = openDatabase(databaseUrl, connections.application);
    stops.push(database.close);
    const store = new ObjectStore(s3);
    await store.ensureBucket();
    const services = createServices({ config, db: database.db, sql: database.sql, connections, store, logger, databaseUrl });
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
