/**
 * The county hospital's HIS export: vendor JSON with pinyin-abbreviated field names, one
 * record per object (`lx`: br patient, jz visit, jy lab report, jc exam report, cf
 * prescription), described by profiles/inbound/county-hospital.schema.json.
 */
import type { Condition, DiagnosticReport, Encounter, ImagingStudy, Observation, ObservationReferenceRange } from '@medplum/fhirtypes';
import Ajv, { type ValidateFunction } from 'ajv';
import schema from '../../profiles/inbound/county-hospital.schema.json';
import type { MapContext } from '../context';
import { addPatient, addPrescription, dateTimeAt, localConcept, optionalNumber, type Demographics } from '../common/records';
import { ResultBuilder } from '../common/result';
import { CONDITION_CATEGORY, DICOM_UID, ICD10, V3_ACT_CODE, V3_INTERPRETATION } from '../common/systems';
import { quantity } from '../hl7v2/units';
import { MappingError, type MapResult, type RawRecord } from '../types';

type Rec = Record<string, unknown> & { lx: string; brid: string };
type Item = Record<string, string | number | undefined>;

const ajv = new Ajv({ allErrors: false, strict: false });
ajv.addSchema(schema, 'county');
const VALIDATORS: Record<string, ValidateFunction> = Object.fromEntries(
  Object.keys(schema.definitions).map((lx) => [lx, ajv.getSchema(`county#/definitions/${lx}`)!]),
);

/** `/xm/2/jg` -> `$.xm[2].jg` */
const jsonPath = (pointer: string): string => `$${pointer.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('')}`;

/** One object or an array of them; each element is a record. */
export function split(body: string): RawRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new MappingError(`not valid JSON: ${(err as Error).message}`, { path: '$' }, 'structure');
  }
  const records = Array.isArray(parsed) ? parsed : [parsed];
  return records.map((r, i) => {
    const at = Array.isArray(parsed) ? `$[${i}]` : '$';
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new MappingError(`${at} is not a record object`, { path: at }, 'structure');
    const rec = r as Partial<Rec>;
    const localId = (rec.bgdh ?? rec.jzlsh ?? rec.cfh ?? rec.brid) as string | undefined;
    return { raw: JSON.stringify(r), kind: typeof rec.lx === 'string' ? rec.lx : 'unknown', ...(typeof localId === 'string' && { localId }) };
  });
}

export function map(raw: string, ctx: MapContext): MapResult {
  const rec = JSON.parse(raw) as Rec;
  const validate = typeof rec.lx === 'string' ? VALIDATORS[rec.lx] : undefined;
  if (!validate) throw new MappingError(`record type lx '${String(rec.lx)}' is not one of ${Object.keys(VALIDATORS).join(', ')}`, { path: '$.lx' }, 'not-supported');
  if (!validate(rec)) {
    const e = validate.errors![0];
    const path = jsonPath(e.instancePath) + (e.keyword === 'required' ? `.${(e.params as { missingProperty: string }).missingProperty}` : e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '');
    const code = e.keyword === 'required' ? 'required' : e.keyword === 'additionalProperties' ? 'structure' : 'value';
    throw new MappingError(`${path}: ${e.keyword === 'additionalProperties' ? 'unknown field' : e.message}`, { path }, code);
  }
  const out = new ResultBuilder(ctx, String(rec.bgdh ?? rec.jzlsh ?? rec.cfh ?? rec.brid));
  MAPPERS[rec.lx](out, rec);
  return out.result();
}

const AT: Record<keyof Demographics, string> = {
  mrn: '$.brid', name: '$.brxm', sex: '$.xb', birthDate: '$.csrq', idCard: '$.sfzh', phone: '$.lxdh', address: '$.jtzz', insuranceCard: '$.ybkh', healthCard: '$.jkkh',
};
const at = (f: keyof Demographics): string => AT[f];
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : typeof v === 'number' ? String(v) : undefined);

/** A record that is not a registration carries only the MRN: a create-only stub. */
const subject = (out: ResultBuilder, rec: Rec): string => addPatient(out, { mrn: rec.brid }, at, true);
const encounterRef = (out: ResultBuilder, rec: Rec): { encounter: { reference: string } } | undefined =>
  str(rec.jzlsh) ? { encounter: { reference: out.ref('Encounter', 'encounter', str(rec.jzlsh)!) } } : undefined;

const MAPPERS: Record<string, (out: ResultBuilder, rec: Rec) => void> = {
  br(out, rec) {
    addPatient(out, { mrn: rec.brid, name: str(rec.brxm), sex: str(rec.xb), birthDate: str(rec.csrq), idCard: str(rec.sfzh), phone: str(rec.lxdh), address: str(rec.jtzz), insuranceCard: str(rec.ybkh), healthCard: str(rec.jkkh) }, at, false);
  },

  jz(out, rec) {
    const patient = subject(out, rec);
    const visit = String(rec.jzlsh);
    const CLASS = { '1': ['AMB', 'ambulatory'], '2': ['IMP', 'inpatient encounter'], '3': ['EMER', 'emergency'] } as const;
    const [code, display] = CLASS[rec.jzlx as '1' | '2' | '3'];
    const end = dateTimeAt(str(rec.cysj), '$.cysj');
    const encounter: Encounter & { id: string } = {
      resourceType: 'Encounter',
      id: out.id('encounter', visit),
      meta: out.meta(),
      identifier: [{ system: out.localSystem('visit'), value: visit }],
      status: end || code === 'AMB' ? 'finished' : 'in-progress',
      class: { system: V3_ACT_CODE, code, display },
      subject: { reference: patient },
      ...(str(rec.ysxm) && { participant: [{ individual: { display: str(rec.ysxm) } }] }),
      period: { start: dateTimeAt(str(rec.jzsj), '$.jzsj', true), ...(end && { end }) },
      ...(str(rec.ksmc) && { location: [{ location: { display: str(rec.ksmc) } }] }),
      serviceProvider: out.organization,
    };
    const diagnoses = (rec.zd as Item[] | undefined) ?? [];
    encounter.diagnosis = diagnoses.map((d, i) => {
      const local = localConcept(out, 'diagnosis', String(d.zddm), str(d.zdmc));
      if (str(d.icd10) && !local.coding!.some((c) => c.system === ICD10)) local.coding!.unshift({ system: ICD10, code: str(d.icd10)! });
      const condition: Condition & { id: string } = {
        resourceType: 'Condition',
        id: out.id('condition', `${visit}:${String(d.zddm)}`),
        meta: out.meta(),
        category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'encounter-diagnosis' }] }],
        code: local,
        subject: { reference: patient },
        encounter: { reference: `Encounter/${encounter.id}` },
        recordedDate: encounter.period!.start,
      };
      out.add(condition);
      return { condition: { reference: `Condition/${condition.id}` }, rank: d.zdlx === '1' ? 1 : i + 2 };
    });
    out.add(encounter);
  },

  jy(out, rec) {
    const patient = subject(out, rec);
    const report = String(rec.bgdh);
    const issued = dateTimeAt(str(rec.bgsj), '$.bgsj', true)!;
    const effective = dateTimeAt(str(rec.sjsj), '$.sjsj') ?? issued;
    const results = (rec.xm as Item[]).map((item, i) => {
      const code = String(item.xmdm);
      const unknownUnit = (u: string): void => out.warn(`$.xm[${i}].dw`, `unit '${u}' has no UCUM code; kept as text`);
      const value = typeof item.jg === 'number' || /^[+-]?\d+(\.\d+)?$/.test(String(item.jg).trim())
        ? { valueQuantity: quantity(Number(item.jg), { text: str(item.dw) }, unknownUnit) }
        : { valueString: String(item.jg) };
      const flag = INTERPRETATION[String(item.bz ?? '').trim()];
      const observation: Observation & { id: string } = {
        resourceType: 'Observation',
        id: out.id('observation', `${report}:${code}`),
        meta: out.meta(),
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
        code: localConcept(out, 'lab', code, str(item.xmmc)),
        subject: { reference: patient },
        ...encounterRef(out, rec),
        effectiveDateTime: effective,
        issued: new Date(issued).toISOString(),
        performer: [out.organization],
        ...value,
        ...(flag && { interpretation: [{ coding: [{ system: V3_INTERPRETATION, code: flag }] }] }),
        ...(str(item.ckfw) && { referenceRange: [range(str(item.ckfw)!, str(item.dw))] }),
      };
      out.add(observation);
      return { reference: `Observation/${observation.id}` };
    });
    out.add(diagnosticReport(out, rec, patient, { category: 'LAB', display: 'Laboratory', code: { text: str(rec.bbmc) ? `${str(rec.bbmc)}检验` : '检验报告' }, effective, issued, result: results }));
  },

  jc(out, rec) {
    const patient = subject(out, rec);
    const kind = String(rec.jclx).toUpperCase();
    const isEcg = kind === 'ECG' || kind === 'EC' || kind === '心电图';
    const issued = dateTimeAt(str(rec.bgsj), '$.bgsj', true)!;
    const effective = dateTimeAt(str(rec.jcsj), '$.jcsj') ?? issued;
    const text = [str(rec.sj) && `【检查所见】\n${str(rec.sj)}`, str(rec.zd) && `【诊断意见】\n${str(rec.zd)}`].filter(Boolean).join('\n\n');
    let study: string | undefined;
    if (str(rec.yxh)) {
      const s: ImagingStudy & { id: string } = {
        resourceType: 'ImagingStudy',
        id: out.id('study', str(rec.yxh)!),
        meta: out.meta(),
        identifier: [{ system: DICOM_UID, value: `urn:oid:${str(rec.yxh)}` }],
        status: 'available',
        subject: { reference: patient },
        ...(str(rec.jcbw) && { description: `${kind} ${str(rec.jcbw)}` }),
      };
      out.add(s);
      study = `ImagingStudy/${s.id}`;
    }
    const code = str(rec.jcdm) ? localConcept(out, 'exam', str(rec.jcdm)!, str(rec.jcmc)) : { text: [kind, str(rec.jcbw)].filter(Boolean).join(' ') };
    out.add(
      diagnosticReport(out, rec, patient, {
        category: isEcg ? 'EC' : 'RAD',
        display: isEcg ? 'Electrocardiac (e.g., EKG, EEC, Holter)' : 'Radiology',
        code,
        effective,
        issued,
        ...(str(rec.zd) && { conclusion: str(rec.zd) }),
        ...(text && { presentedForm: [{ contentType: 'text/plain; charset=utf-8', language: 'zh-CN', data: Buffer.from(text, 'utf8').toString('base64'), title: '检查报告' }] }),
        ...(study && { imagingStudy: [{ reference: study }] }),
      }),
    );
  },

  cf(out, rec) {
    const patient = subject(out, rec);
    const encounter = encounterRef(out, rec)?.encounter.reference;
    (rec.yp as Item[]).forEach((yp, i) =>
      addPrescription(
        out,
        {
          number: String(rec.cfh),
          patient,
          authoredOn: dateTimeAt(str(rec.kfsj), '$.kfsj', true),
          prescriber: str(rec.ysxm),
          drugCode: String(yp.ypdm),
          drugName: str(yp.ypmc),
          dose: optionalNumber(yp.jl, `$.yp[${i}].jl`),
          doseUnit: str(yp.jldw),
          frequency: str(yp.pc),
          route: str(yp.gytj),
          days: optionalNumber(yp.ts, `$.yp[${i}].ts`),
          quantity: optionalNumber(yp.sl, `$.yp[${i}].sl`),
          quantityUnit: str(yp.sldw),
          ...(encounter && { encounter }),
        },
        `$.yp[${i}].pc`,
      ),
    );
  },
};

/** Flags the HIS prints: letters or arrows. */
const INTERPRETATION: Record<string, string> = { H: 'H', L: 'L', N: 'N', '↑': 'H', '↓': 'L', HH: 'HH', LL: 'LL', '阳性': 'POS', '阴性': 'NEG' };

function range(text: string, unit?: string): ObservationReferenceRange {
  const m = /^\s*([\d.]+)\s*[-~～]\s*([\d.]+)\s*$/.exec(text);
  const q = (v: string) => ({ value: Number(v), ...(unit && { unit }) });
  if (m) return { low: q(m[1]), high: q(m[2]), text };
  const b = /^\s*(<|<=|≤)\s*([\d.]+)\s*$/.exec(text);
  if (b) return { high: q(b[2]), text };
  const a = /^\s*(>|>=|≥)\s*([\d.]+)\s*$/.exec(text);
  if (a) return { low: q(a[2]), text };
  return { text };
}

function diagnosticReport(
  out: ResultBuilder,
  rec: Rec,
  patient: string,
  r: Pick<DiagnosticReport, 'code' | 'result' | 'conclusion' | 'presentedForm' | 'imagingStudy'> & { category: string; display: string; effective: string; issued: string },
): DiagnosticReport & { id: string } {
  return {
    resourceType: 'DiagnosticReport',
    id: out.id('report', String(rec.bgdh)),
    meta: out.meta(),
    identifier: [{ system: out.localSystem('report'), value: String(rec.bgdh) }],
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: r.category, display: r.display }] }],
    code: r.code,
    subject: { reference: patient },
    ...encounterRef(out, rec),
    effectiveDateTime: r.effective,
    issued: new Date(r.issued).toISOString(),
    performer: [out.organization],
    ...(r.result && { result: r.result }),
    ...(r.conclusion && { conclusion: r.conclusion }),
    ...(r.presentedForm && { presentedForm: r.presentedForm }),
    ...(r.imagingStudy && { imagingStudy: r.imagingStudy }),
  };
}

