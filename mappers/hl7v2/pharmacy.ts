/** RDE^O11 to MedicationRequest (+ Medication when the drug is coded). */
import type { CodeableConcept, Dosage, Medication, MedicationRequest } from '@medplum/fhirtypes';
import { MappingError } from '../types';
import { codeable, sourceCodeKey } from './coding';
import { orderIdentifier, practitioner } from './datatypes';
import { visitCopy } from './encounter';
import type { Er7Field, Er7Message, Er7Segment } from './er7';
import { noteText, orderGroups } from './groups';
import { orderStatus, type OrderSubject } from './orders';
import { patientOf } from './patient';
import type { ResultBuilder } from '../common/result';
import { routeCoding } from '../common/dosage';
import { dosageTiming, type TimingParts } from './timing';
import { quantity, unitOf } from './units';

export function mapPharmacy(msg: Er7Message, out: ResultBuilder): void {
  const patient = patientOf(msg, out, true, 'a prescription is for a patient');
  const subject = { patient, visit: visitCopy(msg, patient, out) };
  const groups = orderGroups(msg, 'RXE');
  if (groups.length === 0) throw new MappingError('RXE segment is required: the message holds no prescription', { segment: 'RXE' }, 'required');
  for (const g of groups) {
    if (!g.main) throw new MappingError(`RXE segment is required: ${g.orc!.label()} has no RXE`, { segment: 'RXE' }, 'required');
    if (!g.orc) throw new MappingError(`ORC segment is required: ${g.main.label()} has no ORC`, { segment: 'ORC' }, 'required');
    const request = medicationRequest(g.orc, g.main, g.rest, subject, out);
    if (!out.add(request)) throw g.orc.error(`${g.orc.label(2)} placer order number '${g.orc.get(2)}' appears twice in the message`, 2, undefined, 'value');
  }
}

function medicationRequest(orc: Er7Segment, rxe: Er7Segment, rest: readonly Er7Segment[], subject: OrderSubject, out: ResultBuilder): MedicationRequest & { id: string } {
  const placer = orc.need(2, 'placer order number');
  const status = orderStatus(orc);
  if (status === undefined) throw orc.missing(1, 'order control');
  const medication = medicationOf(rxe, out);
  const dosage = dosageOf(rxe, rest, out);
  const dispense = dispenseOf(rxe, out);
  const authoredOn = orc.dateTime(9);
  const requester = practitioner(orc.field(12), out);
  const filler = orc.get(3) === undefined ? undefined : orderIdentifier(orc.field(3), 'FILL', out);
  // ORC-4, the placer group number: the prescription (处方号) the line belongs to.
  const groupIdentifier = orc.get(4) === undefined ? undefined : orderIdentifier(orc.field(4), 'PGN', out);
  const note = rest.filter((s) => s.id === 'NTE').map(noteText).filter((t): t is string => t !== undefined);
  return {
    resourceType: 'MedicationRequest',
    id: out.id('medreq', placer),
    meta: out.meta(),
    identifier: [orderIdentifier(orc.field(2), 'PLAC', out)!, ...(filler ? [filler] : [])],
    ...(groupIdentifier && { groupIdentifier }),
    status,
    intent: 'order',
    ...medication,
    subject: { reference: subject.patient.reference },
    ...(subject.visit && { encounter: { reference: subject.visit.reference } }),
    ...(authoredOn && { authoredOn }),
    ...(requester && { requester }),
    ...(note.length > 0 && { note: note.map((text) => ({ text })) }),
    ...(dosage && { dosageInstruction: [dosage] }),
    ...(dispense && { dispenseRequest: dispense }),
  };
}

/** RXE-2 give code: a Medication of the facility's drug catalogue when coded, else the name alone. */
function medicationOf(rxe: Er7Segment, out: ResultBuilder): Pick<MedicationRequest, 'medicationReference' | 'medicationCodeableConcept'> {
  const give = rxe.field(2);
  const code = codeable(give, 'drug', out);
  if (!code) throw rxe.missing(2, 'give code');
  const key = sourceCodeKey(give);
  if (give.get(1) === undefined || key === undefined) return { medicationCodeableConcept: code };
  const form = rxe.get(6, 2) ?? rxe.get(6);
  const medication: Medication & { id: string } = {
    resourceType: 'Medication',
    id: out.id('medication', key),
    meta: out.meta(),
    code,
    ...(form && { form: { text: form } }),
  };
  out.add(medication);
  return { medicationReference: { reference: `Medication/${medication.id}`, ...(code.text && { display: code.text }) } };
}

function dosageOf(rxe: Er7Segment, rest: readonly Er7Segment[], out: ResultBuilder): Dosage | undefined {
  const unknownUnit = (u: string): void => out.warn(rxe.label(5), `unit '${u}' has no UCUM mapping; kept as text`);
  const unit = unitOf(rxe.field(5));
  const min = rxe.number(3);
  const max = rxe.number(4);
  const doseAndRate: Dosage['doseAndRate'] =
    min === undefined
      ? undefined
      : [max !== undefined && max !== min ? { doseRange: { low: quantity(min, unit, unknownUnit), high: quantity(max, unit, unknownUnit) } } : { doseQuantity: quantity(min, unit, unknownUnit) }];
  const rxr = rest.find((s) => s.id === 'RXR');
  const route = rxr && routeOf(rxr.field(1));
  const { timing, asNeeded } = dosageTiming(timingParts(rxe, rest.find((s) => s.id === 'TQ1')), out);
  const text = rxe
    .reps(7)
    .map((r) => r.get(2) ?? r.get(1))
    .filter((t): t is string => t !== undefined)
    .join('；');
  if (!doseAndRate && !route && !timing && !asNeeded && !text) return undefined;
  return {
    ...(text && { text }),
    ...(timing && { timing }),
    ...(asNeeded && { asNeededBoolean: true }),
    ...(route && { route }),
    ...(doseAndRate && { doseAndRate }),
  };
}

/** TQ1 (v2.5 and later) when present, else the TQ of RXE-1 (frequency .2, duration .3, start .4, end .5). */
function timingParts(rxe: Er7Segment, tq1: Er7Segment | undefined): TimingParts {
  if (tq1) {
    const frequency = tq1.get(3, 1, 1);
    const amount = tq1.number(6, 1);
    return {
      ...(frequency !== undefined && { frequency: { code: frequency, where: tq1.label(3) } }),
      ...(amount !== undefined && { serviceDuration: { value: amount, unit: tq1.get(6, 2) ?? '', where: tq1.label(6) } }),
      start: tq1.dateTime(7),
      end: tq1.dateTime(8),
    };
  }
  const frequency = rxe.get(1, 2);
  const duration = rxe.get(1, 3);
  return {
    ...(frequency !== undefined && { frequency: { code: frequency, where: rxe.label(1, 2) } }),
    ...(duration !== undefined && { tqDuration: { raw: duration, where: rxe.label(1, 3) } }),
    start: rxe.dateTime(1, 4),
    end: rxe.dateTime(1, 5),
  };
}

/** RXR-1: table 0162 when the code or the words are known, the sender's words always. */
function routeOf(f: Er7Field): CodeableConcept | undefined {
  const code = f.get(1);
  const text = f.get(2);
  if (code === undefined && text === undefined) return undefined;
  const coding = (code && routeCoding(code)) || (text && routeCoding(text));
  return { ...(coding && { coding: [coding] }), text: text ?? code };
}

/** RXE-10/11 dispense amount and units, RXE-12 number of refills. */
function dispenseOf(rxe: Er7Segment, out: ResultBuilder): MedicationRequest['dispenseRequest'] | undefined {
  const amount = rxe.number(10);
  const refills = rxe.number(12);
  if (refills !== undefined && (!Number.isInteger(refills) || refills < 0)) {
    throw rxe.error(`${rxe.label(12)} number of refills '${refills}' is not a whole number`, 12, undefined, 'value');
  }
  if (amount === undefined && refills === undefined) return undefined;
  const unknownUnit = (u: string): void => out.warn(rxe.label(11), `unit '${u}' has no UCUM mapping; kept as text`);
  return {
    ...(refills !== undefined && { numberOfRepeatsAllowed: refills }),
    ...(amount !== undefined && { quantity: quantity(amount, unitOf(rxe.field(11)), unknownUnit) }),
  };
}
