// `node scripts/run.mjs <entry> [args...]`: runs dist/<entry>.js, compiling first only when a
// source is newer than the last build (and saying so). The entry runs in this same process, so a
// supervisor's SIGTERM or SIGINT reaches the server itself: no wrapper shell left behind.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.build-stamp');
const inputs = ['src', 'bench', 'prisma/schema.prisma', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newestMtime(target) {
  let stat;
  try {
    stat = fs.statSync(target);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file changes its folder's time
  for (const entry of fs.readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, entry)));
  return newest;
}

const [entry, ...args] = process.argv.slice(2);
if (entry === '--stamp') {
  // `npm run build` and `npm test` compile everything themselves; they record it here.
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, new Date().toISOString());
  process.exit(0);
}
if (!entry) {
  process.stderr.write('usage: node scripts/run.mjs <entry, e.g. src/server> [args...]\n');
  process.exit(2);
}

const newestSource = Math.max(...inputs.map((p) => newestMtime(path.join(root, p))));
const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (newestSource > built) {
  process.stderr.write(built ? 'Sources changed since the last build: compiling (tsc)...\n' : 'First run: compiling the TypeScript sources (tsc)...\n');
  const started = Date.now();
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) {
    process.stderr.write('The build failed; see the errors above.\n');
    process.exit(tsc.status ?? 1);
  }
  fs.mkdirSync(path.dirname(stamp), { recursive: true });
  fs.writeFileSync(stamp, new Date().toISOString());
  process.stderr.write(`Compiled in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
}

process.argv = [process.argv[0], path.join(root, 'dist', `${entry}.js`), ...args];
await import(pathToFileURL(path.join(root, 'dist', `${entry}.js`)).href);
