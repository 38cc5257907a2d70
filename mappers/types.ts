import type { Bundle, Coding } from '@medplum/fhirtypes';

/**
 * Where in the source record a problem sits, precise enough for an HL7 ERR segment
 * (segment, repetition, field, component) or a JSON/CSV path.
 */
export interface SourceLocation {
  /** HL7 segment id, e.g. 'OBX'. */
  segment?: string;
  /** 1-based position of that segment among segments of its id (OBX #3 -> 3). */
  segmentIndex?: number;
  /** HL7 field number (OBX-5 -> 5). */
  field?: number;
  /** HL7 component number, 1-based. */
  component?: number;
  /** JSON path (`$.jyxm[2].jg`) or CSV `column` name. */
  path?: string;
  /** CSV line number in the posted body, 1-based, header included. */
  line?: number;
}

/**
 * Bad data: the record can never map as it is. It fails once, is kept with this reason, and
 * the sender hears which segment/field or path is wrong. Anything else a mapper throws is a
 * bug, treated as a failure of the same kind but logged.
 */
export class MappingError extends Error {
  constructor(
    message: string,
    readonly location: SourceLocation = {},
    /** OperationOutcome issue code. */
    readonly code: 'required' | 'value' | 'invalid' | 'structure' | 'not-supported' | 'code-invalid' = 'invalid',
  ) {
    super(message);
    this.name = 'MappingError';
  }

  /** 'PID-3', 'OBX[2]-5.1', '$.sfzh', 'line 4, column xb' */
  get where(): string {
    return formatLocation(this.location);
  }
}

export function formatLocation(l: SourceLocation): string {
  if (l.segment) {
    let s = l.segment;
    if (l.segmentIndex && l.segmentIndex > 1) s += `[${l.segmentIndex}]`;
    if (l.field !== undefined) s += `-${l.field}`;
    if (l.component !== undefined) s += `.${l.component}`;
    return s;
  }
  const parts: string[] = [];
  if (l.line !== undefined) parts.push(`line ${l.line}`);
  if (l.path) parts.push(l.line !== undefined ? `column ${l.path}` : l.path);
  return parts.join(', ');
}

/** A local code the source's ConceptMap could not translate (counted per source for the quality view). */
export interface UnmappedCode extends Coding {
  system: string;
  code: string;
  /** What the code was for: 'lab', 'exam', 'diagnosis', 'drug', ... */
  kind: string;
}

/** A merge the patient index is asked to make (ADT^A40): the retired registration into the survivor. */
export interface MergeRequest {
  /** `Patient/<id>` that survives. */
  survivor: string;
  /** `Patient/<id>` merged away (its MRN is now an alias of the survivor's). */
  retired: string;
}

/** What a mapper makes of one source record. Pure data: no I/O happened to make it. */
export interface RawRecord {
  raw: string;
  kind: string;
  localId?: string;
  line?: number;
}

export interface MapResult {
  /** A transaction Bundle with PUTs to deterministic ids (see ids.ts). */
  bundle: Bundle & { type: 'transaction' };
  /**
   * fullUrls of entries to write only when the resource does not exist yet: the demographics
   * a lab or order message carries are a copy, and must not overwrite the registration
   * system's (ADT, patient records) fuller Patient.
   */
  createOnly: string[];
  /** Local codes seen without a standard mapping. */
  unmapped: UnmappedCode[];
  /** ADT^A40 and alike. */
  merge?: MergeRequest;
  /** Soft problems (an ID number failing its checksum, an unknown unit): kept on the message. */
  warnings: string[];
}
