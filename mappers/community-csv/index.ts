/**
 * The community centre's CSV exports (湖滨街道社区卫生服务中心, public-health system):
 * chronic-disease follow-ups and prescriptions, and its LIS's lab results, one record per row, the file kind told by
 * its header (pinyin column names). Errors name the line in the posted body and the column.
 */
import type { MapContext } from '../context';
import { ResultBuilder } from '../common/result';
import { MappingError, type MapResult, type RawRecord } from '../types';
import { FOLLOW_UP, kindOf, PRESCRIPTION, type FileKind } from './columns';
import { markLine, readCsv, type CsvTable } from './csv';
import { mapFollowUp } from './followup';
import { mapLabRow } from './lab';
import { mapPrescriptionRow } from './prescription';
import { Row } from './row';

function table(body: string): { kind: FileKind; header: string[]; csv: CsvTable } {
  const csv = readCsv(body);
  const header = csv.header.map((h) => h.toLowerCase());
  return { kind: kindOf(header), header, csv };
}

/** Cheap, at receipt: a record per data row, its text the header line and that row, marked with the row's line. */
export function split(body: string): RawRecord[] {
  const { kind, header, csv } = table(body);
  if (csv.rows.length === 0) throw new MappingError('the file holds no data rows', { line: 2 }, 'required');
  const key = header.indexOf(kind.key);
  return csv.rows.map((r) => ({
    raw: markLine(r.line, `${csv.headerText}\n${r.text}`),
    kind: kind.name,
    ...(r.fields[key] && { localId: r.fields[key] }),
    line: r.line,
  }));
}

/** One row (as split kept it) to a transaction Bundle. Pure. */
export function map(raw: string, ctx: MapContext): MapResult {
  const { kind, header, csv } = table(raw);
  if (csv.rows.length !== 1) throw new MappingError(`a record is one data row, this has ${csv.rows.length}: split the body first`, { line: 2 }, 'structure');
  const [{ line, fields }] = csv.rows;
  if (fields.length !== header.length) throw new MappingError(`the row has ${fields.length} fields where the header names ${header.length}`, { line }, 'structure');
  const row = new Row(line, new Map(header.map((h, i) => [h, fields[i]])));
  const number = row.required(kind.key);
  const out = new ResultBuilder(ctx, number);
  if (kind === FOLLOW_UP) mapFollowUp(out, row, number);
  else if (kind === PRESCRIPTION) mapPrescriptionRow(out, row, number);
  else mapLabRow(out, row, number);
  return out.result();
}
