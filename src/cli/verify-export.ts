// npm run verify-export -- <file.zip> [--public-key <pem file>]: checks a case export offline (no
// database, no network). With --public-key (the server's audit key, e.g. from its
// audit-signing-key.pem's public half or an anchor in the object store) the chain head's signature
// is checked against that key rather than the one the manifest carries. Exit code 0 when
// everything matches, 1 when something does not (each mismatch is printed), 2 on wrong usage.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { verifyCaseExport } from '../modules/exports/verify-export.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { 'public-key': { type: 'string' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: npm run verify-export -- <case-export.zip> [--public-key <pem file>]`);
    return 2;
  }
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) {
    console.error('usage: npm run verify-export -- <case-export.zip> [--public-key <pem file>]');
    return 2;
  }
  const keyFile = parsed.values['public-key'];
  const result = await verifyCaseExport(file, keyFile ? fs.readFileSync(keyFile, 'utf8') : undefined);
  if (result.ok) {
    console.log(`OK: ${file}: ${result.checkedFiles} files match the manifest; ${result.auditEvents} audit events match their hashes`);
    return 0;
  }
  console.log(`FAILED: ${file}: ${result.problems.length} problem(s)`);
  for (const p of result.problems) console.log(`  - ${p}`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
