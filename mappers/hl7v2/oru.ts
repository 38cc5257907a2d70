/**
 * ORU^R01 to DiagnosticReport, one per OBR. A lab report's OBX are Observations. An imaging,
 * ECG or pathology report is a narrative: its text OBX (findings, impression, the sections
 * a pathologist writes) become the report's presentedForm and its impression the conclusion,
 * while its measured OBX (heart rate, QTc ...) are still Observations.
 *
 * Conventions:
 * - NTE after OBR: DiagnosticReport has no note in R4. In a lab report they are its
 *   `conclusion` (the laboratory's comment on the whole report: 标本溶血 ...); in a narrative
 *   report, whose conclusion is the impression, they are the last section (备注) of presentedForm.
 * - NTE after OBX: that Observation's note.
 * - The order (OBR-2/ORC-2 placer number): basedOn `ServiceRequest/<id of the placer number>`,
 *   the id the ORM^O01/OMG^O19 mapping gives it; no ServiceRequest is written from a result.
 * - Study Instance UID: an OBX whose OBX-3 is `&UID` (or `<code>&UID`), DCM `113014` (DICOM Study) or
 *   `110180` (Study Instance UID), or of type RP whose value is a UID; or ZDS-1 (IHE
 *   Scheduled Workflow). It becomes an ImagingStudy identified `urn:dicom:uid|urn:oid:<uid>`,
 *   referenced from DiagnosticReport.imagingStudy.
 * - OBX of type ED (a PDF or image of the report): presentedForm.
 */
import type { Attachment, DiagnosticReport, ImagingStudy, Observation, Reference } from '@medplum/fhirtypes';
import { MappingError } from '../types';
import { codeable } from './coding';
import { orderIdentifier, personName } from './datatypes';
import { isInstant } from './datetime';
import { visitCopy } from './encounter';
import type { Er7Message, Er7Segment } from './er7';
import { noteText, orderGroups, type OrderGroup } from './groups';
import { observationFromObx, obxStatus, obxText, TEXT_TYPES, type ObservationContext } from './observation';
import { placerField, type OrderSubject } from './orders';
import { patientOf } from './patient';
import type { ResultBuilder } from '../common/result';
import { modalityCoding, reportCategory, sectionOf, type Section } from './sections';
import { DICOM_UID } from '../common/systems';

/** OBR-25 result status (HL7 table 0123). */
const REPORT_STATUS: Readonly<Record<string, DiagnosticReport['status']>> = {
  O: 'registered',
  I: 'registered',
  S: 'registered',
  A: 'partial',
  P: 'preliminary',
  R: 'preliminary',
  C: 'corrected',
  F: 'final',
  X: 'cancelled',
};

/** DCM 113014 DICOM Study, 110180 Study Instance UID; DCM 121073 Impression. */
const STUDY_CODES: ReadonlySet<string> = new Set(['113014', '110180']);
const IMPRESSION_CODES: ReadonlySet<string> = new Set(['121073']);
/** OBX-3 texts Chinese RIS/ECG/pathology systems give the impression section. */
const IMPRESSION_NAMES: ReadonlySet<string> = new Set(['诊断意见', '影像诊断', '影像学诊断', '检查结论', '检查诊断', '结论', '诊断', '印象', '病理诊断', '心电图诊断', 'IMPRESSION']);
const DICOM_UID_FORMAT = /^[0-2](?:\.(?:0|[1-9]\d*))+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX_DATA = /^(?:[0-9A-Fa-f]{2})*$/;
const WHITE_SPACE = /\s+/g;
/** ED type of data (HL7 table 0191) to media type. */
const MEDIA_TYPE: Readonly<Record<string, string>> = { AP: 'application', APPLICATION: 'application', IM: 'image', IMAGE: 'image', TEXT: 'text', AU: 'audio', AUDIO: 'audio' };

/** What an OBX is to its report. */
type Part = 'observation' | 'section' | 'impression' | 'study' | 'form';

export function mapOru(msg: Er7Message, out: ResultBuilder): void {
  const patient = patientOf(msg, out, true, 'a result belongs to a patient');
  const subject = { patient, visit: visitCopy(msg, patient, out) };
  const groups = orderGroups(msg, 'OBR');
  if (groups.length === 0) throw new MappingError('OBR segment is required: an ORU^R01 carries its results under an OBR', { segment: 'OBR' }, 'required');
  for (const g of groups) mapReport(g, subject, out);
}

function mapReport(g: OrderGroup, subject: OrderSubject, out: ResultBuilder): void {
  if (!g.main) throw new MappingError(`OBR segment is required: ${g.orc!.label()} has no OBR`, { segment: 'OBR' }, 'required');
  const obr = g.main;
  const fillerField = obr.get(3) !== undefined ? obr.field(3) : g.orc?.get(3) !== undefined ? g.orc.field(3) : undefined;
  if (fillerField === undefined) throw obr.missing(3, 'filler order number');
  const filler = fillerField.get(1)!;
  const section = sectionOf(obr, out);
  const code = codeable(obr.field(4), section.codeKind, out);
  if (!code) throw obr.missing(4, 'universal service identifier');
  const effective = obr.dateTime(7);
  const issued = obr.dateTime(22);

  const reportNotes: string[] = [];
  const obxs: { obx: Er7Segment; notes: string[] }[] = [];
  const studyUids = new Set<string>();
  for (const s of g.rest) {
    if (s.id === 'OBX') {
      obxs.push({ obx: s, notes: [] });
    } else if (s.id === 'NTE') {
      const text = noteText(s);
      if (text !== undefined) (obxs.length > 0 ? obxs[obxs.length - 1].notes : reportNotes).push(text);
    } else if (s.id === 'ZDS' && s.get(1) !== undefined) {
      studyUids.add(checkUid(s, 1));
    }
  }
  const statuses = obxs.map(({ obx }) => obxStatus(obx));
  const status = reportStatusOf(obr) ?? derivedStatus(statuses);

  // The order's id is derived from its placer number as the ORM/OMG mapping derives it, so
  // basedOn finds the ServiceRequest the ordering system sends (before or after the result).
  const placer = placerField(g.orc, obr)?.get(1);
  const basedOn = placer === undefined ? undefined : out.ref('ServiceRequest', 'order', placer);

  const context: ObservationContext = { ...subject, basedOn, section, effective };
  const results: Reference<Observation>[] = [];
  const sections: { heading: string; text: string }[] = [];
  const impressions: string[] = [];
  const forms: Attachment[] = [];
  for (const [i, { obx, notes }] of obxs.entries()) {
    const part = partOf(obx, section);
    if (part === 'study') {
      studyUids.add(checkUid(obx, 5));
    } else if (part === 'form') {
      forms.push(encapsulated(obx));
    } else if (part === 'observation') {
      const id = out.id('observation', `${filler}|${obx.get(1) ?? `#${i + 1}`}`);
      if (!out.add(observationFromObx(obx, id, statuses[i], notes, context, out))) {
        throw obx.error(`${obx.label(1)} set id '${obx.get(1)}' appears twice under ${obr.label()}`, 1, undefined, 'value');
      }
      results.push({ reference: `Observation/${id}` });
    } else {
      const text = [obxText(obx), ...notes].filter((t) => t !== undefined).join('\n');
      if (text === '') continue;
      sections.push({ heading: obx.get(3, 2) ?? obx.get(3) ?? '', text });
      if (part === 'impression') impressions.push(text);
    }
  }

  // OBR-32 (NDL): its first component is a CNN, whose subcomponents are id & family & given.
  const interpreter = personName(obr.get(32, 1, 2), obr.get(32, 1, 3));
  const imagingStudy = [...studyUids].map((uid): Reference<ImagingStudy> => {
    const study = imagingStudyOf(uid, { section, subject, basedOn, started: effective, description: code.text, interpreter }, out);
    out.add(study);
    return { reference: `ImagingStudy/${study.id}` };
  });
  const conclusion = (section.kind === 'lab' ? reportNotes : impressions).join('\n');
  if (sections.length > 0) forms.unshift(narrative(sections, reportNotes, code.text));

  const report: DiagnosticReport & { id: string } = {
    resourceType: 'DiagnosticReport',
    id: out.id('report', filler),
    meta: out.meta(),
    identifier: [orderIdentifier(fillerField, 'FILL', out)!],
    ...(basedOn && { basedOn: [{ reference: basedOn }] }),
    status,
    category: reportCategory(section),
    code,
    subject: { reference: subject.patient.reference },
    ...(subject.visit && { encounter: { reference: subject.visit.reference } }),
    ...(effective && { effectiveDateTime: effective }),
    ...(issued && isInstant(issued) && { issued }),
    performer: [out.organization],
    ...(interpreter && { resultsInterpreter: [{ display: interpreter }] }),
    ...(results.length > 0 && { result: results }),
    ...(imagingStudy.length > 0 && { imagingStudy }),
    ...(conclusion !== '' && { conclusion }),
    ...(forms.length > 0 && { presentedForm: forms }),
  };
  if (!out.add(report)) throw obr.error(`${obr.label(3)} filler order number '${filler}' appears twice in the message`, 3, undefined, 'value');
}

/** OBR-25; undefined when the sender left it empty. */
function reportStatusOf(obr: Er7Segment): DiagnosticReport['status'] | undefined {
  const raw = obr.get(25);
  if (raw === undefined) return undefined;
  const status = REPORT_STATUS[raw.toUpperCase()];
  if (!status) throw obr.error(`${obr.label(25)} result status '${raw}' is not an HL7 table 0123 code`, 25, undefined, 'code-invalid');
  return status;
}

/** Without OBR-25, the report is as far as its results: final when all are, corrected when one was. */
function derivedStatus(statuses: Observation['status'][]): DiagnosticReport['status'] {
  if (statuses.length === 0) return 'registered';
  if (statuses.every((s) => s === 'final' || s === 'corrected' || s === 'amended')) return statuses.includes('corrected') ? 'corrected' : 'final';
  return statuses.every((s) => s === 'cancelled' || s === 'entered-in-error') ? 'cancelled' : 'preliminary';
}

/**
 * OBX-3 of a narrative report is often `<code>&GDT`, `&IMP`, `&UID` (HL7 chapter 7): the
 * suffix arrives as the second subcomponent of OBX-3.1.
 */
function partOf(obx: Er7Segment, section: Section): Part {
  const type = obx.get(2)?.toUpperCase();
  const code = obx.get(3)?.toUpperCase() ?? '';
  const suffix = obx.get(3, 1, 2)?.toUpperCase();
  if (suffix === 'UID' || STUDY_CODES.has(code) || (type === 'RP' && DICOM_UID_FORMAT.test(obx.get(5) ?? ''))) return 'study';
  if (type === 'ED') return 'form';
  if (section.kind === 'lab' || type === undefined || !TEXT_TYPES.has(type)) return 'observation';
  return suffix === 'IMP' || IMPRESSION_CODES.has(code) || IMPRESSION_NAMES.has(obx.get(3, 2)?.toUpperCase() ?? '') ? 'impression' : 'section';
}

function checkUid(s: Er7Segment, field: number): string {
  const uid = s.get(field) ?? '';
  if (!DICOM_UID_FORMAT.test(uid) || uid.length > 64) {
    throw s.error(`${s.label(field)} '${uid}' is not a DICOM UID (digits and dots, at most 64 characters)`, field, undefined, 'value');
  }
  return uid;
}

interface StudyContext {
  section: Section;
  subject: OrderSubject;
  basedOn?: string;
  started?: string;
  description?: string;
  interpreter?: string;
}

function imagingStudyOf(uid: string, c: StudyContext, out: ResultBuilder): ImagingStudy & { id: string } {
  const modality = modalityCoding(c.section);
  return {
    resourceType: 'ImagingStudy',
    id: out.id('study', uid),
    meta: out.meta(),
    identifier: [{ system: DICOM_UID, value: `urn:oid:${uid}` }],
    status: 'available',
    ...(modality && { modality }),
    subject: { reference: c.subject.patient.reference },
    ...(c.subject.visit && { encounter: { reference: c.subject.visit.reference } }),
    ...(c.started && { started: c.started }),
    ...(c.basedOn && { basedOn: [{ reference: c.basedOn }] }),
    ...(c.interpreter && { interpreter: [{ display: c.interpreter }] }),
    ...(c.description && { description: c.description }),
  };
}

/** The narrative report as text/plain: each section under its heading, the notes last. */
function narrative(sections: { heading: string; text: string }[], notes: string[], title: string | undefined): Attachment {
  const parts = sections.map((s) => `【${s.heading}】\n${s.text}`);
  if (notes.length > 0) parts.push(`【备注】\n${notes.join('\n')}`);
  return {
    contentType: 'text/plain; charset=utf-8',
    data: Buffer.from(parts.join('\n\n'), 'utf8').toString('base64'),
    ...(title && { title }),
  };
}

/** ED: source (.1), type of data (.2), subtype (.3), encoding (.4: Base64, Hex or A for text), data (.5). */
function encapsulated(obx: Er7Segment): Attachment {
  const f = obx.field(5);
  const media = MEDIA_TYPE[f.get(2)?.toUpperCase() ?? ''] ?? 'application';
  const subtype = f.get(3)?.toLowerCase();
  const encoding = f.get(4)?.toUpperCase();
  const raw = f.get(5);
  if (raw === undefined) throw obx.missing(5, 'encapsulated data', 5);
  let data: string;
  if (encoding === 'BASE64') {
    data = raw.replace(WHITE_SPACE, '');
    if (!BASE64.test(data)) throw obx.error(`${obx.label(5, 5)} is not Base64`, 5, 5, 'value');
  } else if (encoding === 'HEX') {
    if (!HEX_DATA.test(raw)) throw obx.error(`${obx.label(5, 5)} is not hexadecimal`, 5, 5, 'value');
    data = Buffer.from(raw, 'hex').toString('base64');
  } else if (encoding === 'A') {
    data = Buffer.from(raw, 'utf8').toString('base64');
  } else {
    throw obx.error(`${obx.label(5, 4)} encoding '${f.get(4) ?? ''}' is not Base64, Hex or A`, 5, 4, 'not-supported');
  }
  const title = obx.get(3, 2);
  return { contentType: subtype ? `${media}/${subtype}` : 'application/octet-stream', data, ...(title && { title }) };
}
