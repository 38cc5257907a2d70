import type { Coding, ConceptMap } from '@medplum/fhirtypes';

/** The record formats the gateway can map; each has a folder under mappers/. */
export type SourceFormat = 'hl7v2' | 'county-json' | 'community-csv';

/** A registered sending system of a member facility (configuration, see fixtures/demo-sources.json). */
export interface SourceConfig {
  /** Path segment of `POST /ingest/{id}`, and the source named in meta.source. */
  id: string;
  /** Organization id of the facility the records belong to. */
  facility: string;
  format: SourceFormat;
  /** The facility's MRN system (a WS/T 500 style OID). */
  mrnSystem: string;
  /** HL7 MSH-4 (namespace id) values this source sends under. */
  sendingFacility?: string[];
  /** Local code systems, by record kind ('lab', 'exam', 'diagnosis', 'drug'). */
  localSystems?: Partial<Record<string, string>>;
}

/** Everything a mapper may know besides the record itself. Read-only, no I/O. */
export interface MapContext {
  source: SourceConfig;
  terminology: Terminology;
  /**
   * The consortium's facilities by every name a form may give them (Organization id, HL7
   * namespace) -> Organization id: a referral's receiving facility must be one of them.
   * Without it, only the source's own facility is known.
   */
  facilities?: ReadonlyMap<string, string>;
}

/** The names of each source's facility (its Organization id and its HL7 namespaces) -> Organization id. */
export function facilityNames(sources: readonly SourceConfig[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const s of sources) {
    names.set(s.facility, s.facility);
    for (const ns of s.sendingFacility ?? []) names.set(ns, s.facility);
  }
  return names;
}

/** Base of meta.source: `<base><source id>#<the sender's message or record id>`. */
export const SOURCE_URI_BASE = 'urn:consortium:source:';

export function metaSource(source: SourceConfig, recordId: string): string {
  return `${SOURCE_URI_BASE}${source.id}#${recordId}`;
}

/**
 * Per-source ConceptMaps (local lab/exam codes to LOINC, local diagnoses to ICD-10), loaded
 * once. `translate` gives the standard coding to put beside the local one, or undefined so
 * the mapper can count the code as unmapped.
 */
export class Terminology {
  private readonly map = new Map<string, Coding>();

  constructor(conceptMaps: ConceptMap[] = []) {
    for (const cm of conceptMaps) {
      for (const group of cm.group ?? []) {
        for (const el of group.element ?? []) {
          const target = el.target?.find((t) => t.equivalence !== 'unmatched' && t.equivalence !== 'disjoint' && t.code);
          if (!group.source || !el.code || !target || !group.target) continue;
          this.map.set(key(group.source, el.code), { system: group.target, code: target.code, display: target.display });
        }
      }
    }
  }

  translate(system: string, code: string): Coding | undefined {
    const hit = this.map.get(key(system, code));
    return hit && { ...hit };
  }
}

const key = (system: string, code: string): string => `${system}\u0000${code}`;

/**
 * A facility-local date-time (`yyyy-MM-dd HH:mm:ss`, `yyyyMMddHHmmss` and their shorter forms)
 * as a FHIR dateTime at the consortium's offset (China Standard Time, no DST). Returns
 * undefined for anything that is not a real date.
 */
export function localDateTime(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const m = /^(\d{4})-?(\d{2})-?(\d{2})(?:[ T]?(\d{2}):?(\d{2})(?::?(\d{2}))?)?$/.exec(raw.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const date = new Date(Date.UTC(+y, +mo - 1, +d));
  if (date.getUTCFullYear() !== +y || date.getUTCMonth() !== +mo - 1 || date.getUTCDate() !== +d) return undefined;
  if (h === undefined) return `${y}-${mo}-${d}`;
  if (+h > 23 || +mi > 59 || (s !== undefined && +s > 59)) return undefined;
  return `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}+08:00`;
}
