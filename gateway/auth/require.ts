import type { RequestHandler, Response } from 'express';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';
import type { Principal } from './principal';
import { allows, type Interaction } from './scopes';

const VERB: Readonly<Record<Interaction, string>> = { c: 'Creating', r: 'Reading', u: 'Updating', d: 'Deleting', s: 'Searching' };

/** The request's principal; a route reached without authentication fails closed. */
export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw new FhirError(401, 'login', 'This endpoint needs a bearer token');
  return p;
}

export const isOffice = (p: Principal): boolean => p.access.unrestricted === true;

/** Whether `p` may perform `interaction` on `type`: its scopes, and AuditEvents only for the office. */
export function mayAccess(p: Principal, type: string, interaction: Interaction): boolean {
  if (type === 'AuditEvent' && (interaction === 'r' || interaction === 's') && !isOffice(p)) return false;
  return allows(p.scopes, type, interaction);
}

/** 403 OperationOutcome (`forbidden`) naming the scope that is missing. */
export function forbiddenFor(p: Principal, type: string, interaction: Interaction): FhirError {
  if (type === 'AuditEvent' && !isOffice(p) && (interaction === 'r' || interaction === 's')) {
    return new FhirError(403, 'forbidden', 'AuditEvents are readable by the consortium office only');
  }
  return new FhirError(403, 'forbidden', `${VERB[interaction]} ${type === '*' ? 'every resource type' : type} needs the scope ${p.user ? 'user' : 'system'}/${type}.${interaction}`);
}

export function requireScope(res: Response, type: string, ...interactions: Interaction[]): Principal {
  const p = principalOf(res);
  for (const i of interactions) if (!mayAccess(p, type, i)) throw forbiddenFor(p, type, i);
  return p;
}

export function requireOffice(res: Response, what: string): Principal {
  const p = principalOf(res);
  if (!isOffice(p)) throw new FhirError(403, 'forbidden', `${what} is for the consortium office only`);
  return p;
}

/** How the audit and the patient index name who acted: the client, and the clinician when there is one. */
export const operatorName = (p: Principal): string => (p.user ? `${p.clientId} (${p.user.fhirUser})` : p.clientId);

/** Middleware form of requireOffice, for routers that are not ours (the queue dashboard). */
export const officeOnly =
  (what: string): RequestHandler =>
  (_req, res, next) => {
    requireOffice(res, what);
    next();
  };

/** The store as this request's caller may see and write it (store/access.ts). */
export function storeFor(repo: Repository, res: Response): Repository {
  return repo.withAccess(principalOf(res).access);
}
