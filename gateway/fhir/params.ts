/** Reading FHIR Parameters bodies of operations. */
import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest } from '../../store/errors';
import { checkDepth } from './depth';

export function parametersBody(body: unknown, operation: string): ParametersParameter[] {
  const p = body as Parameters | undefined;
  if (!p || typeof p !== 'object' || p.resourceType !== 'Parameters') throw badRequest(`${operation} takes a Parameters resource (Content-Type: application/fhir+json)`);
  checkDepth(p, 'Parameters');
  return p.parameter ?? [];
}

/** A string-like parameter (valueString, valueCode, valueId, valueUri or a Reference's reference). */
export function stringParam(params: ParametersParameter[], name: string, operation: string, required: true): string;
export function stringParam(params: ParametersParameter[], name: string, operation: string, required?: boolean): string | undefined;
export function stringParam(params: ParametersParameter[], name: string, operation: string, required = false): string | undefined {
  const p = params.find((x) => x.name === name);
  const value = p?.valueString ?? p?.valueCode ?? p?.valueId ?? p?.valueUri ?? p?.valueReference?.reference;
  if (required && !value) throw badRequest(`${operation}: parameter '${name}' is required`, [`Parameters.parameter.where(name='${name}')`]);
  return value;
}
