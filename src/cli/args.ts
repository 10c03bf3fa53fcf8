/** Tiny argument parser for the ML command-line tools: --name value, --name=value, --flag, positionals. */
import { promises as fs } from "node:fs";
import path from "node:path";
export interface ArgSpec { name: string; type: 'string' | 'number' | 'boolean'; help: string }

export class UsageError extends Error {}

export function parseArgs(argv: string[], spec: ArgSpec[]): { opts: Record<string, string | number | boolean>; positionals: string[] } {
  const byName = new Map(spec.map((s) => [s.name, s]));
  const opts: Record<string, string | number | boolean> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('--')) { positionals.push(a); continue; }
    let name = a.slice(2), value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    if (name === 'help' || name === 'h') throw new UsageError('');
    let s = byName.get(name);
    if (!s && name.startsWith('no-') && byName.get(name.slice(3))?.type === 'boolean') {
      s = byName.get(name.slice(3))!;
      opts[s.name] = false;
      continue;
    }
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'boolean') { opts[name] = value === undefined ? true : !/^(false|0|no)$/i.test(value); continue; }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    }
    if (s.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
      opts[name] = n;
    } else opts[name] = value;
  }
  return { opts, positionals };
}

export function usage(command: string, synopsis: string, spec: ArgSpec[]): string {
  const w = Math.max(...spec.map((s) => s.name.length + (s.type === 'boolean' ? 0 : 8)));
  const lines = spec.map((s) => `  --${(s.name + (s.type === 'boolean' ? '' : s.type === 'number' ? ' <n>' : ' <value>')).padEnd(w + 2)} ${s.help}`);
  return `usage: ${command} ${synopsis}\n\noptions:\n${lines.join('\n')}\n`;
}

/** Run a CLI main: usage errors print the usage and exit 2; other errors print a message and exit 1. */
export async function runCli(main: () => Promise<void>, usageText: string): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`error: ${e.message}\n\n`);
      process.stderr.write(usageText);
      process.exitCode = e.message ? 2 : 0;
      return;
    }
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}

/** A bundle file, or a directory holding model.eyemodel (or exactly one *.eyemodel). */
export async function resolveBundlePath(p: string): Promise<string> {
  const st = await fs.stat(p).catch(() => null);
  if (!st) throw new UsageError(`--model ${p} does not exist`);
  if (st.isFile()) return p;
  const names = (await fs.readdir(p)).filter((n) => n.endsWith('.eyemodel'));
  if (names.includes('model.eyemodel')) return path.join(p, 'model.eyemodel');
  if (names.length === 1) return path.join(p, names[0]);
  throw new UsageError(`--model ${p}: no single .eyemodel bundle in that directory`);
}
