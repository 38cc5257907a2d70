/**
 * The community centre's CSV exports (public-health system): chronic-disease follow-ups
 * (blood pressure, fasting glucose, weight, height) and prescriptions. One row is one record;
 * the file kind is told by its header. Column names are the system's pinyin abbreviations.
 */
import type { Encounter, Observation, ObservationComponent, Quantity } from '@medplum/fhirtypes';
import { parse } from 'csv-parse/sync';
import type { MapContext } from '../context';
import { addPatient, addPrescription, dateTimeAt, optionalNumber, required, type Demographics } from '../common/records';
import { ResultBuilder } from '../common/result';
import { LOINC, OBSERVATION_CATEGORY, UCUM, V3_ACT_CODE } from '../common/systems';
import { MappingError, type MapResult, type RawRecord } from '../types';

type Row = Record<string, string>;

const KINDS = {
  followup: { required: ['sfjlh', 'jmbh', 'xm', 'sfrq'], optional: ['xb', 'csrq', 'sfzh', 'lxdh', 'sfys', 'ssy', 'szy', 'kfxt', 'tz', 'sg', 'jblx'] },
  prescription: { required: ['cfh', 'jmbh', 'xm', 'kfrq', 'ypdm'], optional: ['ypmc', 'jl', 'jldw', 'pc', 'gytj', 'ts', 'sl', 'sldw', 'ysxm'] },
} as const;
type Kind = keyof typeof KINDS;

function kindOf(header: string[]): Kind {
  const kind: Kind = header.includes('sfjlh') ? 'followup' : header.includes('cfh') ? 'prescription' : (undefined as never);
  if (!kind) throw new MappingError('the header names neither a follow-up (sfjlh) nor a prescription (cfh) file', { line: 1 }, 'structure');
  const known = new Set<string>([...KINDS[kind].required, ...KINDS[kind].optional]);
  for (const col of header) if (!known.has(col)) throw new MappingError(`unknown column '${col}' in a ${kind} file`, { line: 1, path: col }, 'structure');
  for (const col of KINDS[kind].required) if (!header.includes(col)) throw new MappingError(`required column '${col}' is missing`, { line: 1, path: col }, 'required');
  return kind;
}

function parseCsv(body: string): { header: string[]; rows: { record: string[]; raw: string; line: number }[] } {
  let parsed: { record: string[]; raw: string; info: { lines: number } }[];
  try {
    parsed = parse(body.replace(/^\uFEFF/, ''), { raw: true, info: true, skip_empty_lines: true, relax_column_count: false, trim: true }) as never;
  } catch (err) {
    const line = (err as { lines?: number }).lines;
    throw new MappingError(`not valid CSV: ${(err as Error).message.split(':')[0]}`, line ? { line } : {}, 'structure');
  }
  if (parsed.length === 0) throw new MappingError('the body is empty: a header row is required', { line: 1 }, 'required');
  const [head, ...rest] = parsed;
  return { header: head.record, rows: rest.map((r) => ({ record: r.record, raw: r.raw.replace(/\r?\n$/, ''), line: r.info.lines })) };
}

/** One record per data row; each keeps the header so it maps on its own. */
export function split(body: string): RawRecord[] {
  const { header, rows } = parseCsv(body);
  const kind = kindOf(header);
  const headerLine = header.join(',');
  return rows.map((r) => ({ raw: `${headerLine}\n${r.raw}`, kind, localId: r.record[header.indexOf(kind === 'followup' ? 'sfjlh' : 'cfh')], line: r.line }));
}

export function map(raw: string, ctx: MapContext): MapResult {
  const { header, rows } = parseCsv(raw);
  const kind = kindOf(header);
  if (rows.length !== 1) throw new MappingError(`a record is one data row, got ${rows.length}`, {}, 'structure');
  const row: Row = Object.fromEntries(header.map((h, i) => [h, rows[0].record[i] ?? '']));
  const id = required(row[kind === 'followup' ? 'sfjlh' : 'cfh'], kind === 'followup' ? 'sfjlh' : 'cfh');
  const out = new ResultBuilder(ctx, id);
  if (kind === 'followup') followUp(out, row, id);
  else prescription(out, row, id);
  return out.result();
}

const demographicsColumns: Record<keyof Demographics, string> = {
  mrn: 'jmbh', name: 'xm', sex: 'xb', birthDate: 'csrq', idCard: 'sfzh', phone: 'lxdh', address: 'jtzz', insuranceCard: 'ybkh', healthCard: 'jkkh',
};

function followUp(out: ResultBuilder, row: Row, id: string): void {
  const mrn = required(row.jmbh, 'jmbh');
  // The centre is where its residents are registered: its demographics are the record's own.
  const patient = addPatient(out, { mrn, name: required(row.xm, 'xm'), sex: row.xb, birthDate: row.csrq, idCard: row.sfzh, phone: row.lxdh }, (f) => demographicsColumns[f], false);
  const when = dateTimeAt(row.sfrq, 'sfrq', true)!;
  const encounter: Encounter & { id: string } = {
    resourceType: 'Encounter',
    id: out.id('encounter', id),
    meta: out.meta(),
    identifier: [{ system: out.localSystem('followup'), value: id }],
    status: 'finished',
    class: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
    type: [{ text: row.jblx ? `${row.jblx}随访` : '慢病随访' }],
    subject: { reference: patient },
    ...(row.sfys && { participant: [{ individual: { display: row.sfys } }] }),
    period: { start: when },
    serviceProvider: out.organization,
  };
  out.add(encounter);
  const obs = (key: string, code: string, display: string, category: string, value: Partial<Observation>): void => {
    out.add({
      resourceType: 'Observation',
      id: out.id('observation', `${id}:${key}`),
      meta: out.meta(),
      status: 'final',
      category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: category }] }],
      code: { coding: [{ system: LOINC, code, display }], text: display },
      subject: { reference: patient },
      encounter: { reference: `Encounter/${encounter.id}` },
      effectiveDateTime: when,
      performer: [out.organization],
      ...value,
    } as Observation & { id: string });
  };
  const q = (value: number, code: string): Quantity => ({ value, unit: code, system: UCUM, code });
  const systolic = optionalNumber(row.ssy, 'ssy');
  const diastolic = optionalNumber(row.szy, 'szy');
  if (systolic !== undefined || diastolic !== undefined) {
    const component: ObservationComponent[] = [];
    if (systolic !== undefined) component.push({ code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] }, valueQuantity: q(systolic, 'mm[Hg]') });
    if (diastolic !== undefined) component.push({ code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }] }, valueQuantity: q(diastolic, 'mm[Hg]') });
    obs('bp', '85354-9', 'Blood pressure panel', 'vital-signs', { component });
  }
  const glucose = optionalNumber(row.kfxt, 'kfxt');
  if (glucose !== undefined) obs('glu', '1558-6', 'Fasting glucose', 'laboratory', { valueQuantity: q(glucose, 'mmol/L') });
  const weight = optionalNumber(row.tz, 'tz');
  if (weight !== undefined) obs('wt', '29463-7', 'Body weight', 'vital-signs', { valueQuantity: q(weight, 'kg') });
  const height = optionalNumber(row.sg, 'sg');
  if (height !== undefined) obs('ht', '8302-2', 'Body height', 'vital-signs', { valueQuantity: q(height, 'cm') });
}

function prescription(out: ResultBuilder, row: Row, id: string): void {
  const mrn = required(row.jmbh, 'jmbh');
  const patient = addPatient(out, { mrn, name: row.xm }, (f) => demographicsColumns[f], true);
  addPrescription(
    out,
    {
      number: id,
      patient,
      authoredOn: dateTimeAt(row.kfrq, 'kfrq', true),
      prescriber: row.ysxm || undefined,
      drugCode: required(row.ypdm, 'ypdm'),
      drugName: row.ypmc || undefined,
      dose: optionalNumber(row.jl, 'jl'),
      doseUnit: row.jldw || undefined,
      frequency: row.pc || undefined,
      route: row.gytj || undefined,
      days: optionalNumber(row.ts, 'ts'),
      quantity: optionalNumber(row.sl, 'sl'),
      quantityUnit: row.sldw || undefined,
    },
    'pc',
  );
}
