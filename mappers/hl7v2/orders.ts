/** ORM^O01 / OMG^O19 (and the order behind an ORU result) to ServiceRequest. */
import type { CodeableConcept, Identifier, ServiceRequest } from '@medplum/fhirtypes';
import { MappingError } from '../types';
import { codeable } from './coding';
import { orderIdentifier, practitioner } from './datatypes';
import { diagnosisCode } from './diagnosis';
import { visitCopy, type VisitRef } from './encounter';
import type { Er7Field, Er7Message, Er7Segment } from './er7';
import { noteText, orderGroups, type OrderGroup } from './groups';
import { patientOf, type PatientRef } from './patient';
import type { ResultBuilder } from '../common/result';
import { reportCategory, sectionOf, type Section } from './sections';

/** An order's state, in MedicationRequest's words; ServiceRequest folds cancelled and stopped into revoked. */
type OrderStatus = 'active' | 'on-hold' | 'cancelled' | 'stopped' | 'completed' | 'entered-in-error';

/** ORC-1 order control (HL7 table 0119); null: the code says nothing of the order's state (see ORC-5). */
const ORDER_CONTROL: Readonly<Record<string, OrderStatus | null>> = {
  NW: 'active', OK: 'active', XO: 'active', XX: 'active', RL: 'active', RO: 'active', SN: 'active', NA: 'active',
  HD: 'on-hold', OH: 'on-hold',
  CA: 'cancelled', CR: 'cancelled', OC: 'cancelled', UC: 'cancelled',
  DC: 'stopped', DR: 'stopped', OD: 'stopped',
  SC: null, RE: null, SS: null,
};
/** ORC-5 order status (HL7 table 0038). */
const ORDER_STATUS: Readonly<Record<string, OrderStatus>> = {
  A: 'active', IP: 'active', SC: 'active', HD: 'on-hold', CA: 'cancelled', DC: 'stopped', RP: 'stopped', CM: 'completed', ER: 'entered-in-error',
};
/** TQ1-9 / TQ.6 priority (HL7 table 0027). */
const PRIORITY: Readonly<Record<string, ServiceRequest['priority']>> = { S: 'stat', A: 'asap', R: 'routine' };

/** ORC-5 when sent (it is the state), else what ORC-1 implies; undefined when neither says. */
export function orderStatus(orc: Er7Segment | undefined): OrderStatus | undefined {
  if (!orc) return undefined;
  const status = orc.get(5);
  if (status !== undefined) {
    const s = ORDER_STATUS[status.toUpperCase()];
    if (!s) throw orc.error(`${orc.label(5)} order status '${status}' is not an HL7 table 0038 code`, 5, undefined, 'code-invalid');
    return s;
  }
  const control = orc.get(1);
  if (control === undefined) return undefined;
  const c = ORDER_CONTROL[control.toUpperCase()];
  if (c === undefined) throw orc.error(`${orc.label(1)} order control '${control}' is not an HL7 table 0119 code`, 1, undefined, 'code-invalid');
  return c ?? undefined;
}

const serviceRequestStatus = (s: OrderStatus): ServiceRequest['status'] => (s === 'cancelled' || s === 'stopped' ? 'revoked' : s);

/** ORC-2, else OBR-2: the placer order number (EI). */
export function placerField(orc: Er7Segment | undefined, obr: Er7Segment | undefined): Er7Field | undefined {
  if (orc?.get(2) !== undefined) return orc.field(2);
  if (obr?.get(2) !== undefined) return obr.field(2);
  return undefined;
}

/** The placer number (ORC-2, else OBR-2) and, once the filler has one, its number (OBR-3, else ORC-3). */
function orderIdentifiers(orc: Er7Segment, obr: Er7Segment, out: ResultBuilder): Identifier[] {
  const placer = placerField(orc, obr);
  const filler = obr.get(3) !== undefined ? obr.field(3) : orc.field(3);
  return [placer && orderIdentifier(placer, 'PLAC', out), orderIdentifier(filler, 'FILL', out)].filter((i): i is Identifier => !!i);
}

export interface OrderSubject {
  patient: PatientRef;
  visit?: VisitRef;
}

/** An ORDER group with both its segments. */
type CompleteOrder = Required<OrderGroup>;

/** The ServiceRequest of an ORC/OBR pair; `rest` holds the TQ1, NTE and DG1 that describe it. */
function serviceRequest(g: CompleteOrder, section: Section, code: CodeableConcept, subject: OrderSubject, out: ResultBuilder): ServiceRequest & { id: string } {
  const { orc, main: obr, rest } = g;
  const placer = placerField(orc, obr)?.get(1);
  if (placer === undefined) throw orc.missing(2, 'placer order number');
  const status = orderStatus(orc);
  if (status === undefined) throw orc.missing(1, 'order control');
  const priority = priorityOf(g, out);
  const authoredOn = orc.dateTime(9);
  const requester = practitioner(orc.field(12), out) ?? practitioner(obr.field(16), out);
  const reasonCode = [
    ...obr.reps(31).map((r) => codeable(r, 'diagnosis', out)),
    ...rest.filter((s) => s.id === 'DG1').map((dg1) => diagnosisCode(dg1, out)),
  ].filter((c): c is CodeableConcept => c !== undefined);
  const note = rest.filter((s) => s.id === 'NTE').map(noteText).filter((t): t is string => t !== undefined);
  // ORC-4, the placer group number: the requisition several orders were placed under.
  const requisition = orc.get(4) === undefined ? undefined : orderIdentifier(orc.field(4), 'PGN', out);
  return {
    resourceType: 'ServiceRequest',
    id: out.id('order', placer),
    meta: out.meta(),
    identifier: orderIdentifiers(orc, obr, out),
    ...(requisition && { requisition }),
    status: serviceRequestStatus(status),
    intent: 'order',
    category: reportCategory(section),
    ...(priority && { priority }),
    code,
    subject: { reference: subject.patient.reference },
    ...(subject.visit && { encounter: { reference: subject.visit.reference } }),
    ...(authoredOn && { authoredOn }),
    ...(requester && { requester }),
    ...(reasonCode.length > 0 && { reasonCode }),
    ...(note.length > 0 && { note: note.map((text) => ({ text })) }),
  };
}

/** TQ1-9, else OBR-27.6, else ORC-7.6 (TQ.6). */
function priorityOf(g: CompleteOrder, out: ResultBuilder): ServiceRequest['priority'] | undefined {
  const sources: [Er7Segment | undefined, number, number | undefined][] = [
    [g.rest.find((s) => s.id === 'TQ1'), 9, undefined],
    [g.main, 27, 6],
    [g.orc, 7, 6],
  ];
  for (const [seg, field, component] of sources) {
    const raw = seg?.get(field, component ?? 1);
    if (raw === undefined) continue;
    const priority = PRIORITY[raw.toUpperCase()];
    if (!priority) out.warn(seg!.label(field, component), `priority '${raw}' is not S, A or R; left out`);
    return priority;
  }
  return undefined;
}

/** ORM^O01, OMG^O19: one ServiceRequest per ORC/OBR, written as the ordering system's own. */
export function mapOrders(msg: Er7Message, out: ResultBuilder): void {
  const patient = patientOf(msg, out, true, 'an order is for a patient');
  const subject = { patient, visit: visitCopy(msg, patient, out) };
  const groups = orderGroups(msg, 'OBR');
  if (groups.length === 0) throw new MappingError('ORC segment is required: the message holds no order', { segment: 'ORC' }, 'required');
  for (const g of groups) {
    const { orc, main: obr, rest } = g;
    if (!obr) throw new MappingError(`OBR segment is required: ${orc!.label()} has no OBR`, { segment: 'OBR' }, 'required');
    if (!orc) throw new MappingError(`ORC segment is required: ${obr.label()} has no ORC to give the order's state`, { segment: 'ORC' }, 'required');
    const section = sectionOf(obr, out);
    const code = codeable(obr.field(4), section.codeKind, out);
    if (!code) throw obr.missing(4, 'universal service identifier');
    const request = serviceRequest({ orc, main: obr, rest }, section, code, subject, out);
    if (!out.add(request)) throw orc.error(`placer order number '${placerField(orc, obr)!.get(1)}' appears twice in the message`, 2, undefined, 'value');
  }
}
