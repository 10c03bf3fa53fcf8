// `npm run import -- --dataset <name> [--create] <dir>`: the command's import function on real
// services, and its argument checking.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../src/cli/args.js';
import { formatSummary, parseImportArgs, runImport } from '../../src/cli/import.js';
import { ok, startTestApp, type TestApp } from '../support/harness.js';
import { datasetFiles } from '../support/images.js';

let t: TestApp;
let dir: string;
beforeAll(async () => {
  t = await startTestApp();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-cli-'));
  for (const label of ['female', 'male'] as const) {
    fs.mkdirSync(path.join(dir, label));
    for (const f of datasetFiles(label, 3, 10)) fs.copyFileSync(f, path.join(dir, label, path.basename(f)));
  }
  fs.writeFileSync(path.join(dir, 'female', 'notes.txt'), 'not an image');
  fs.mkdirSync(path.join(dir, 'male', 'nested'));
  fs.symlinkSync(datasetFiles('male', 1, 20)[0], path.join(dir, 'male', 'link.jpg'));
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await t.stop();
});

const quiet = () => {
  const lines: string[] = [];
  return { lines, log: { progress: (l: string) => lines.push(l), info: (l: string) => lines.push(l) } };
};

describe('import CLI', () => {
  it('creates the dataset, imports a folder as the given admin, and is idempotent', async () => {
    const { lines, log } = quiet();
    const first = await runImport(t.services, { dataset: 'cli-set', create: true, key: t.keys.ADMIN, dir }, log);
    expect(first.created).toBe(true);
    expect(first.summary).toMatchObject({ imported: 6, duplicates: 0, skipped: 3 });
    const reasons = Object.fromEntries(first.summary.files.filter((f) => f.status === 'SKIPPED').map((f) => [f.name, f.reason]));
    expect(reasons['female/notes.txt']).toMatch(/not a JPEG, PNG or WebP/);
    expect(reasons['male/nested']).toMatch(/not a regular file/);
    expect(reasons['male/link.jpg']).toMatch(/symbolic link/);
    expect(lines.some((l) => /^9\/9 files: 6 imported, 0 duplicates, 3 skipped$/.test(l))).toBe(true);
    expect(formatSummary(first.summary)).toMatch(/6 imported, 0 duplicates, 3 skipped\n {2}skipped /);

    const d = ok(await t.gql(`query($id: ID!) { dataset(id: $id) { name counts { female male total } } }`, { id: first.summary.dataset.id }, t.keys.ADMIN)).dataset;
    expect(d).toEqual({ name: 'cli-set', counts: { female: 3, male: 3, total: 6 } });
    const events = ok(await t.gql(`query($id: String) { auditEvents(filter: { entityId: $id }) { nodes { action actor details } } }`, { id: first.summary.dataset.id }, t.keys.ADMIN)).auditEvents.nodes;
    expect(events.map((e: { action: string }) => e.action)).toEqual(['dataset.create', 'dataset.items.add']);
    expect(events[1]).toMatchObject({ actor: 'key:test admin', details: { source: 'folder', imported: 6 } });

    const second = await runImport(t.services, { dataset: 'cli-set', create: true, key: t.keys.ADMIN, dir }, quiet().log);
    expect(second.created).toBe(false);
    expect(second.summary).toMatchObject({ imported: 0, duplicates: 6, skipped: 3 });
  });

  it('refuses non-admin keys, unknown datasets without --create, and folders without labels', async () => {
    const { log } = quiet();
    // The same refusal as the API's (one role check for both): FORBIDDEN, naming the role needed.
    for (const role of ['INVESTIGATOR', 'AUDITOR'] as const) {
      const refusal = (action: string) => `The API key "test ${role.toLowerCase()}" has the ${role} role; ${action} needs a key with the ADMIN role`;
      await expect(runImport(t.services, { dataset: 'cli-x', create: true, key: t.keys[role], dir }, log)).rejects.toMatchObject({ code: 'FORBIDDEN', message: refusal('importing into a dataset') });
      const viaApi = await t.gql(`mutation { createDataset(input: { name: "cli-x" }) { id } }`, {}, t.keys[role]);
      expect(viaApi.errors?.[0]).toMatchObject({ message: refusal('Mutation.createDataset'), extensions: { code: 'FORBIDDEN' } });
    }
    await expect(runImport(t.services, { dataset: 'cli-x', create: true, key: 'eyk_wrong', dir }, log)).rejects.toThrow(/refused/);
    await expect(runImport(t.services, { dataset: 'cli-x', create: false, key: t.keys.ADMIN, dir }, log)).rejects.toThrow(/--create/);
    await expect(runImport(t.services, { dataset: 'cli-x', create: true, key: t.keys.ADMIN, dir: path.join(dir, 'female') }, log)).rejects.toThrow(/neither a female\/ nor a male\//);
    expect(await t.services.datasets.getByName('cli-x')).toBeNull();
  });

  it('checks its arguments', () => {
    expect(parseImportArgs(['--dataset', 'a', '--create', 'some/dir'], { EYECASE_API_KEY: 'eyk_env' })).toEqual({
      dataset: 'a',
      create: true,
      description: undefined,
      key: 'eyk_env',
      dir: path.resolve('some/dir'),
    });
    expect(parseImportArgs(['--dataset=a', '--key', 'eyk_k', 'd'], {}).key).toBe('eyk_k');
    expect(() => parseImportArgs(['some/dir'], { EYECASE_API_KEY: 'k' })).toThrow(UsageError);
    expect(() => parseImportArgs(['--dataset', 'a'], { EYECASE_API_KEY: 'k' })).toThrow(/folder/);
    expect(() => parseImportArgs(['--dataset', 'a', 'd1', 'd2'], { EYECASE_API_KEY: 'k' })).toThrow(/unexpected/);
    expect(() => parseImportArgs(['--dataset', 'a', 'd'], {})).toThrow(/API key/);
    expect(() => parseImportArgs(['--dataset', 'a', '--bogus', 'd'], { EYECASE_API_KEY: 'k' })).toThrow(/unknown option/);
  });
});
