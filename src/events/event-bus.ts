// Events that other processes must see (training progress from a worker process, production
// model changes, key revocations): published locally and through PostgreSQL NOTIFY; every process
// LISTENs (reconnecting if the connection drops) and hands them to its local subscribers. Delivery
// is best effort: model serving and training subscriptions also poll, key caches expire, and the
// database stays the source of truth.
import { EventEmitter, on } from 'node:events';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../logger.js';

export const CHANNELS = {
  trainingRun: 'eyecase_training_run',
  production: 'eyecase_production_model',
  apiKeyRevoked: 'eyecase_api_key_revoked',
} as const;
export type Channel = (typeof CHANNELS)[keyof typeof CHANNELS];

interface Envelope {
  origin: string;
  payload: Record<string, unknown>;
}

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly origin = randomUUID();
  private listener?: pg.Client;
  private stopped = false;

  constructor(private readonly databaseUrl: string, private readonly logger: Logger) {
    this.emitter.setMaxListeners(0);
  }

  /** Starts listening to other processes' events; safe to skip (then events stay local). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    const lost = (err?: Error) => {
      if (this.stopped || this.listener !== client) return;
      this.listener = undefined;
      this.logger.warn('event bus connection lost; reconnecting', { error: err });
      this.scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (msg) => {
      if (!msg.payload) return;
      try {
        const env = JSON.parse(msg.payload) as Envelope;
        if (env.origin !== this.origin) this.emitter.emit(msg.channel, env.payload);
      } catch (err) {
        this.logger.warn('bad event payload', { channel: msg.channel, error: err });
      }
    });
    await client.connect();
    for (const channel of Object.values(CHANNELS)) await client.query(`LISTEN ${channel}`);
    this.listener = client;
    this.retryMs = 1000;
  }

  private retryMs = 1000;

  private scheduleReconnect(): void {
    const timer = setTimeout(() => {
      if (this.stopped) return;
      this.connect().catch((err) => {
        this.logger.warn('event bus reconnect failed', { error: err, retryInMs: this.retryMs });
        this.scheduleReconnect();
      });
    }, this.retryMs);
    timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }

  /** Local subscribers now; other processes through NOTIFY (skipped, with a warning, if that fails). */
  async publish(channel: Channel, payload: Record<string, unknown>): Promise<void> {
    this.emitter.emit(channel, payload);
    if (!this.listener) return; // not started: this process only
    try {
      await this.listener.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ origin: this.origin, payload } satisfies Envelope)]);
    } catch (err) {
      this.logger.warn('event not sent to other processes', { channel, error: err });
    }
  }

  subscribe(channel: Channel, handler: (payload: Record<string, unknown>) => void): () => void {
    this.emitter.on(channel, handler);
    return () => this.emitter.off(channel, handler);
  }

  /**
   * Events as an async iterator (each value is [payload]); buffering starts at this call, so no
   * event is missed between subscribing and the first read. Ends when `signal` aborts.
   */
  iterate(channel: Channel, signal?: AbortSignal): AsyncIterableIterator<[Record<string, unknown>]> {
    return on(this.emitter, channel, { signal }) as AsyncIterableIterator<[Record<string, unknown>]>;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listener?.end().catch(() => undefined);
  }
}
