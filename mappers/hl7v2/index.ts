/**
 * HL7 v2.x (ER7) messages of a member facility to FHIR transaction Bundles. Pure: the caller
 * decodes the bytes (decodeEr7), passes the source's configuration and ConceptMaps in ctx.
 *
 * ADT^A01/A03/A04/A08  Patient, Encounter (PV1), Condition (DG1)
 * ADT^A40              surviving Patient + MapResult.merge
 * ORU^R01              DiagnosticReport, Observation (lab OBX), ImagingStudy (study UID)
 * ORM^O01, OMG^O19     ServiceRequest
 * RDE^O11              MedicationRequest, Medication
 * REF^I12, REF^I14     referral ServiceRequest + Task (profiles/referral.ts), cancelled by I14
 *
 * Outside ADT, the Patient and Encounter a message carries are create-only copies.
 */
import type { MapContext } from '../context';
import { MappingError, type MapResult, type MergeRequest } from '../types';
import { mapAdt, mapMerge } from './adt';
import { parseEr7, type Er7Message } from './er7';
import { readHeader } from './header';
import { mapOrders } from './orders';
import { mapOru } from './oru';
import { mapPharmacy } from './pharmacy';
import { mapReferral } from './referral';
import { ResultBuilder } from '../common/result';

export { decodeEr7 } from './decode';
export { ackCodeFor, readHeader, type Hl7Header } from './header';

type Handler = (msg: Er7Message, out: ResultBuilder) => MergeRequest | void;

const HANDLERS: Readonly<Record<string, Handler>> = {
  'ADT^A01': (msg, out) => mapAdt(msg, 'A01', out),
  'ADT^A03': (msg, out) => mapAdt(msg, 'A03', out),
  'ADT^A04': (msg, out) => mapAdt(msg, 'A04', out),
  'ADT^A08': (msg, out) => mapAdt(msg, 'A08', out),
  'ADT^A40': mapMerge,
  'ORU^R01': mapOru,
  'ORM^O01': mapOrders,
  'OMG^O19': mapOrders,
  'RDE^O11': mapPharmacy,
  'REF^I12': (msg, out) => mapReferral(msg, 'I12', out),
  'REF^I14': (msg, out) => mapReferral(msg, 'I14', out),
};

export function mapHl7v2(text: string, ctx: MapContext): MapResult {
  const header = readHeader(text);
  const type = `${header.messageCode.toUpperCase()}^${(header.triggerEvent ?? '').toUpperCase()}`;
  const handler = HANDLERS[type];
  if (!handler) {
    throw new MappingError(`message type ${type} is not supported (${Object.keys(HANDLERS).join(', ')} are)`, { segment: 'MSH', field: 9 }, 'not-supported');
  }
  if (header.version !== undefined && !header.version.startsWith('2.')) {
    throw new MappingError(`MSH-12 version '${header.version}' is not HL7 v2.x`, { segment: 'MSH', field: 12 }, 'not-supported');
  }
  const facilities = ctx.source.sendingFacility;
  if (facilities && facilities.length > 0 && (header.sendingFacility === undefined || !facilities.includes(header.sendingFacility))) {
    throw new MappingError(`MSH-4 sending facility '${header.sendingFacility ?? ''}' is not one source '${ctx.source.id}' sends under`, { segment: 'MSH', field: 4 }, 'value');
  }
  const out = new ResultBuilder(ctx, header.controlId);
  return out.result(handler(parseEr7(text), out) ?? undefined);
}
