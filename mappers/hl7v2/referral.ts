/**
 * REF^I12 (patient referral) and REF^I14 (cancel patient referral) to the consortium's
 * referral pair (common/referral.ts).
 *
 * - RF1-6 originating referral identifier: the ids, so a resent I12 updates the referral and
 *   an I14 cancels that same one.
 * - RF1-3 referral type: the direction, UP / DOWN (or 上转 / 下转); HL7 has no field for it.
 * - RF1-2 priority (table 0280: S stat, A asap, R routine), RF1-10 reason, RF1-9 process
 *   date (else RF1-7 effective date, else MSH-7) as authoredOn.
 * - PRD-1 role RP referring / RT referred-to provider; the facility is PRD-7.1 (provider
 *   identifier), else PRD-4.4 (the location's facility), named by Organization id or HL7
 *   namespace. RT must be a consortium facility; RP, if sent, must be the sender's own.
 * - DG1: Conditions, and OBR/OBX: lab Observations, referenced from supportingInfo.
 */
import type { Reference } from '@medplum/fhirtypes';
import { addReferral, consortiumFacility, REFERRAL_KIND } from '../common/referral';
import type { ResultBuilder } from '../common/result';
import type { Direction } from '../../profiles/referral';
import { MappingError } from '../types';
import { codeable } from './coding';
import { orderIdentifier } from './datatypes';
import { conditionFromDg1 } from './diagnosis';
import type { Er7Message, Er7Segment } from './er7';
import { orderGroups } from './groups';
import { observationFromObx, obxStatus } from './observation';
import { patientOf, type PatientRef } from './patient';
import { sectionOf } from './sections';
import { hl7DateTime } from './datetime';

/** HL7 table 0280 referral priority. */
const PRIORITY = { S: 'stat', A: 'asap', R: 'routine' } as const;
const DIRECTIONS: Readonly<Record<string, Direction>> = { UP: 'up', 上转: 'up', DOWN: 'down', 下转: 'down' };

export function mapReferral(msg: Er7Message, trigger: 'I12' | 'I14', out: ResultBuilder): void {
  const rf1 = msg.need('RF1', 'a referral message carries the referral in RF1');
  const localId = rf1.need(6, 'originating referral identifier');
  const patient = patientOf(msg, out, true, 'a referral is for a patient');
  const direction = DIRECTIONS[rf1.get(3)?.toUpperCase() ?? ''];
  if (!direction) {
    if (rf1.get(3) === undefined) throw rf1.missing(3, 'referral type: UP or DOWN');
    throw rf1.error(`${rf1.label(3)} referral type '${rf1.get(3)}' is neither UP (上转) nor DOWN (下转)`, 3, undefined, 'code-invalid');
  }
  const rawPriority = rf1.get(2)?.toUpperCase();
  const priority = rawPriority === undefined ? undefined : PRIORITY[rawPriority as keyof typeof PRIORITY];
  if (rawPriority !== undefined && !priority) throw rf1.error(`${rf1.label(2)} priority '${rf1.get(2)}' is not S, A or R (HL7 table 0280)`, 2, undefined, 'code-invalid');
  const authoredOn = rf1.dateTime(9) ?? rf1.dateTime(7) ?? hl7DateTime(msg.msh.get(7) ?? '');
  if (!authoredOn) throw rf1.missing(9, 'process date, or RF1-7 effective date, or MSH-7');

  addReferral(
    {
      localId,
      identifier: orderIdentifier(rf1.field(6), 'PLAC', out)!,
      direction,
      cancelled: trigger === 'I14',
      patient: patient.reference,
      authoredOn,
      receiver: receiverOf(msg, out),
      ...(priority && { priority }),
      reasonCode: rf1.reps(10).map((r) => codeable(r, 'diagnosis', out) ?? (r.get(2) ? { text: r.get(2) } : undefined)).filter((c) => c !== undefined),
      supportingInfo: [...diagnoses(msg, patient, out), ...results(msg, patient, localId, out)],
    },
    out,
  );
}

/** The RT provider's facility as a consortium Organization id; an RP facility other than the sender's is refused. */
function receiverOf(msg: Er7Message, out: ResultBuilder): string {
  let receiver: string | undefined;
  for (const prd of msg.all('PRD')) {
    const role = prd.get(1)?.toUpperCase();
    if (role !== 'RT' && role !== 'RP') continue;
    const [name, field, component] = prd.get(7) !== undefined ? [prd.get(7)!, 7, undefined] : [prd.get(4, 4), 4, 4];
    if (name === undefined) {
      if (role === 'RT') throw prd.missing(7, 'the referred-to facility (PRD-7.1, or PRD-4.4)');
      continue;
    }
    const facility = consortiumFacility(name, out.ctx);
    if (role === 'RP') {
      if (facility !== out.ctx.source.facility) {
        throw prd.error(`${prd.label(field, component)} referring facility '${name}' is not the sender's own (${out.ctx.source.facility})`, field, component, 'value');
      }
    } else {
      if (!facility) throw prd.error(`${prd.label(field, component)} referred-to facility '${name}' is not a consortium facility`, field, component, 'value');
      if (facility === out.ctx.source.facility) throw prd.error(`${prd.label(field, component)} refers the patient to the sender itself`, field, component, 'value');
      if (receiver !== undefined) throw prd.error(`${prd.label(1)}: a second referred-to provider (RT); a referral has one receiver`, 1, undefined, 'not-supported');
      receiver = facility;
    }
  }
  if (receiver === undefined) throw new MappingError('PRD segment with PRD-1 role RT (referred-to provider) is required: it names the receiving facility', { segment: 'PRD', field: 1 }, 'required');
  return receiver;
}

function diagnoses(msg: Er7Message, patient: PatientRef, out: ResultBuilder): Reference[] {
  return msg.all('DG1').flatMap((dg1) => {
    const { condition } = conditionFromDg1(dg1, patient, undefined, out);
    return out.add(condition) ? [{ reference: `Condition/${condition.id}` }] : [];
  });
}

/** Lab OBX under an OBR: recent results the receiver should not repeat. Narrative reports travel as ORU. */
function results(msg: Er7Message, patient: PatientRef, localId: string, out: ResultBuilder): Reference[] {
  const refs: Reference[] = [];
  for (const g of orderGroups(msg, 'OBR')) {
    if (!g.main) continue;
    const section = sectionOf(g.main, out);
    if (section.kind !== 'lab') continue;
    const effective = g.main.dateTime(7);
    const obxs = g.rest.filter((s): s is Er7Segment => s.id === 'OBX');
    for (const [i, obx] of obxs.entries()) {
      const id = out.id('observation', `${REFERRAL_KIND}:${localId}|${g.main.index}|${obx.get(1) ?? `#${i + 1}`}`);
      if (!out.add(observationFromObx(obx, id, obxStatus(obx), [], { patient, section, effective }, out))) {
        throw obx.error(`${obx.label(1)} set id '${obx.get(1)}' appears twice under ${g.main.label()}`, 1, undefined, 'value');
      }
      refs.push({ reference: `Observation/${id}` });
    }
  }
  return refs;
}
