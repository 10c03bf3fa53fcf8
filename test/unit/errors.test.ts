import { GraphQLError } from 'graphql';
import { AppError, toClientError } from '../../src/errors.js';
import { ImageDecodeError, InferenceUnavailableError } from '../../src/ml/errors.js';

describe('toClientError', () => {
  it('keeps AppErrors with their code and details', () => {
    const err = new AppError('CONFLICT', 'Case is closed', { reference: 'X-1' });
    const { formatted: out, internal } = toClientError({ message: err.message, path: ['a'] }, new GraphQLError('wrapped', { originalError: err }));
    expect(internal).toBeUndefined();
    expect(out).toMatchObject({ message: 'Case is closed', extensions: { code: 'CONFLICT', reference: 'X-1' } });
  });

  it('masks internal errors and hands the original to the logger', () => {
    const boom = new Error('connection string postgres://secret@db leaked');
    const { formatted: out, internal } = toClientError({ message: boom.message, extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['x'] } }, new GraphQLError(boom.message, { originalError: boom }));
    expect(out).toEqual({ message: 'Internal server error', path: undefined, locations: undefined, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(internal).toBe(boom);
  });

  it('turns class-validator failures into BAD_USER_INPUT with readable messages', () => {
    const original = Object.assign(new Error('Argument Validation Error'), { validationErrors: [{ property: 'title', constraints: { maxLength: 'title must be shorter than or equal to 200 characters' } }] });
    const { formatted: out } = toClientError({ message: 'x' }, new GraphQLError('x', { originalError: original }));
    expect(out).toMatchObject({ message: 'Invalid input: title must be shorter than or equal to 200 characters', extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('answers an image the engine refuses as the caller\'s mistake, never INTERNAL', () => {
    const refused = new ImageDecodeError('not a decodable image: Input image exceeds pixel limit');
    const { formatted: out, internal } = toClientError({ message: 'x' }, new GraphQLError('x', { originalError: refused }));
    expect(out).toMatchObject({ message: expect.stringContaining('exceeds pixel limit'), extensions: { code: 'BAD_USER_INPUT' } });
    expect(internal).toBeUndefined();
  });

  it('answers a dead inference thread like any dependency outage: retryable, named, with a wait', () => {
    const died = new InferenceUnavailableError('an inference worker thread stopped (exit code 3); try the request again');
    const { formatted: out, internal } = toClientError({ message: 'x' }, new GraphQLError('x', { originalError: died }));
    expect(out.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', dependency: 'inference', retryAfterSeconds: 5 });
    expect(internal).toBeUndefined();
  });
});
