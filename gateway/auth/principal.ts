import type { AccessContext } from '../../store/access';

/** One SMART v2 scope, e.g. `system/Observation.rs` -> { type: 'Observation', interactions: 'rs' }. */
export interface Scope {
  context: 'system' | 'user' | 'patient';
  /** A resource type, or '*'. */
  type: string;
  /** Subset of 'cruds', in that order. */
  interactions: string;
}

/**
 * The authenticated caller of a request (set on `res.locals.principal` by the auth middleware):
 * a registered client acting for one facility, optionally on behalf of a clinician named by an
 * external OpenID Connect token. Routes read it to check scopes, bind the store to `access`,
 * and name the caller in the audit.
 */
export interface Principal {
  clientId: string;
  /** Organization id of the facility the client belongs to. */
  facility: string;
  scopes: Scope[];
  /** The clinician, when the token came from the OIDC issuer (`fhirUser`, e.g. Practitioner/123). */
  user?: { fhirUser: string; name?: string };
  /** What the store lets this request see and write. */
  access: AccessContext;
}
