import iconv from 'iconv-lite';
import type { Hl7Header } from '../../mappers/hl7v2/header';

export type AckCode = 'AA' | 'AE' | 'AR';

/** HTTP status for each ACK code: `POST /ingest/hl7v2` answers with it (the sender's interface engine reads both), and the audit records it for MLLP too. */
export const ACK_STATUS = { AA: 200, AE: 422, AR: 400 } as const;

export interface AckError {
  text: string;
  /** 'PID-3', 'OBX[2]-5.1', as MappingError.where prints it. */
  location?: string;
  /** The OperationOutcome issue code, turned into an HL7 table 0357 code. */
  code?: string;
}

/** Our identity in MSH-3/4 of the ACKs we send. */
const GATEWAY_APP = 'FHIRGW';
const GATEWAY_FACILITY = 'CONSORTIUM';

/**
 * An original-mode ACK: MSH (sender and receiver swapped), MSA with the sender's control id,
 * and for AE/AR an ERR segment whose ERR-2 names segment, sequence, field and component.
 */
export function buildAck(header: Hl7Header | undefined, code: AckCode, charset: string, error?: AckError): Buffer {
  const now = timestamp(new Date());
  const trigger = header?.triggerEvent ?? '';
  const msh = [
    'MSH',
    '^~\\&',
    GATEWAY_APP,
    GATEWAY_FACILITY,
    escape(header?.sendingApplication ?? ''),
    escape(header?.sendingFacility ?? ''),
    now,
    '',
    `ACK^${escape(trigger)}^ACK`,
    `ACK${now}${Math.floor(Math.random() * 1e6).toString().padStart(6, '0')}`,
    escape(header?.processingId ?? 'P'),
    escape(header?.version ?? '2.5'),
  ];
  // MSH-18: the ACK is written in the message's own charset, and says so.
  if (header?.charset) msh.push('', '', '', '', '', escape(header.charset));
  const segments = [msh.join('|'), ['MSA', code, escape(header?.controlId ?? '')].join('|')];
  if (error) {
    const [hl7Code, hl7Text] = errorCode(error);
    const text = escape(error.text).slice(0, 250);
    segments.push(['ERR', '', erl(error.location), `${hl7Code}^${hl7Text}^HL70357`, code === 'AA' ? 'I' : 'E', '', '', '', text].join('|'));
  }
  const text = `${segments.join('\r')}\r`;
  return /^utf-?8$/i.test(charset) ? Buffer.from(text, 'utf8') : iconv.encode(text, charset);
}

/** ERR-2 (ERL): segment ^ sequence ^ field ^ field repetition ^ component. */
function erl(location: string | undefined): string {
  const m = location && /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+))?(?:\.(\d+))?$/.exec(location);
  if (!m) return '';
  const [, segment, seq, field, component] = m;
  return [segment, seq ?? '1', field ?? '', field ? '1' : '', component ?? ''].join('^').replace(/\^+$/, '');
}

/** HL7 table 0357 (message error condition codes). */
function errorCode(e: AckError): [string, string] {
  switch (e.code) {
    case 'structure':
      return ['100', 'Segment sequence error'];
    case 'required':
      return ['101', 'Required field missing'];
    case 'value':
    case 'invalid':
      return ['102', 'Data type error'];
    case 'code-invalid':
      return ['103', 'Table value not found'];
    case 'not-supported':
      if (e.location === 'MSH-9') return ['200', 'Unsupported message type'];
      if (e.location === 'MSH-12') return ['203', 'Unsupported version id'];
      if (e.location === 'MSH-4') return ['204', 'Unknown key identifier'];
      return ['207', 'Application internal error'];
    default:
      return ['207', 'Application internal error'];
  }
}

function escape(s: string): string {
  return s.replace(/\\/g, '\\E\\').replace(/\|/g, '\\F\\').replace(/\^/g, '\\S\\').replace(/&/g, '\\T\\').replace(/~/g, '\\R\\').replace(/[\r\n]+/g, ' ');
}

function timestamp(d: Date): string {
  // China Standard Time, as the consortium's systems expect.
  const local = new Date(d.getTime() + 8 * 3600 * 1000).toISOString();
  return `${local.slice(0, 4)}${local.slice(5, 7)}${local.slice(8, 10)}${local.slice(11, 13)}${local.slice(14, 16)}${local.slice(17, 19)}+0800`;
}
