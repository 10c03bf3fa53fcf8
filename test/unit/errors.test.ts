import { GraphQLError } from 'graphql';
import { AppError, formatGraphQLError } from '../../src/errors.js';

describe('formatGraphQLError', () => {
  it('keeps AppErrors with their code and details', () => {
    const err = new AppError('CONFLICT', 'Case is closed', { reference: 'X-1' });
    const out = formatGraphQLError({ message: err.message, path: ['a'] }, new GraphQLError('wrapped', { originalError: err }), () => undefined);
    expect(out).toMatchObject({ message: 'Case is closed', extensions: { code: 'CONFLICT', reference: 'X-1' } });
  });

  it('masks internal errors and hands the original to the logger', () => {
    const logged: unknown[] = [];
    const boom = new Error('connection string postgres://secret@db leaked');
    const out = formatGraphQLError({ message: boom.message, extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['x'] } }, new GraphQLError(boom.message, { originalError: boom }), (e) => logged.push(e));
    expect(out).toEqual({ message: 'Internal server error', path: undefined, locations: undefined, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(logged).toEqual([boom]);
  });

  it('turns class-validator failures into BAD_USER_INPUT with readable messages', () => {
    const original = Object.assign(new Error('Argument Validation Error'), { validationErrors: [{ property: 'title', constraints: { maxLength: 'title must be shorter than or equal to 200 characters' } }] });
    const out = formatGraphQLError({ message: 'x' }, new GraphQLError('x', { originalError: original }), () => undefined);
    expect(out).toMatchObject({ message: 'Invalid input: title must be shorter than or equal to 200 characters', extensions: { code: 'BAD_USER_INPUT' } });
  });
});
