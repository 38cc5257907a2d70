import type { Response } from 'express';
import { parseReference } from '../../store/extract';

/** `Patient/id` of a reference to a Patient (relative, absolute or versioned); undefined otherwise. */
function patientRef(reference: unknown): string | undefined {
  const ref = parseReference(reference);
  return ref?.type === 'Patient' ? `Patient/${ref.id}` : undefined;
}

/**
 * The patients whose records these resources are: a Patient itself, and the `subject` or
 * `patient` a resource points at; Bundles are looked into. For handlers to put on
 * `res.locals.auditPatients` what they returned, so the audit can answer "who saw my record".
 */
export function patientsOf(resources: readonly unknown[]): string[] {
  const out = new Set<string>();
  const visit = (r: unknown): void => {
    if (r === null || typeof r !== 'object') return;
    const res = r as { resourceType?: unknown; id?: unknown; subject?: { reference?: unknown }; patient?: { reference?: unknown }; entry?: { resource?: unknown }[] };
    if (res.resourceType === 'Bundle' && Array.isArray(res.entry)) {
      for (const e of res.entry) visit(e?.resource);
      return;
    }
    if (res.resourceType === 'Patient' && typeof res.id === 'string') out.add(`Patient/${res.id}`);
    for (const ref of [res.subject?.reference, res.patient?.reference]) {
      const p = patientRef(ref);
      if (p) out.add(p);
    }
  };
  resources.forEach(visit);
  return [...out];
}

/**
 * For handlers: adds the patients of what they return (`Patient/id`) to the request's audit
 * event. `patients` is called only when an audit trail is mounted, so an unaudited app does no
 * work for it; stored resources know their patients (StoredResource.patients) without a parse.
 */
export function auditPatients(res: Response, patients: () => Iterable<string>): void {
  const known: unknown = res.locals.auditPatients;
  if (!Array.isArray(known)) return;
  res.locals.auditPatients = [...new Set([...(known as string[]), ...patients()])];
}

/**
 * The patients a search names: `patient` (id or reference), `subject` when it is a Patient
 * reference or carries the `:Patient` modifier, and `_id` of a Patient search. Chained
 * parameters (`patient.name`) name no one in particular and are left out.
 */
export function patientsOfSearch(type: string, params: readonly [string, string][]): string[] {
  const out = new Set<string>();
  for (const [name, value] of params) {
    const [base, modifier] = name.split(':', 2);
    if (base.includes('.')) continue;
    const byId = base === 'patient' || (base === 'subject' && modifier === 'Patient') || (type === 'Patient' && base === '_id');
    if (!byId && base !== 'subject') continue;
    for (const v of value.split(',')) {
      const p = patientRef(v) ?? (byId && /^[A-Za-z0-9\-.]{1,64}$/.test(v) ? `Patient/${v}` : undefined);
      if (p) out.add(p);
    }
  }
  return [...out];
}
