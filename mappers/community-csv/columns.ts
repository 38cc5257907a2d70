/** The two files the public-health system exports, told apart by their header. */
import { MappingError } from '../types';

export interface FileKind {
  name: 'followup' | 'prescription';
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

const KNOWN = new Map([FOLLOW_UP, PRESCRIPTION].map((k) => [k, new Set([...k.required, ...k.optional])]));

/** The file's kind, once its header (column names, any case) names every required column and no unknown one. */
export function kindOf(header: readonly string[]): FileKind {
  const hasFollowUp = header.includes(FOLLOW_UP.key);
  const hasPrescription = header.includes(PRESCRIPTION.key);
  if (hasFollowUp === hasPrescription) {
    const names = hasFollowUp ? 'both a follow-up (sfjlh) and a prescription (cfh)' : 'neither a follow-up (sfjlh) nor a prescription (cfh)';
    throw new MappingError(`the header names ${names} number column`, { line: 1 }, 'structure');
  }
  const kind = hasFollowUp ? FOLLOW_UP : PRESCRIPTION;
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
