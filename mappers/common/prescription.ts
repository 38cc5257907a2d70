/** A prescription line (处方明细) as flat fields carry it: MedicationRequest, and the Medication it names. */
import type { Dosage, Medication, MedicationRequest } from '@medplum/fhirtypes';
import { formatLocation, MappingError, type SourceLocation } from '../types';
import { frequency, route } from './dosage';
import { localConcept } from './local-code';
import type { ResultBuilder } from './result';
import { quantity, ucumQuantity } from './units';

export interface PrescriptionLine {
  /** 处方号: shared by the lines of one prescription; with the drug code, a line's local id. */
  number: string;
  /** `Patient/<id>` */
  patient: string;
  /** `Encounter/<id>` */
  encounter?: string;
  authoredOn: string;
  prescriber?: string;
  drugCode: string;
  drugName: string;
  /** 规格 (5mg*28片): part of what the facility's drug code names. */
  spec?: string;
  dose?: number;
  doseUnit?: string;
  /** qd, bid, q8h, prn ... */
  frequency?: string;
  /** 口服, 静滴 ... */
  route?: string;
  /** Days supplied (天数). */
  days?: number;
  quantity?: number;
  quantityUnit?: string;
}

/** Where a field of the line was read, for errors and warnings. */
export type PrescriptionAt = (field: 'drugCode' | 'dose' | 'doseUnit' | 'frequency' | 'quantityUnit') => SourceLocation;

/**
 * Adds the line's MedicationRequest and the Medication of the facility's drug catalogue it
 * references (ATC beside the local code where the source's ConceptMap has it).
 */
export function addPrescription(out: ResultBuilder, p: PrescriptionLine, at: PrescriptionAt): void {
  const medication: Medication & { id: string } = {
    resourceType: 'Medication',
    id: out.id('medication', p.drugCode),
    meta: out.meta(),
    code: { ...localConcept(out, 'drug', p.drugCode, p.drugName), text: p.spec ? `${p.drugName} ${p.spec}` : p.drugName },
  };
  out.add(medication);
  const request: MedicationRequest & { id: string } = {
    resourceType: 'MedicationRequest',
    id: out.id('medreq', `${p.number}|${p.drugCode}`),
    meta: out.meta(),
    groupIdentifier: { system: out.localSystem('prescription'), value: p.number },
    status: 'active',
    intent: 'order',
    medicationReference: { reference: `Medication/${medication.id}`, display: medication.code!.text },
    subject: { reference: p.patient },
    ...(p.encounter && { encounter: { reference: p.encounter } }),
    authoredOn: p.authoredOn,
    ...(p.prescriber && { requester: { display: p.prescriber } }),
    dosageInstruction: [dosage(out, p, at)],
    ...((p.quantity !== undefined || p.days !== undefined) && {
      dispenseRequest: {
        ...(p.quantity !== undefined && { quantity: quantity(p.quantity, p.quantityUnit, unknownUnit(out, at('quantityUnit'))) }),
        ...(p.days !== undefined && { expectedSupplyDuration: ucumQuantity(p.days, 'd') }),
      },
    }),
  };
  if (!out.add(request)) throw new MappingError('the drug appears twice in the prescription', at('drugCode'), 'value');
}

function dosage(out: ResultBuilder, p: PrescriptionLine, at: PrescriptionAt): Dosage {
  if (p.dose === undefined && !p.frequency && !p.route) throw new MappingError('the line gives no dose, frequency or route', at('dose'), 'required');
  // 5 of what: a dose without its unit cannot be given safely.
  if (p.dose !== undefined && !p.doseUnit) throw new MappingError('required when a dose is given', at('doseUnit'), 'required');
  const freq = p.frequency ? frequency(p.frequency) : undefined;
  if (p.frequency && !freq) out.warn(formatLocation(at('frequency')), `frequency '${p.frequency}' is not one this gateway knows; kept as text`);
  const dose = p.dose === undefined ? undefined : `${p.dose}${p.doseUnit!}`;
  return {
    // As the prescription reads: 5mg qd 口服.
    text: [dose, p.frequency, p.route].filter(Boolean).join(' '),
    ...(p.frequency && { timing: { ...(freq?.repeat && { repeat: freq.repeat }), code: { text: p.frequency } } }),
    ...(freq?.asNeeded && { asNeededBoolean: true }),
    ...(p.route && { route: route(p.route) }),
    ...(p.dose !== undefined && { doseAndRate: [{ doseQuantity: quantity(p.dose, p.doseUnit, unknownUnit(out, at('doseUnit'))) }] }),
  };
}

const unknownUnit =
  (out: ResultBuilder, at: SourceLocation) =>
  (unit: string): void =>
    out.warn(formatLocation(at), `unit '${unit}' has no UCUM code; kept as text`);
