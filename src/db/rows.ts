// Typed readers for the columns of plain-SQL rows. Stores convert each row with a small mapper
// built from these (no casts): node-postgres and Prisma's raw queries return some types
// differently (int8 as text or bigint, numeric as text or Decimal), and a column that a query no
// longer selects, or that changed type, fails here with its name instead of travelling on as
// `undefined`. Cheap on purpose: they run on every row of the hot paths.
export type Row = Record<string, unknown>;

function wrong(row: Row, column: string, expected: string): Error {
  const value = row[column];
  const got = value === undefined ? (column in row ? 'undefined' : 'no such column') : value === null ? 'null' : typeof value;
  return new Error(`column "${column}": expected ${expected}, got ${got}`);
}

export function text(row: Row, column: string): string {
  const v = row[column];
  if (typeof v !== 'string') throw wrong(row, column, 'text');
  return v;
}

export function textOrNull(row: Row, column: string): string | null {
  const v = row[column];
  if (v === null) return null;
  if (typeof v !== 'string') throw wrong(row, column, 'text or null');
  return v;
}

/** One of `values` (an enum column). */
export function oneOf<T extends string>(row: Row, column: string, values: readonly T[]): T {
  const v = row[column];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw wrong(row, column, values.join(' | '));
  return v as T;
}

export function int(row: Row, column: string): number {
  const v = row[column];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw wrong(row, column, 'an integer');
  return v;
}

/** float8 (a number from both drivers). */
export function float(row: Row, column: string): number {
  const v = row[column];
  if (typeof v !== 'number') throw wrong(row, column, 'a number');
  return v;
}

export function floatOrNull(row: Row, column: string): number | null {
  return row[column] === null ? null : float(row, column);
}

/** int8: text from node-postgres, bigint from Prisma. */
export function bigint(row: Row, column: string): bigint {
  const v = row[column];
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw wrong(row, column, 'an int8');
}

export function boolean(row: Row, column: string): boolean {
  const v = row[column];
  if (typeof v !== 'boolean') throw wrong(row, column, 'a boolean');
  return v;
}

export function date(row: Row, column: string): Date {
  const v = row[column];
  if (!(v instanceof Date)) throw wrong(row, column, 'a timestamp');
  return v;
}

export function dateOrNull(row: Row, column: string): Date | null {
  return row[column] === null ? null : date(row, column);
}

/** json/jsonb, already parsed by the driver; must be present (it may be JSON null). */
export function json(row: Row, column: string): unknown {
  if (!(column in row)) throw wrong(row, column, 'json');
  return row[column];
}

/** A json object column (e.g. stored results). */
export function jsonObject(row: Row, column: string): Record<string, unknown> {
  const v = row[column];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw wrong(row, column, 'a json object');
  return v as Record<string, unknown>;
}
