// npm run verify-export -- <file.zip>: checks a case export offline (no database, no network).
// Exit code 0 when everything matches, 1 when something does not (each mismatch is printed), 2 on
// wrong usage.
import { verifyCaseExport } from '../modules/exports/verify-export.js';

async function main(): Promise<number> {
  const file = process.argv.slice(2).find((a) => !a.startsWith('-'));
  if (!file) {
    console.error('usage: npm run verify-export -- <case-export.zip>');
    return 2;
  }
  const result = await verifyCaseExport(file);
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
