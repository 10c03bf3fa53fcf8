/**
 * npm run import -- --dataset <name> [--create] [--key <admin API key>] <dir>
 * Imports <dir>/female/* and <dir>/male/* into a dataset, as the admin whose key is given (or in
 * EYECASE_API_KEY), so that the audit log says who imported. Same database settings as the server.
 */
import 'reflect-metadata';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppError } from '../errors.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { authorize } from '../modules/auth/authorize.js';
import { ADMIN_ONLY, type Principal } from '../modules/auth/roles.js';
import type { ImportProgress, ImportSummary } from '../modules/datasets/dataset-import.service.js';
import { folderFiles, listLabelledFolder } from '../modules/datasets/sources.js';
import { startRuntime } from '../runtime.js';
import type { Services } from '../services.js';
import { parseArgs, runCli, usage, UsageError, type ArgSpec } from './args.js';

const spec: ArgSpec[] = [
  { name: 'dataset', type: 'string', help: 'name of the dataset to import into (required)' },
  { name: 'create', type: 'boolean', help: 'create the dataset if it does not exist' },
  { name: 'description', type: 'string', help: 'description of a dataset created with --create' },
  { name: 'key', type: 'string', help: 'admin API key to act as (default: $EYECASE_API_KEY)' },
];
export const IMPORT_USAGE = usage('npm run import --', '--dataset <name> [--create] [--key <admin API key>] <dir>   (dir holds female/ and male/)', spec);

export interface ImportCommand {
  dataset: string;
  create: boolean;
  description?: string;
  key: string;
  dir: string;
}

/** Parses the command line; UsageError on anything wrong. */
export function parseImportArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ImportCommand {
  const { opts, positionals } = parseArgs(argv, spec);
  if (!opts.dataset || typeof opts.dataset !== 'string') throw new UsageError('--dataset is required');
  if (positionals.length === 0) throw new UsageError('the folder to import is required');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const key = (opts.key as string | undefined) ?? env.EYECASE_API_KEY;
  if (!key) throw new UsageError('an admin API key is required: --key <key> or EYECASE_API_KEY');
  return { dataset: opts.dataset, create: opts.create === true, description: opts.description as string | undefined, key, dir: path.resolve(positionals[0]) };
}

export interface ImportReport {
  summary: ImportSummary;
  created: boolean;
}

/** The import itself, on running services (the tests call this directly). */
export async function runImport(services: Services, command: ImportCommand, log: { progress(line: string): void; info(line: string): void }): Promise<ImportReport> {
  let principal: Principal;
  try {
    principal = await services.apiKeys.authenticate(command.key);
  } catch (err) {
    throw new Error(`the API key was refused: ${(err as Error).message}`);
  }
  // The same check as the GraphQL import mutations (addDatasetImages, importDatasetArchive) make.
  authorize(principal, ADMIN_ONLY, 'importing into a dataset');
  const files = await listLabelledFolder(command.dir);
  let dataset = await services.datasets.getByName(command.dataset);
  let created = false;
  if (!dataset) {
    if (!command.create) throw new Error(`there is no dataset named "${command.dataset}" (add --create to create it)`);
    dataset = await services.datasets.create(principal, { name: command.dataset, description: command.description });
    created = true;
    log.info(`created dataset "${dataset.name}" (${dataset.id})`);
  }
  log.info(`importing ${files.length} files from ${command.dir} into "${dataset.name}" as ${principal.name}`);
  const onProgress = (p: ImportProgress) =>
    log.progress(`${p.processed}/${p.total ?? '?'} files: ${p.imported} imported, ${p.duplicates} duplicates, ${p.skipped} skipped`);
  const summary = await services.datasetImports.importFiles(principal, dataset.id, folderFiles(files, services.config.uploads.maxFileBytes), {
    source: 'folder',
    total: files.length,
    onProgress,
  });
  return { summary, created };
}

/** The final summary printed on stdout. */
export function formatSummary(summary: ImportSummary): string {
  const lines = [`dataset "${summary.dataset.name}" (${summary.dataset.id}): ${summary.imported} imported, ${summary.duplicates} duplicates, ${summary.skipped} skipped`];
  const skipped = summary.files.filter((f) => f.status === 'SKIPPED');
  for (const f of skipped.slice(0, 50)) lines.push(`  skipped ${f.name}: ${f.reason}`);
  if (skipped.length > 50) lines.push(`  ... and ${skipped.length - 50} more skipped`);
  return lines.join('\n') + '\n';
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const command = parseImportArgs(argv);
  const runtime = await startRuntime(loadConfig(), createLogger('warn'), { embedded: 'attach', role: 'command' });
  try {
    const tty = process.stderr.isTTY;
    const { summary } = await runImport(runtime.services, command, {
      progress: (line) => process.stderr.write(tty ? `\r${line}   ` : `${line}\n`),
      info: (line) => process.stderr.write(`${line}\n`),
    });
    if (tty) process.stderr.write('\n');
    process.stdout.write(formatSummary(summary));
  } catch (err) {
    if (err instanceof AppError) throw new Error(err.message);
    throw err;
  } finally {
    await runtime.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void runCli(() => main(), IMPORT_USAGE);
}
