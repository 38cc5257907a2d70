/**
 * OBR-24 diagnostic service section: tells a lab result from an imaging, ECG or pathology
 * report, which decides the local code system of its codes and whether its text OBX are
 * observations or the sections of a narrative report.
 */
import type { CodeableConcept, Coding } from '@medplum/fhirtypes';
import type { LocalKind } from './coding';
import type { Er7Segment } from './er7';
import type { ResultBuilder } from '../common/result';
import { DICOM_DCM, OBSERVATION_CATEGORY, V2_0074 } from '../common/systems';

export type ReportKind = 'lab' | 'imaging' | 'ecg' | 'pathology';

export interface Section {
  kind: ReportKind;
  /** The section code as sent when it is a table 0074 code more specific than the kind's (HM, CT ...). */
  specific?: string;
  /** Local code system kind of OBR-4 and OBX-3. */
  codeKind: LocalKind;
  /** DICOM modality, for an ImagingStudy. */
  modality?: string;
}

const KIND_CATEGORY: Readonly<Record<ReportKind, [string, string, string]>> = {
  lab: ['LAB', 'Laboratory', 'laboratory'],
  imaging: ['RAD', 'Radiology', 'imaging'],
  ecg: ['EC', 'Electrocardiac (e.g., EKG, EEC, Holter)', 'procedure'],
  pathology: ['SP', 'Surgical Pathology', 'laboratory'],
};

/** Table 0074 codes, and the DICOM modality of imaging ones. */
const STANDARD: Readonly<Record<string, [ReportKind, string?]>> = {
  LAB: ['lab'], HM: ['lab'], CH: ['lab'], MB: ['lab'], SR: ['lab'], BG: ['lab'], BLB: ['lab'], CG: ['lab'], GE: ['lab'],
  IMM: ['lab'], MCB: ['lab'], MYC: ['lab'], OSL: ['lab'], TX: ['lab'], URN: ['lab'], VR: ['lab'],
  RAD: ['imaging'], CT: ['imaging', 'CT'], NMR: ['imaging', 'MR'], NMS: ['imaging', 'NM'], RUS: ['imaging', 'US'],
  OUS: ['imaging', 'US'], VUS: ['imaging', 'US'], CUS: ['imaging', 'US'], RX: ['imaging'], XRC: ['imaging'],
  EC: ['ecg'],
  SP: ['pathology'], CP: ['pathology'], PAT: ['pathology'],
};
/** What senders write instead (DICOM modalities, plain words). */
const ALIASES: Readonly<Record<string, [ReportKind, string?]>> = {
  MR: ['imaging', 'MR'], MRI: ['imaging', 'MR'], US: ['imaging', 'US'], XR: ['imaging'], DX: ['imaging', 'DX'], CR: ['imaging', 'CR'],
  DR: ['imaging', 'DX'], MG: ['imaging', 'MG'], PET: ['imaging', 'PT'], ECG: ['ecg'], EKG: ['ecg'], PATH: ['pathology'],
};

function section(kind: ReportKind, specific?: string, modality?: string): Section {
  return { kind, ...(specific && specific !== KIND_CATEGORY[kind][0] && { specific }), codeKind: kind === 'lab' ? 'lab' : 'exam', ...(modality && { modality }) };
}

// Built per call from here on: resources must not share objects a later stage might edit.

/** DiagnosticReport / ServiceRequest category: the kind's v2-0074 code, then the specific section's. */
export function reportCategory(s: Section): CodeableConcept[] {
  const [code, display] = KIND_CATEGORY[s.kind];
  const category: CodeableConcept[] = [{ coding: [{ system: V2_0074, code, display }] }];
  if (s.specific) category.push({ coding: [{ system: V2_0074, code: s.specific }] });
  return category;
}

export function observationCategory(s: Section): CodeableConcept[] {
  return [{ coding: [{ system: OBSERVATION_CATEGORY, code: KIND_CATEGORY[s.kind][2] }] }];
}

export function modalityCoding(s: Section): Coding[] | undefined {
  return s.modality ? [{ system: DICOM_DCM, code: s.modality }] : undefined;
}

/** The section of an OBR; without OBR-24 a result is a lab result, as most LIS feeds leave it empty. */
export function sectionOf(obr: Er7Segment, out: ResultBuilder): Section {
  const raw = obr.get(24);
  if (raw === undefined) return section('lab');
  const code = raw.toUpperCase();
  const standard = STANDARD[code];
  if (standard) return section(standard[0], code, standard[1]);
  const alias = ALIASES[code];
  if (alias) return section(alias[0], undefined, alias[1]);
  out.warn(obr.label(24), `diagnostic service section '${raw}' is not one this gateway knows; mapped as a lab result`);
  return section('lab');
}
