// Who may do what. Every resolver names one of these lists in @Authorized, so the whole policy
// is readable here (and walked by test/integration/auth-matrix.test.ts).
import { Role } from '../../generated/prisma/enums.js';

export { Role };
export type RoleName = keyof typeof Role;

/** Investigators work on cases, evidence and classification. */
export const CASEWORK: RoleName[] = ['INVESTIGATOR'];
/** Case records are read by the investigators who own them and by auditors. */
export const CASE_READERS: RoleName[] = ['INVESTIGATOR', 'AUDITOR'];
/** Admins own datasets, training, the registry and keys. */
export const ADMIN_ONLY: RoleName[] = ['ADMIN'];
/** What admins manage is also open to auditors, read-only. */
export const ADMIN_READERS: RoleName[] = ['ADMIN', 'AUDITOR'];
/** Anything every signed-in caller may read (e.g. which model is in production). */
export const ANY_ROLE: RoleName[] = ['INVESTIGATOR', 'ADMIN', 'AUDITOR'];

/** The caller behind a request: an API key, or the system itself (worker, bootstrap). */
export interface Principal {
  keyId: string;
  name: string;
  role: RoleName;
  /** The request it acts in (kept in every audit event it causes). */
  requestId?: string;
}
export type Actor = Principal | { system: string };

export const isPrincipal = (actor: Actor): actor is Principal => 'keyId' in actor;
export const actorKeyId = (actor: Actor): string | null => (isPrincipal(actor) ? actor.keyId : null);
/** Auditors read every case; everybody else reads only the cases they are members of. */
export const readsEveryCase = (p: Principal): boolean => p.role === 'AUDITOR';
export const actorRequestId = (actor: Actor): string | undefined => (isPrincipal(actor) ? actor.requestId : undefined);
export const actorLabel = (actor: Actor): string => (isPrincipal(actor) ? `key:${actor.name}` : `system:${actor.system}`);
