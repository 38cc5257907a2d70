/** PV1 to Encounter. */
import type { Coding, Encounter, EncounterParticipant } from '@medplum/fhirtypes';
import { identifierType, practitioner } from './datatypes';
import type { Er7Message, Er7Segment } from './er7';
import type { PatientRef } from './patient';
import type { ResultBuilder } from '../common/result';
import { V3_ACT_CODE, V3_PARTICIPATION_TYPE } from '../common/systems';

/** PV1-2 patient class (HL7 table 0004) as the Encounter class (v3 ActCode). */
const CLASS: Readonly<Record<string, Coding>> = {
  I: { system: V3_ACT_CODE, code: 'IMP', display: 'inpatient encounter' },
  O: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
  E: { system: V3_ACT_CODE, code: 'EMER', display: 'emergency' },
  P: { system: V3_ACT_CODE, code: 'PRENC', display: 'pre-admission' },
};

/** PV1 fields naming doctors, with their participation type. */
const PARTICIPANTS: readonly (readonly [number, string, string])[] = [
  [7, 'ATND', 'attender'],
  [8, 'REF', 'referrer'],
  [17, 'ADM', 'admitter'],
];

export interface VisitRef {
  /** `Encounter/<id>` */
  reference: string;
  /** PV1-19, the key of the Encounter's id. */
  visit: string;
}

export interface EncounterOptions {
  /** ADT events that open a visit must carry one. */
  required: boolean;
  /** The status the event sets (A01/A04 in-progress, A03 finished); otherwise derived from PV1-45. */
  status?: Encounter['status'];
  /** Status of a visit with no discharge time when the event does not say. */
  openStatus: Encounter['status'];
}

/**
 * The Encounter of the message's PV1, not yet added (ADT links diagnoses to it first), or
 * undefined when there is no PV1 or no visit number (PV1-19) and none is required.
 */
export function encounterOf(
  msg: Er7Message,
  patient: PatientRef,
  out: ResultBuilder,
  opts: EncounterOptions,
): { encounter: Encounter & { id: string }; ref: VisitRef } | undefined {
  const pv1 = opts.required ? msg.need('PV1', 'this event opens or closes a visit') : msg.first('PV1');
  if (!pv1) return undefined;
  const visit = opts.required ? pv1.need(19, 'visit number') : pv1.get(19);
  if (visit === undefined) return undefined;
  const patientClass = pv1.need(2, 'patient class');
  const cls = CLASS[patientClass.toUpperCase()];
  if (!cls) throw pv1.error(`${pv1.label(2)} patient class '${patientClass}' is not I, O, E or P`, 2, undefined, 'code-invalid');
  const start = pv1.dateTime(44);
  const end = pv1.dateTime(45);
  const location = locationDisplay(pv1);
  const participant = participants(pv1, out);
  const id = out.id('encounter', visit);
  const encounter: Encounter & { id: string } = {
    resourceType: 'Encounter',
    id,
    meta: out.meta(),
    identifier: [{ use: 'usual', type: identifierType('VN', '就诊流水号'), system: out.localSystem('visit-number'), value: visit }],
    status: opts.status ?? (end ? 'finished' : opts.openStatus),
    class: { ...cls },
    subject: { reference: patient.reference },
    ...(participant.length > 0 && { participant }),
    ...((start || end) && { period: { ...(start && { start }), ...(end && { end }) } }),
    ...(location && { location: [{ location: { display: location } }] }),
    serviceProvider: out.organization,
  };
  return { encounter, ref: { reference: `Encounter/${id}`, visit } };
}

/**
 * The visit a result, order or prescription belongs to, added create-only: the ADT feed owns
 * the Encounter, the copy here only keeps the reference resolvable until it arrives.
 */
export function visitCopy(msg: Er7Message, patient: PatientRef, out: ResultBuilder): VisitRef | undefined {
  const found = encounterOf(msg, patient, out, { required: false, openStatus: 'unknown' });
  if (!found) return undefined;
  out.add(found.encounter, true);
  return found.ref;
}

/** PV1-3 (PL): its description (.9), else point of care, room and bed. */
function locationDisplay(pv1: Er7Segment): string | undefined {
  const pl = pv1.field(3);
  return pl.get(9) ?? ([pl.get(1), pl.get(2), pl.get(3)].filter(Boolean).join(' ') || undefined);
}

function participants(pv1: Er7Segment, out: ResultBuilder): EncounterParticipant[] {
  const list: EncounterParticipant[] = [];
  for (const [field, code, display] of PARTICIPANTS) {
    for (const rep of pv1.reps(field)) {
      const individual = practitioner(rep, out);
      if (individual) list.push({ type: [{ coding: [{ system: V3_PARTICIPATION_TYPE, code, display }] }], individual });
    }
  }
  return list;
}
