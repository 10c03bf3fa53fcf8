// The one role check behind @Authorized and the command-line tools: no database, no server.
import { AppError } from '../../src/errors.js';
import { authorize, NO_KEY_MESSAGE } from '../../src/modules/auth/authorize.js';
import { ADMIN_ONLY, ADMIN_READERS, type Principal } from '../../src/modules/auth/roles.js';

const key = (role: Principal['role']): Principal => ({ keyId: '6b1f0a3e-1111-4222-8333-944445555666', name: `${role.toLowerCase()} key`, role });

describe('authorize', () => {
  it('returns the principal when its role is allowed, or when any role is', () => {
    const admin = key('ADMIN');
    expect(authorize(admin, ADMIN_ONLY, 'Mutation.createDataset')).toBe(admin);
    const auditor = key('AUDITOR');
    expect(authorize(auditor, ADMIN_READERS, 'Query.datasets')).toBe(auditor);
    expect(authorize(key('INVESTIGATOR'), [], 'Query.viewer').role).toBe('INVESTIGATOR');
  });

  it('refuses another role as FORBIDDEN, naming the key, its role, the action and the roles that may', () => {
    expect(() => authorize(key('INVESTIGATOR'), ADMIN_ONLY, 'importing into a dataset')).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN', message: 'The API key "investigator key" has the INVESTIGATOR role; importing into a dataset needs a key with the ADMIN role' }),
    );
    expect(() => authorize(key('INVESTIGATOR'), ADMIN_READERS, 'Query.datasets')).toThrow(
      expect.objectContaining({ code: 'FORBIDDEN', message: 'The API key "investigator key" has the INVESTIGATOR role; Query.datasets needs a key with the ADMIN or AUDITOR role' }),
    );
  });

  it('refuses a missing principal as UNAUTHENTICATED, with the reason the key was refused when there is one', () => {
    for (const none of [null, undefined]) {
      expect(() => authorize(none, ADMIN_ONLY, 'Query.datasets')).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED', message: NO_KEY_MESSAGE }));
      // Even an operation open to every role needs a key.
      expect(() => authorize(none, [], 'Query.viewer')).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    }
    const revoked = new AppError('UNAUTHENTICATED', 'The API key has been revoked');
    expect(() => authorize(null, ADMIN_ONLY, 'Query.datasets', revoked)).toThrow(revoked);
  });
});
