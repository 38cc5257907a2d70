/** The files the centre's systems export (public health: follow-ups, prescriptions; the LIS: results), told apart by their header. */
import { MappingError } from '../types';

export interface FileKind {
  name: 'followup' | 'prescription' | 'lab';
  /** The column holding a row's own number: its local id and meta.source. */
  key: string;
  /** In the header, and filled in every row. */
  required: readonly string[];
  optional: readonly string[];
}

/** 慢病随访: a chronic-disease follow-up (blood pressure, fasting glucose, weight, height). */
export const FOLLOW_UP: FileKind = {
  name: 'followup',
  key: 'sfjlh',
  required: ['sfjlh', 'jmbh', 'xm', 'xb', 'sfrq'],
  optional: ['csrq', 'sfzh', 'lxdh', 'sfys', 'ssy', 'szy', 'kfxt', 'tz', 'sg', 'jblx'],
};

/** 处方: one drug line of a prescription per row. */
export const PRESCRIPTION: FileKind = {
  name: 'prescription',
  key: 'cfh',
  required: ['cfh', 'jmbh', 'kfrq', 'ypdm', 'ypmc'],
  optional: ['xm', 'jl', 'jldw', 'pc', 'gytj', 'ts', 'sl', 'sldw', 'ysxm'],
};

/** 检验结果: one result of the centre's laboratory per row (the LIS export its history comes in). */
export const LAB: FileKind = {
  name: 'lab',
  key: 'jyjgh',
  required: ['jyjgh', 'jmbh', 'cjsj', 'xmdm', 'jg'],
  optional: ['xm', 'xb', 'csrq', 'bgh', 'xmmc', 'dw', 'ckfw', 'ycbz', 'bgsj'],
};

const KINDS: readonly FileKind[] = [FOLLOW_UP, PRESCRIPTION, LAB];
const KNOWN = new Map(KINDS.map((k) => [k, new Set([...k.required, ...k.optional])]));
const NUMBER_COLUMNS = 'a follow-up (sfjlh), a prescription (cfh) or a lab result (jyjgh)';

/** The file's kind, once its header (column names, any case) names every required column and no unknown one. */
export function kindOf(header: readonly string[]): FileKind {
  const present = KINDS.filter((k) => header.includes(k.key));
  if (present.length !== 1) {
    throw new MappingError(`the header must name one number column, of ${NUMBER_COLUMNS}; it names ${present.length === 0 ? 'none' : present.map((k) => k.key).join(' and ')}`, { line: 1 }, 'structure');
  }
  const kind = present[0];
  const known = KNOWN.get(kind)!;
  const seen = new Set<string>();
  for (const column of header) {
    if (!known.has(column)) throw new MappingError(`not a column of a ${kind.name} file`, { line: 1, path: column }, 'structure');
    if (seen.has(column)) throw new MappingError('the column appears twice', { line: 1, path: column }, 'structure');
    seen.add(column);
  }
  for (const column of kind.required) if (!seen.has(column)) throw new MappingError('required column missing from the header', { line: 1, path: column }, 'required');
  return kind;
}
