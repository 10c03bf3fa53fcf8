import { calibrate, chooseThresholds, decide, evaluate, expectedCalibrationError, fitTemperature, probabilities, rocAuc } from '../../src/ml/evaluation.js';
import { mulberry32 } from '../../src/ml/rng.js';
import { DEFAULT_HYPERPARAMETERS, validateHyperparameters } from '../../src/ml/hyperparameters.js';

describe('evaluation', () => {
  test('ROC AUC: perfect, inverted, ties', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
  });

  test('confusion matrix, recall, precision, accuracy', () => {
    const m = evaluate([0.1, 0.6, 0.2, 0.9, 0.7], [0, 0, 1, 1, 1], { female: 0.5, male: 0.5 });
    expect(m.confusionMatrix.matrix).toEqual([[1, 1], [1, 2]]);
    expect(m.accuracy).toBeCloseTo(3 / 5);
    expect(m.recallFemale).toBeCloseTo(1 / 2);
    expect(m.recallMale).toBeCloseTo(2 / 3);
    expect(m.precisionMale).toBeCloseTo(2 / 3);
    expect(m.precisionFemale).toBeCloseTo(1 / 2);
    expect(m.n).toBe(5);
  });

  test('temperature scaling recovers an over-confident model and lowers ECE', () => {
    const rand = mulberry32(3);
    const logits: number[] = [], labels: number[] = [];
    for (let i = 0; i < 4000; i++) {
      const z = (rand() * 2 - 1) * 4; // true log-odds
      labels.push(rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
      logits.push(z * 3); // over-confident by a factor 3
    }
    const T = fitTemperature(logits, labels);
    expect(T).toBeGreaterThan(2.5);
    expect(T).toBeLessThan(3.5);
    const cal = calibrate(logits, labels);
    expect(cal.eceAfter).toBeLessThan(cal.eceBefore);
    expect(expectedCalibrationError(probabilities(logits, T), labels)).toBeLessThan(0.03);
  });

  test('thresholds: decisions outside the band reach the target accuracy', () => {
    const rand = mulberry32(5);
    const p: number[] = [], y: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const label = rand() < 0.5 ? 1 : 0;
      const z = (label ? 1 : -1) * 1.2 + (rand() + rand() + rand() - 1.5) * 2.5;
      p.push(1 / (1 + Math.exp(-z))); y.push(label);
    }
    const t = chooseThresholds(p, y, 0.95);
    expect(t.female).toBeLessThanOrEqual(0.5);
    expect(t.male).toBeGreaterThanOrEqual(0.5);
    const m = evaluate(p, y, t);
    expect(m.decidedAccuracy).toBeGreaterThanOrEqual(0.95);
    expect(m.inconclusiveRate).toBeGreaterThan(0);
    expect(m.inconclusiveRate).toBeLessThan(1);
    expect(decide(0.99, t)).toBe('MALE');
    expect(decide(0.01, t)).toBe('FEMALE');
    expect(decide(0.5, { female: 0.4, male: 0.6 })).toBe('INCONCLUSIVE');
  });
});

describe('hyper-parameters', () => {
  test('defaults are valid', () => {
    const r = validateHyperparameters({});
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toEqual(DEFAULT_HYPERPARAMETERS);
  });
  test('bad values are reported one by one', () => {
    const r = validateHyperparameters({ architecture: 'resnet' as never, validationSplit: 0.9, epochs: 2.5, learningRate: -1, augmentation: 'yes' as never, bogus: 1 } as never);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors.join('\n')).toMatch(/architecture must be one of compact/);
      expect(r.errors.join('\n')).toMatch(/validationSplit must be between 0.05 and 0.5/);
      expect(r.errors.join('\n')).toMatch(/epochs must be a whole number/);
      expect(r.errors.join('\n')).toMatch(/learningRate/);
      expect(r.errors.join('\n')).toMatch(/augmentation must be true or false/);
      expect(r.errors.join('\n')).toMatch(/unknown hyper-parameter 'bogus'/);
    }
  });
});
