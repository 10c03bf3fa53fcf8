// The time-left estimate and the stall check of training runs: pure functions, no database.
import { etaSeconds, isStalled } from '../../src/modules/training/training-progress.js';

const run = (status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED', progress: number, epochs: number | null = 10) => ({
  status,
  progress,
  hyperparameters: epochs === null ? {} : { epochs },
});
const epochsOf = (...seconds: number[]) => seconds.map((s) => ({ durationMs: s * 1000 }));

describe('etaSeconds', () => {
  it('has no estimate while queued or before the first epoch is recorded', () => {
    expect(etaSeconds(run('QUEUED', 0), [])).toBeNull();
    expect(etaSeconds(run('RUNNING', 0.05), [])).toBeNull();
  });

  it('is the mean epoch duration times the planned epochs still to do', () => {
    // 2 of 10 epochs done at 30 s and 50 s: 40 s each, 8 epochs left.
    expect(etaSeconds(run('RUNNING', 0.2), epochsOf(30, 50))).toBe(320);
    // Part of the third epoch's batches done as well.
    expect(etaSeconds(run('RUNNING', 0.25), epochsOf(30, 50))).toBe(300);
    // Rounded to whole seconds.
    expect(etaSeconds(run('RUNNING', 1 / 3, 3), epochsOf(1.5))).toBe(3);
  });

  it('never goes below zero, and has no estimate without a planned epoch count', () => {
    expect(etaSeconds(run('RUNNING', 1), epochsOf(30))).toBe(0);
    expect(etaSeconds(run('RUNNING', 0.5, null), epochsOf(30))).toBeNull();
    expect(etaSeconds({ status: 'RUNNING', progress: 0.5, hyperparameters: null }, epochsOf(30))).toBeNull();
  });

  it('is zero once the run has ended, whatever the outcome', () => {
    for (const status of ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const) {
      expect(etaSeconds(run(status, 0.4), epochsOf(30))).toBe(0);
      expect(etaSeconds(run(status, 0), [])).toBe(0);
    }
  });
});

describe('isStalled', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  const at = (msAgo: number) => new Date(now - msAgo);

  it('is a RUNNING run whose heartbeat is later than allowed, or never came', () => {
    expect(isStalled({ status: 'RUNNING', heartbeatAt: at(30_001) }, 30_000, now)).toBe(true);
    expect(isStalled({ status: 'RUNNING', heartbeatAt: null }, 30_000, now)).toBe(true);
    expect(isStalled({ status: 'RUNNING', heartbeatAt: at(30_000) }, 30_000, now)).toBe(false);
  });

  it('never applies to a run that is not running', () => {
    for (const status of ['QUEUED', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const) expect(isStalled({ status, heartbeatAt: at(3_600_000) }, 30_000, now)).toBe(false);
  });
});
