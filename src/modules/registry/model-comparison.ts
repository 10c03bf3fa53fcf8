// compareModelVersions: metrics side by side, and both versions run on the same validation images
// (the split the first version with a training run was validated on, chosen by the engine's own
// validationSelection from the dataset version, its seed and validation share).
import type { Db } from '../../db/prisma.js';
import type { ModelVersion } from '../../generated/prisma/client.js';
import { AppError, badInput, notFound } from '../../errors.js';
import { expectedCalibrationError, type Hyperparameters, type LabelledItem, type PredictionResult, validationSelection } from '../../ml/index.js';
import { newestVersion, versionItems } from '../datasets/dataset.store.js';
import type { ImageService } from '../images/image.service.js';
import type { ModelServing } from './model-serving.js';
import { modelVersionById, runWithDatasetVersion } from './registry.store.js';

const COMPARED_METRICS = ['accuracy', 'recallFemale', 'recallMale', 'precisionFemale', 'precisionMale', 'auc', 'ece', 'inconclusiveRate', 'decidedAccuracy'] as const;

type Metrics = Partial<Record<(typeof COMPARED_METRICS)[number], number>>;
const metricsOf = (mv: ModelVersion): Metrics => ((mv.evaluation as { metrics?: Metrics } | null)?.metrics ?? {});

export class ModelComparisonService {
  private readonly cache = new Map<string, Promise<ComparisonFigures>>();

  constructor(private readonly db: Db, private readonly images: ImageService, private readonly serving: ModelServing) {}

  async compare(aId: string, bId: string) {
    if (aId === bId) throw badInput('Give two different model versions to compare');
    const [a, b] = await Promise.all([this.serving.byId(aId), this.serving.byId(bId)]);
    const metrics = COMPARED_METRICS.map((name) => {
      const va = metricsOf(a.version)[name] ?? null;
      const vb = metricsOf(b.version)[name] ?? null;
      return { name, a: va, b: vb, difference: va !== null && vb !== null ? vb - va : null };
    });
    const key = `${aId}:${bId}`;
    let figures = this.cache.get(key);
    if (!figures) {
      figures = this.figures(a.version, b.version);
      figures.catch(() => this.cache.delete(key));
      this.cache.set(key, figures);
    }
    // Fresh rows: the loaded models' copies may show an old stage.
    const [rowA, rowB] = await Promise.all([this.freshRow(aId), this.freshRow(bId)]);
    return { a: rowA, b: rowB, metrics, ...(await figures) };
  }

  private async freshRow(id: string): Promise<ModelVersion> {
    const row = await modelVersionById(this.db, id);
    if (!row) throw notFound('ModelVersion', id);
    return row;
  }

  /**
   * The promotion gate's figures: candidate and production run on the same validation images (the
   * candidate's split when it has a training run), each scored on accuracy, calibration error and
   * the female/male recall gap; `failures` names every figure worse beyond its tolerance.
   */
  async gate(candidate: ModelVersion, production: ModelVersion, tolerance: GateTolerance): Promise<GateComparison> {
    let found: { items: LabelledItem[]; comparedOn: string };
    try {
      found = await this.validationImages(candidate, production);
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'BAD_USER_INPUT')) throw err;
      found = { items: [], comparedOn: 'nothing' };
    }
    const { items, comparedOn } = found;
    const base = { productionVersionId: production.id, productionVersion: production.version, comparedOn, n: items.length, tolerance };
    // Nothing to compare on is not a pass: only an override can promote without a comparison.
    if (items.length === 0) return { ...base, candidate: null, production: null, passed: false, failures: ['no validation images to compare the candidate with production on (no dataset version exists)'] };
    const [c, p] = await Promise.all([this.serving.byId(candidate.id), this.serving.byId(production.id)]).then((m) => m.map((x) => x.classifier));
    const bytes = items.map((i) => i.bytes);
    const labels = Uint8Array.from(items, (i) => (i.label === 'MALE' ? 1 : 0));
    const cand = gateMetrics(await c.predictBatch(bytes), labels);
    const prod = gateMetrics(await p.predictBatch(bytes), labels);
    const failures: string[] = [];
    const f3 = (x: number) => x.toFixed(3);
    if (cand.accuracy < prod.accuracy - tolerance.accuracy) failures.push(`accuracy ${f3(cand.accuracy)} is below production's ${f3(prod.accuracy)} by more than ${tolerance.accuracy}`);
    if (cand.calibrationError > prod.calibrationError + tolerance.calibrationError) failures.push(`calibration error ${f3(cand.calibrationError)} exceeds production's ${f3(prod.calibrationError)} by more than ${tolerance.calibrationError}`);
    if (cand.recallGap > prod.recallGap + tolerance.recallGap) failures.push(`female/male recall gap ${f3(cand.recallGap)} exceeds production's ${f3(prod.recallGap)} by more than ${tolerance.recallGap}`);
    return { ...base, candidate: cand, production: prod, passed: failures.length === 0, failures };
  }

  private async figures(a: ModelVersion, b: ModelVersion): Promise<ComparisonFigures> {
    const { items, comparedOn } = await this.validationImages(a, b);
    const [classifierA, classifierB] = await Promise.all([this.serving.byId(a.id), this.serving.byId(b.id)]).then((m) => m.map((x) => x.classifier));
    const bytes = items.map((i) => i.bytes);
    const [pa, pb] = [await classifierA.predictBatch(bytes), await classifierB.predictBatch(bytes)];
    let decisions = 0, labels = 0, correctA = 0, correctB = 0;
    items.forEach((item, i) => {
      const la = pa[i].pMale >= 0.5 ? 'MALE' : 'FEMALE';
      const lb = pb[i].pMale >= 0.5 ? 'MALE' : 'FEMALE';
      if (pa[i].decision === pb[i].decision) decisions++;
      if (la === lb) labels++;
      if (la === item.label) correctA++;
      if (lb === item.label) correctB++;
    });
    const n = items.length;
    return { comparedOn, n, decisionAgreement: decisions / n, labelAgreement: labels / n, accuracyA: correctA / n, accuracyB: correctB / n };
  }

  private async validationImages(a: ModelVersion, b: ModelVersion): Promise<{ items: LabelledItem[]; comparedOn: string }> {
    const runId = a.trainingRunId ?? b.trainingRunId;
    const run = runId ? await runWithDatasetVersion(this.db, runId) : null;
    const version = run?.datasetVersion ?? (await newestVersion(this.db));
    if (!version) throw badInput('Neither version has a training run and no dataset version exists to compare them on');
    const rows = await versionItems(this.db, version.id);
    const where = `dataset ${version.dataset.name} version ${version.version}`;
    let chosen = rows;
    let comparedOn = `all ${rows.length} images of ${where}`;
    if (run) {
      // The engine's person-aware validation split, chosen without decoding anything.
      const hp = run.hyperparameters as unknown as Hyperparameters;
      chosen = validationSelection(rows.map((r) => ({ ...r, hash: r.sha256, group: r.groupKey })), hp);
      comparedOn = `the ${chosen.length}-image person-aware validation split of version ${a.trainingRunId ? a.version : b.version} (${where}, seed ${hp.seed})`;
    }
    const bytes = await this.images.getMany(chosen.map((r) => r.objectKey));
    return { items: chosen.map((r, i) => ({ id: r.sha256, label: r.label, bytes: bytes[i], group: r.groupKey })), comparedOn };
  }
}

export interface ComparisonFigures {
  comparedOn: string;
  n: number;
  decisionAgreement: number;
  labelAgreement: number;
  accuracyA: number;
  accuracyB: number;
}

export interface GateTolerance {
  accuracy: number;
  calibrationError: number;
  recallGap: number;
}

export interface GateMetrics {
  accuracy: number;
  recallFemale: number;
  recallMale: number;
  recallGap: number;
  calibrationError: number;
}

export interface GateComparison {
  productionVersionId: string | null;
  productionVersion: number | null;
  comparedOn: string;
  n: number;
  tolerance: GateTolerance;
  candidate: GateMetrics | null;
  production: GateMetrics | null;
  passed: boolean;
  failures: string[];
}

/** Accuracy and recalls at P = 0.5 (as the registry's metrics), and the calibration error. */
function gateMetrics(results: PredictionResult[], labels: Uint8Array): GateMetrics {
  const pMale = Float64Array.from(results, (r) => r.pMale);
  const count = [0, 0];
  const right = [0, 0];
  pMale.forEach((p, i) => {
    count[labels[i]]++;
    if ((p >= 0.5 ? 1 : 0) === labels[i]) right[labels[i]]++;
  });
  const recallFemale = count[0] ? right[0] / count[0] : 0;
  const recallMale = count[1] ? right[1] / count[1] : 0;
  return {
    accuracy: (right[0] + right[1]) / labels.length,
    recallFemale,
    recallMale,
    recallGap: Math.abs(recallFemale - recallMale),
    calibrationError: expectedCalibrationError(pMale, labels),
  };
}
