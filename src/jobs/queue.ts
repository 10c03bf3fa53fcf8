// The job queue: pg-boss 10 on the application's PostgreSQL. Jobs are only a delivery mechanism;
// the TrainingRun row (status, lease, heartbeat) is the source of truth, so a job delivered twice
// or lost with a dead worker cannot train a run twice or leave it RUNNING forever.
import PgBoss from 'pg-boss';
import type { Sql } from '../db/sql.js';
import type { Logger } from '../logger.js';

export const TRAINING_QUEUE = 'training-run';

export interface TrainingJobData {
  runId: string;
}

/**
 * pg-boss's executeSql over the caller's transaction (a Prisma use case hands `sqlOfPrisma(tx)`):
 * the job commits with the run. pg-boss reads only `rows` (the new job's id).
 */
export const inTransaction = (sql: Sql) => ({
  executeSql: async (text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[] }> => ({ rows: await sql.query(text, values) }),
});

export class JobQueue {
  readonly boss: PgBoss;
  private started = false;

  constructor(databaseUrl: string, private readonly logger: Logger, options: { max?: number } = {}) {
    this.boss = new PgBoss({ connectionString: databaseUrl, max: options.max ?? 4, application_name: 'eyecase-queue' });
    this.boss.on('error', (err) => this.logger.error('job queue error', { error: err }));
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.boss.start();
    // Retries and expiry are handled through the run's lease (see training-runner.ts), not here.
    await this.boss.createQueue(TRAINING_QUEUE, { name: TRAINING_QUEUE, retryLimit: 0, expireInSeconds: 23 * 3600 } as PgBoss.Queue);
    this.started = true;
  }

  /** Enqueues a training job inside the caller's transaction. */
  async sendTraining(sql: Sql, data: TrainingJobData): Promise<string> {
    const id = await this.boss.send(TRAINING_QUEUE, data as unknown as object, { db: inTransaction(sql), retryLimit: 0, expireInSeconds: 23 * 3600 } as PgBoss.SendOptions);
    if (!id) throw new Error('the job queue did not accept the training job');
    return id;
  }

  /**
   * Marks a training job failed inside the caller's transaction (a job a dead worker held, whose
   * run was taken back); a job that already completed or failed is left as it is.
   */
  async failTraining(sql: Sql, jobId: string, reason: string): Promise<void> {
    await this.boss.fail(TRAINING_QUEUE, jobId, { reason }, { db: inTransaction(sql) });
  }

  async cancel(jobId: string): Promise<void> {
    await this.boss.cancel(TRAINING_QUEUE, jobId).catch((err) => this.logger.warn('could not cancel job', { jobId, error: err }));
  }

  async work(handler: (data: TrainingJobData, jobId: string) => Promise<void>, options: { pollingIntervalSeconds?: number } = {}): Promise<string> {
    return this.boss.work<TrainingJobData>(TRAINING_QUEUE, { batchSize: 1, pollingIntervalSeconds: options.pollingIntervalSeconds ?? 2 }, async ([job]) => {
      await handler(job.data, job.id);
    });
  }

  /**
   * A periodic job: the queue, its cron schedule (pg-boss creates one job per tick across all
   * processes) and this process's handler. Returns a function that stops handling it here.
   */
  async scheduleWork(name: string, cron: string, handler: () => Promise<unknown>): Promise<() => Promise<void>> {
    // A tick that nobody handled within the hour is dropped rather than run late.
    await this.boss.createQueue(name, { name, policy: 'singleton', retryLimit: 0, expireInSeconds: 3600, retentionMinutes: 60 } as PgBoss.Queue);
    await this.boss.schedule(name, cron);
    await this.boss.work(name, { batchSize: 1, pollingIntervalSeconds: 5 }, async () => {
      try {
        await handler();
      } catch (err) {
        // pg-boss marks the job failed silently: say so in the log; the next tick tries again.
        this.logger.error('scheduled job failed', { job: name, error: err });
        throw err;
      }
    });
    return () => this.boss.offWork(name);
  }

  /** Stops fetching new jobs (jobs in hand are not affected). */
  async stopWorking(): Promise<void> {
    if (this.started) await this.boss.offWork(TRAINING_QUEUE);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    await this.boss.stop({ graceful: false, wait: true });
    this.started = false;
  }
}
