/** CE/CWE values as CodeableConcepts: the sender's coding kept, the standard one beside it. */
import type { CodeableConcept, Coding } from '@medplum/fhirtypes';
import type { Er7Field } from './er7';
import type { ResultBuilder } from '../common/result';
import { ATC, DICOM_DCM, ICD10, LOINC, SNOMED, UCUM, v2Table } from '../common/systems';

/** Record kinds with a local code system in SourceConfig.localSystems. */
export type LocalKind = 'lab' | 'exam' | 'diagnosis' | 'drug';

/** HL7 table 0396 coding system names (and the variants senders write) of standard systems. */
const STANDARD_SYSTEMS: Readonly<Record<string, string>> = {
  LN: LOINC,
  LOINC: LOINC,
  I10: ICD10,
  ICD10: ICD10,
  'ICD-10': ICD10,
  SCT: SNOMED,
  SNOMEDCT: SNOMED,
  UCUM: UCUM,
  DCM: DICOM_DCM,
  ATC: ATC,
  WHOATC: ATC,
};
const HL7_TABLE = /^HL7(\d{4})$/;

type SystemCoding = Coding & { system: string; code: string };

/** The FHIR system of a v2 coding system name; `local` when it is the sender's own (L, 99zzz, none, unknown). */
function resolve(name: string | undefined, kind: LocalKind, out: ResultBuilder): { system: string; local: boolean } {
  if (name) {
    const upper = name.toUpperCase();
    const standard = STANDARD_SYSTEMS[upper];
    if (standard) return { system: standard, local: false };
    const table = HL7_TABLE.exec(upper);
    if (table) return { system: v2Table(table[1]), local: false };
  }
  return { system: out.localSystem(kind), local: true };
}

/**
 * A CE/CWE field: identifier (.1), text (.2), coding system (.3), the alternate triplet
 * (.4-.6), original text (CWE.9). A local code is translated through the source's
 * ConceptMaps; the standard coding goes first (what a clinician's EHR shows), the local one
 * after it. A local code with no standard coding anywhere is reported as unmapped, unless
 * `translate` is false (coded answers: values, not tests, and not what the maps cover).
 * Undefined when the field is empty.
 */
export function codeable(f: Er7Field, kind: LocalKind, out: ResultBuilder, translate = true): CodeableConcept | undefined {
  const text = f.get(2) ?? f.get(9) ?? f.get(5);
  const standard: Coding[] = [];
  const local: SystemCoding[] = [];
  for (const c of [1, 4]) {
    const code = f.get(c);
    if (code === undefined) continue;
    const { system, local: isLocal } = resolve(f.get(c + 2), kind, out);
    const display = f.get(c + 1);
    const coding: SystemCoding = display === undefined ? { system, code } : { system, code, display };
    (isLocal ? local : standard).push(coding);
  }
  if (translate && local.length > 0 && standard.length === 0) {
    const translated = out.ctx.terminology.translate(local[0].system, local[0].code);
    if (translated) standard.push(translated);
    else out.unmapped(local[0], kind);
  }
  const coding = [...standard, ...local];
  if (coding.length === 0 && text === undefined) return undefined;
  return { ...(coding.length > 0 && { coding }), ...(text !== undefined && { text }) };
}

/** The sender's own code (CE.1 with its system), for deterministic ids that must not change when a ConceptMap does. */
export function sourceCodeKey(f: Er7Field): string | undefined {
  const code = f.get(1);
  return code === undefined ? f.get(2) : `${f.get(3) ?? ''}|${code}`;
}
