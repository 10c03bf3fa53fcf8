// Keeps the production model loaded for inference and follows promotions: a NOTIFY from any
// process (or, failing that, polling) triggers a reload; the new classifier is loaded before it
// is swapped in, and the old one is disposed only after a grace period, so requests in flight
// finish on the model they started with.
import type { ModelVersion } from '../../generated/prisma/client.js';
import { unavailable } from '../../errors.js';
import { CHANNELS, type EventBus } from '../../events/event-bus.js';
import type { Logger } from '../../logger.js';
import { type Classifier, loadClassifier } from '../../ml/index.js';
import type { RegistryService } from './registry.service.js';

export interface ServedModel {
  version: ModelVersion;
  classifier: Classifier;
}

const DISPOSE_GRACE_MS = 60_000;
const MAX_CACHED_VERSIONS = 4;

export class ModelServing {
  private productionId: string | null = null;
  private readonly cache = new Map<string, Promise<ServedModel>>();
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private refreshing?: Promise<void>;
  private again = false;

  constructor(
    private readonly registry: RegistryService,
    private readonly events: EventBus,
    private readonly logger: Logger,
    private readonly pollMs: number,
    private readonly inferenceThreads = 0,
    private readonly runtime: 'auto' | 'onnxruntime' | 'tfjs' = 'auto',
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.events.subscribe(CHANNELS.production, () => void this.refresh());
    this.timer = setInterval(() => void this.refresh(), this.pollMs);
    this.timer.unref();
    await this.refresh();
  }

  /** Checks which version is in production and loads it if it changed. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      // A notice that arrives during a reload is not lost: one more check follows it.
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        const current = await this.registry.production();
        if (!current || current.id === this.productionId) return;
        await this.load(current.id); // fully loaded before it is served
        const previous = this.productionId;
        this.productionId = current.id;
        this.logger.info('serving production model', { modelVersionId: current.id, version: current.version, previous });
        this.trim();
      } catch (err) {
        this.logger.error('could not load the production model', { error: err });
      } finally {
        this.refreshing = undefined;
        if (this.again) {
          this.again = false;
          void this.refresh();
        }
      }
    })();
    return this.refreshing;
  }

  /** The production model, or SERVICE_UNAVAILABLE when none is loaded. */
  async production(): Promise<ServedModel> {
    if (!this.productionId) await this.refresh();
    if (!this.productionId) throw unavailable('No model is in production yet; an admin must promote one');
    return this.load(this.productionId);
  }

  /** Any registered version (for comparison or an explicitly named model). */
  byId(id: string): Promise<ServedModel> {
    return this.load(id);
  }

  private load(id: string): Promise<ServedModel> {
    let entry = this.cache.get(id);
    if (!entry) {
      entry = (async () => {
        const version = await this.registry.get(id);
        // Inference threads keep the forward passes off the event loop (onnxruntime's run() blocks
        // the thread that calls it, as TF.js does); each runs onnxruntime with one intra-op thread.
        const classifier = await loadClassifier(await this.registry.artifact(version), {
          workerThreads: this.inferenceThreads, onnxThreads: 1, runtime: this.runtime,
        });
        return { version, classifier };
      })();
      entry.catch(() => this.cache.delete(id));
      this.cache.set(id, entry);
      this.trim();
    } else {
      // Most recently used last, so trim() drops the oldest.
      this.cache.delete(id);
      this.cache.set(id, entry);
    }
    return entry;
  }

  private trim(): void {
    for (const [id, entry] of this.cache) {
      if (this.cache.size <= MAX_CACHED_VERSIONS) break;
      if (id === this.productionId) continue;
      this.cache.delete(id);
      setTimeout(() => void entry.then((m) => m.classifier.dispose()).catch(() => undefined), DISPOSE_GRACE_MS).unref();
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    for (const entry of this.cache.values()) void entry.then((m) => m.classifier.dispose()).catch(() => undefined);
    this.cache.clear();
  }
}
