// Bounds on every free-text argument, stated in the schema. Input types bound their fields with
// class-validator's @MaxLength (and say so in the field description); plain String arguments are
// checked by the global middleware below, by argument name, so that no text argument is unbounded
// (a 100,000-character reason would otherwise enter the immutable audit log).
import type { MiddlewareFn } from 'type-graphql';
import { badInput } from '../errors.js';

export const TEXT_LIMITS = {
  /** Key, dataset and other names. */
  name: 100,
  title: 200,
  reference: 64,
  note: 2000,
  reason: 1000,
  description: 10000,
  /** Search text and the string fields of filters. */
  filter: 200,
  /** Opaque pagination cursors. */
  cursor: 512,
} as const;
export type TextKind = keyof typeof TEXT_LIMITS;

/** Any String argument not named below. */
export const DEFAULT_TEXT_LIMIT = 1000;

const LIMIT_BY_ARGUMENT: Record<string, number> = {
  reason: TEXT_LIMITS.reason,
  note: TEXT_LIMITS.note,
  reference: TEXT_LIMITS.reference,
  after: TEXT_LIMITS.cursor,
};

/** The description that states an argument's or field's limit. */
export const textLimit = (kind: TextKind, description?: string): string => `${description ? `${description}. ` : ''}At most ${TEXT_LIMITS[kind]} characters`;

/** Refuses any String argument longer than its limit, before the resolver runs. */
export const textArgumentLimits: MiddlewareFn = ({ args }, next) => {
  for (const name in args) {
    const value = args[name];
    if (typeof value !== 'string') continue;
    const max = LIMIT_BY_ARGUMENT[name] ?? DEFAULT_TEXT_LIMIT;
    if (value.length > max) throw badInput(`${name} is longer than ${max} characters (${value.length})`, { argument: name, maxLength: max });
  }
  return next();
};
