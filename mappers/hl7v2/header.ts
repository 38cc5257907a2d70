/**
 * MSH read on its own: the gateway builds the ACK from it at receipt, before (and whether or
 * not) the rest of the message maps.
 */
import { MappingError } from '../types';
import { hl7DateTime } from './datetime';
import { parseMsh, type Delimiters } from './er7';

export interface Hl7Header {
  /** MSH-3..6, namespace id (HD.1) of each. */
  sendingApplication?: string;
  sendingFacility?: string;
  receivingApplication?: string;
  receivingFacility?: string;
  /** MSH-7 as a FHIR dateTime (+08:00 when the sender gave no offset); undefined when absent or invalid. */
  dateTime?: string;
  /** MSH-9.1, e.g. 'ORU'. */
  messageCode: string;
  /** MSH-9.2, e.g. 'R01'. */
  triggerEvent?: string;
  /** MSH-9.3, e.g. 'ORU_R01'. */
  messageStructure?: string;
  /** MSH-10. */
  controlId: string;
  /** MSH-11.1: P production, D debugging, T training. */
  processingId?: string;
  /** MSH-12.1, e.g. '2.5.1'. */
  version?: string;
  /** MSH-18, first repetition, as sent. */
  charset?: string;
  delimiters: Delimiters;
}

/** Throws a MappingError on MSH only when it cannot be acknowledged: no MSH, or MSH-9 or MSH-10 missing. */
export function readHeader(text: string): Hl7Header {
  const msh = parseMsh(text);
  const messageCode = msh.need(9, 'message type');
  const controlId = msh.need(10, 'message control id');
  const ts = msh.get(7);
  return {
    sendingApplication: msh.get(3),
    sendingFacility: msh.get(4),
    receivingApplication: msh.get(5),
    receivingFacility: msh.get(6),
    dateTime: ts === undefined ? undefined : hl7DateTime(ts),
    messageCode,
    triggerEvent: msh.get(9, 2),
    messageStructure: msh.get(9, 3),
    controlId,
    processingId: msh.get(11),
    version: msh.get(12),
    charset: msh.get(18),
    delimiters: msh.delimiters,
  };
}

/**
 * The ACK code for an error: AR (rejected) when the message cannot be taken at all, because of
 * its MSH (framing, type, version, charset, sender) or of how it arrived (a Content-Type
 * charset); AE (application error) when a segment of its content is bad, or for a bug.
 */
export function ackCodeFor(error: unknown): 'AR' | 'AE' {
  if (!(error instanceof MappingError)) return 'AE';
  const segment = error.location.segment;
  return segment === undefined || segment === 'MSH' ? 'AR' : 'AE';
}
