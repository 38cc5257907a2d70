/**
 * The county hospital's HIS export (临溪县人民医院): vendor JSON with pinyin-abbreviated
 * field names, one record per object, `lx` telling its type (br patient, jz visit, jy lab
 * report, jc exam report, cf prescription, zzd referral form). A posted body is one record or an array of them.
 * profiles/inbound/county-hospital.schema.json is the contract; errors name JSON paths
 * relative to the record (`$.xm[2].jg`).
 */
import type { MapContext } from '../context';
import { ResultBuilder } from '../common/result';
import { MappingError, type MapResult, type RawRecord } from '../types';
import { mapExamReport } from './exam';
import { parseJson } from './json-text';
import { mapLabReport } from './lab';
import { mapRegistration } from './patient';
import { mapPrescription } from './prescription';
import { mapReferralForm } from './referral';
import { KEY_FIELD, recordId, type CountyRecord } from './record';
import { checkRecord } from './schema';
import { mapVisit } from './visit';

/** Cheap, at receipt: the body's records, each kept as its own JSON text. */
export function split(body: string): RawRecord[] {
  const parsed = parseJson(body);
  const records = Array.isArray(parsed) ? parsed : [parsed];
  if (records.length === 0) throw new MappingError('the body holds no records', { path: '$' }, 'required');
  return records.map((r: unknown, i) => {
    const at = Array.isArray(parsed) ? `$[${i}]` : '$';
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new MappingError('a record must be a JSON object', { path: at }, 'structure');
    const fields = r as Record<string, unknown>;
    const kind = typeof fields.lx === 'string' ? fields.lx : 'unknown';
    const key = Object.hasOwn(KEY_FIELD, kind) ? KEY_FIELD[kind as CountyRecord['lx']] : undefined;
    const localId = key === undefined ? undefined : fields[key];
    return { raw: JSON.stringify(r), kind, ...(typeof localId === 'string' && { localId }) };
  });
}

/** One record (as split kept it) to a transaction Bundle. Pure. */
export function map(raw: string, ctx: MapContext): MapResult {
  const record = parseJson(raw);
  if (Array.isArray(record)) throw new MappingError('one record expected, got an array: split the body first', { path: '$' }, 'structure');
  checkRecord(record);
  const out = new ResultBuilder(ctx, recordId(record));
  mapByType(out, record);
  return out.result();
}

function mapByType(out: ResultBuilder, r: CountyRecord): void {
  switch (r.lx) {
    case 'br':
      return mapRegistration(out, r);
    case 'jz':
      return mapVisit(out, r);
    case 'jy':
      return mapLabReport(out, r);
    case 'jc':
      return mapExamReport(out, r);
    case 'cf':
      return mapPrescription(out, r);
    case 'zzd':
      return mapReferralForm(out, r);
  }
}
