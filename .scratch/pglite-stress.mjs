import fs from 'node:fs/promises'; import os from 'node:os'; import path from 'node:path'; import pg from 'pg';
const { startEmbeddedPostgres } = await import(process.cwd() + '/dist/src/embedded/postgres.js');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgl-'));
const e = await startEmbeddedPostgres({ directory: dir });
const pool = new pg.Pool({ connectionString: e.url, max: 4 });
const listener = new pg.Client({ connectionString: e.url }); await listener.connect(); await listener.query('LISTEN ch');
const errors = [];
const run = async (name, fn) => { for (let i = 0; i < 200; i++) { try { await fn(i); } catch (err) { errors.push(name + ': ' + err.message); } } };
await Promise.all([
  run('notify', (i) => listener.query('SELECT pg_notify($1, $2)', ['ch', String(i)])),
  run('three', (i) => pool.query('SELECT $1::int + $2::int + $3::int AS s', [i, 1, 2])),
  run('tx', async (i) => { const c = await pool.connect(); try { await c.query('BEGIN'); await c.query('SELECT $1::int AS x', [i]); await c.query('COMMIT'); } finally { c.release(); } }),
  run('one', (i) => pool.query('SELECT $1::text AS t', ['x' + i])),
]);
console.log('errors', errors.length, [...new Set(errors)].slice(0, 5));
await listener.end(); await pool.end(); await e.stop(); await fs.rm(dir, { recursive: true, force: true });
