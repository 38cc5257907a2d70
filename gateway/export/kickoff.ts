/** The kick-off request of a bulk export, checked as the Bulk Data Access IG (v2) asks. */
import type { Request } from 'express';
import { badRequest } from '../../store/errors';
import { patientCompartmentTypes } from '../../store/compartment';
import { isKnownResourceType, resourceTypes } from '../../store/search-params';
import { forbiddenFor, mayAccess } from '../auth/require';
import type { Principal } from '../auth/principal';
import { preferHandling, queryPairs, sinceParam } from '../fhir/request';
import type { ExportLevel } from './jobs';

export const NDJSON_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];
const SUPPORTED = new Set(['_type', '_since', '_outputFormat']);

export interface Kickoff {
  types: string[];
  since?: string;
}

export function parseKickoff(req: Request, principal: Principal, level: ExportLevel): Kickoff {
  if (!/(^|[\s,;])respond-async(\s*($|[,;]))/i.test(req.get('Prefer') ?? '')) {
    throw badRequest('A bulk export needs the header Prefer: respond-async', ['Prefer']);
  }
  const pairs = queryPairs(req);
  // _typeFilter, _elements, patient, includeAssociatedData are the IG's, but not done here.
  const unknown = pairs.map(([k]) => k).filter((k) => !SUPPORTED.has(k));
  if (unknown.length > 0 && preferHandling(req) === 'strict') throw badRequest(`Parameter '${unknown[0]}' is not supported by $export`, [unknown[0]]);
  const params = new URLSearchParams(pairs);
  const format = params.get('_outputFormat');
  // An unencoded '+' in a query string arrives as a space: curl users rarely write %2B.
  if (format !== null && !NDJSON_FORMATS.includes(format.replace(/ /g, '+'))) {
    throw badRequest(`_outputFormat '${format}' is not supported; use application/fhir+ndjson`, ['_outputFormat']);
  }
  return { types: exportTypes(principal, level, params.getAll('_type')), since: sinceParam(params) };
}

/**
 * The types to export: those asked for, each of which the caller must be allowed to read and
 * search (403 naming the scope otherwise), or else every type it may (as $everything does):
 * all of them for a system export, the patient compartment's for Patient and Group.
 */
function exportTypes(p: Principal, level: ExportLevel, requested: string[]): string[] {
  const allowed = (t: string): boolean => mayAccess(p, t, 'r') && mayAccess(p, t, 's');
  const asked = [...new Set(requested.flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean))];
  if (asked.length === 0) return (level === 'system' ? resourceTypes() : patientCompartmentTypes()).filter(allowed);
  for (const t of asked) {
    if (!isKnownResourceType(t)) throw badRequest(`_type: unknown resource type '${t}'`, ['_type']);
    for (const i of ['r', 's'] as const) if (!mayAccess(p, t, i)) throw forbiddenFor(p, t, i);
  }
  return asked;
}
