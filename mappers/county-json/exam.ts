/**
 * jc: an imaging or ECG report (检查报告) as a DiagnosticReport: the impression its
 * conclusion, findings and impression its text, and the DICOM study, when named, an ImagingStudy.
 */
import type { CodeableConcept, DiagnosticReport, ImagingStudy } from '@medplum/fhirtypes';
import { localConcept } from '../common/local-code';
import type { ResultBuilder } from '../common/result';
import { DICOM_DCM, DICOM_UID, V2_0074, v2IdentifierType } from '../common/systems';
import { patientCopy, time, visitOf, type ExamRecord } from './record';

interface ExamKind {
  /** v2 table 0074 diagnostic service section. */
  section: 'RAD' | 'EC';
  /** DICOM modality. */
  modality?: string;
}

/** 检查类型 as the HIS writes it: DICOM modalities, their common names, Chinese words. */
const KINDS: Readonly<Record<string, ExamKind>> = {
  CT: { section: 'RAD', modality: 'CT' },
  MR: { section: 'RAD', modality: 'MR' },
  MRI: { section: 'RAD', modality: 'MR' },
  DR: { section: 'RAD', modality: 'DX' },
  DX: { section: 'RAD', modality: 'DX' },
  CR: { section: 'RAD', modality: 'CR' },
  XR: { section: 'RAD' },
  X线: { section: 'RAD' },
  US: { section: 'RAD', modality: 'US' },
  B超: { section: 'RAD', modality: 'US' },
  超声: { section: 'RAD', modality: 'US' },
  MG: { section: 'RAD', modality: 'MG' },
  PET: { section: 'RAD', modality: 'PT' },
  ECG: { section: 'EC' },
  EKG: { section: 'EC' },
  心电图: { section: 'EC' },
};
const SECTION_DISPLAY: Readonly<Record<string, string>> = { RAD: 'Radiology', EC: 'Electrocardiac (e.g., EKG, EEC, Holter)', OTH: 'Other' };

export function mapExamReport(out: ResultBuilder, r: ExamRecord): void {
  const patient = patientCopy(out, r.brid);
  const kind = KINDS[r.jclx.trim().toUpperCase()];
  if (!kind) out.warn('$.jclx', `exam type '${r.jclx}' is not one this gateway knows; reported in section OTH`);
  const section = kind?.section ?? 'OTH';
  const issued = time(r.bgsj);
  const effective = r.jcsj === undefined ? issued : time(r.jcsj);
  const name = r.jcmc ?? [r.jclx, r.jcbw].filter(Boolean).join(' ');
  const code: CodeableConcept = r.jcdm === undefined ? { text: name } : localConcept(out, 'exam', r.jcdm, r.jcmc);
  const study = r.yxh === undefined ? undefined : imagingStudy(out, r, r.yxh, kind?.modality, patient, effective, name);
  const report: DiagnosticReport & { id: string } = {
    resourceType: 'DiagnosticReport',
    id: out.id('report', r.bgdh),
    meta: out.meta(),
    identifier: [{ use: 'official', type: v2IdentifierType('FILL', '报告单号'), system: out.localSystem('report'), value: r.bgdh }],
    status: 'final',
    category: [{ coding: [{ system: V2_0074, code: section, display: SECTION_DISPLAY[section] }] }],
    code,
    subject: { reference: patient },
    ...visitOf(out, r.jzlsh),
    effectiveDateTime: effective,
    issued,
    performer: [out.organization],
    ...(study && { imagingStudy: [{ reference: `ImagingStudy/${study}` }] }),
    ...(r.zd && { conclusion: r.zd }),
    presentedForm: [
      {
        contentType: 'text/plain; charset=utf-8',
        language: 'zh-CN',
        data: Buffer.from(narrative(r), 'utf8').toString('base64'),
        title: name,
      },
    ],
  };
  out.add(report);
}

/** The report as the patient's paper copy reads: each section under its heading. */
function narrative(r: ExamRecord): string {
  const sections: string[] = [];
  if (r.jcbw) sections.push(`【检查部位】\n${r.jcbw}`);
  if (r.sj) sections.push(`【检查所见】\n${r.sj}`);
  if (r.zd) sections.push(`【诊断意见】\n${r.zd}`);
  return sections.join('\n\n');
}

/** Returns the study's id. Keyed by its UID: the same study reported twice is one ImagingStudy. */
function imagingStudy(out: ResultBuilder, r: ExamRecord, uid: string, modality: string | undefined, patient: string, started: string, description: string): string {
  const study: ImagingStudy & { id: string } = {
    resourceType: 'ImagingStudy',
    id: out.id('study', uid),
    meta: out.meta(),
    identifier: [{ system: DICOM_UID, value: `urn:oid:${uid}` }],
    status: 'available',
    ...(modality && { modality: [{ system: DICOM_DCM, code: modality }] }),
    subject: { reference: patient },
    ...visitOf(out, r.jzlsh),
    started,
    description,
  };
  out.add(study);
  return study.id;
}
