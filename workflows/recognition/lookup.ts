/**
 * Reads what recognition needs for one person: results and the facilities' names, through
 * the caller's access-bound store, so what the caller may not see never becomes a card.
 */
import type { Organization, ServiceRequest } from '@medplum/fhirtypes';
import type { PatientIndex } from '../../mpi';
import { authorOf } from '../../store/access-labels';
import type { Repository } from '../../store/repository';
import { acceptedCodes, LOINC, loincCodes, recognise, type Recognised, type RecognitionRules, type Result } from './match';

export interface Found extends Recognised {
  /** The facility that produced the result: its Organization's name, else its id. */
  facility: string;
}

const MAX_RESULTS = 1000;

/** Every Patient id of the person `patientId` belongs to: the golden record and each registration. */
export async function personIds(repo: Repository, mpi: PatientIndex | undefined, patientId: string): Promise<string[]> {
  const person = await mpi?.person(repo.executor, patientId);
  return person ? [person.goldenId, ...person.members] : [patientId];
}

export async function findRecognised(store: Repository, patientIds: string[], orders: ServiceRequest[], now: Date, rules: RecognitionRules): Promise<Found[]> {
  const codes = [...new Set(orders.flatMap((o) => loincCodes(o.code).flatMap((c) => [...acceptedCodes(rules, c)])))];
  if (codes.length === 0) return [];
  const params: [string, string][] = [
    ['patient', patientIds.map((id) => `Patient/${id}`).join(',')],
    ['code', codes.map((c) => `${LOINC}|${c}`).join(',')],
    ['status', 'final,amended,corrected'],
  ];
  const results: Result[] = [];
  for (const type of ['Observation', 'DiagnosticReport']) {
    const page = await store.search(type, params, {}, MAX_RESULTS);
    results.push(...page.matches.map((m) => m.resource as Result));
  }
  const names = new Map<string, string>();
  const found: Found[] = [];
  for (const r of recognise(orders, results, now, rules)) {
    const org = facilityOf(r.result);
    if (org && !names.has(org)) names.set(org, await organizationName(store, org));
    found.push({ ...r, facility: org ? names.get(org)! : 'unknown facility' });
  }
  return found;
}

/** The performing Organization when the result names one, else the facility that wrote it. */
function facilityOf(r: Result): string | undefined {
  const performer = (r.performer ?? []).map((p) => p.reference).find((ref) => ref?.startsWith('Organization/'));
  return performer?.slice('Organization/'.length) ?? authorOf(r) ?? undefined;
}

async function organizationName(store: Repository, id: string): Promise<string> {
  try {
    return ((await store.read('Organization', id)).resource as Organization).name ?? id;
  } catch {
    // Not registered, or not visible: the id still says which facility.
    return id;
  }
}
