/**
 * The structural check of a county record against profiles/inbound/county-hospital.schema.json,
 * compiled once at load. Its first failure becomes a MappingError naming the JSON path.
 */
import Ajv2020, { type ErrorObject } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import schema from '../../profiles/inbound/county-hospital.schema.json';
import { localDateTime } from '../context';
import { MappingError } from '../types';
import type { CountyRecord } from './record';

const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const RECORD_TYPES = schema.oneOf.map((s) => s.$ref.split('/').pop()).join(', ');

const ajv = new Ajv2020({ discriminator: true, verbose: true, strict: true, strictRequired: false });
addFormats(ajv, ['date']);
ajv.addFormat('local-date-time', { type: 'string', validate: (s: string) => LOCAL_DATE_TIME.test(s) && localDateTime(s) !== undefined });
const validate = ajv.compile<CountyRecord>(schema);

const FORMATS: Readonly<Record<string, string>> = { date: 'a date (yyyy-MM-dd)', 'local-date-time': 'a date and time (yyyy-MM-dd HH:mm:ss)' };

export function checkRecord(value: unknown): asserts value is CountyRecord {
  if (validate(value)) return;
  // Without allErrors ajv stops at the first failing keyword; an anyOf reports its branches'
  // failures before its own, so the last error is the one that speaks for the record.
  const e = validate.errors![validate.errors!.length - 1];
  const { path, message, code } = describe(e);
  throw new MappingError(message, { path }, code);
}

/** `/xm/2/jg` -> `$.xm[2].jg` */
function jsonPath(pointer: string): string {
  let path = '$';
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return path;
}

function describe(e: ErrorObject): { path: string; message: string; code: MappingError['code'] } {
  const at = jsonPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: `${at}.${p.missingProperty}`, message: 'required, but missing', code: 'required' };
    case 'dependentRequired':
      return { path: `${at}.${p.missingProperty}`, message: `required when ${p.property} is given`, code: 'required' };
    case 'additionalProperties':
      return { path: `${at}.${p.additionalProperty}`, message: 'not a field of this record type', code: 'structure' };
    case 'discriminator':
      return p.error === 'mapping'
        ? { path: '$.lx', message: `record type is not one of ${RECORD_TYPES}`, code: 'not-supported' }
        : { path: '$.lx', message: `required: a string naming the record type (${RECORD_TYPES})`, code: 'required' };
    case 'type':
      return { path: at, message: at === '$' ? 'a record must be a JSON object' : `must be of type ${p.type}`, code: 'structure' };
    case 'enum':
      return { path: at, message: `must be one of ${(p.allowedValues as unknown[]).filter((v) => typeof v === 'string').join(', ')}`, code: 'code-invalid' };
    case 'format':
      return { path: at, message: `not ${FORMATS[p.format as string]}`, code: 'value' };
    case 'minLength':
      return { path: at, message: 'empty', code: 'required' };
    case 'maxLength':
      return { path: at, message: `longer than ${p.limit} characters`, code: 'value' };
    case 'minItems':
      return { path: at, message: 'holds no items', code: 'required' };
    default: {
      // anyOf, pattern: the schema's description says what was expected.
      const expected = (e.parentSchema as { description?: string }).description ?? e.message;
      const choosesFields = e.keyword === 'anyOf' && (e.schema as { required?: string[] }[]).every((branch) => branch.required);
      return { path: at, message: `must be ${expected}`, code: choosesFields ? 'required' : 'value' };
    }
  }
}
