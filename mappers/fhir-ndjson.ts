/**
 * A line of FHIR NDJSON (Bulk Data format) as a one-entry transaction: the resource is FHIR
 * already, so "mapping" is only a PUT to its own id, which makes importing the same file
 * twice (or an export of this gateway) write each resource once. The store then holds it to
 * the same checks as any FHIR write.
 */
import type { Resource } from '@medplum/fhirtypes';
import { MappingError, type MapResult } from './types';

const TYPE = /^[A-Z][A-Za-z]{1,63}$/;

export function mapNdjsonLine(text: string, line: number): MapResult {
  let resource: Resource;
  try {
    resource = JSON.parse(text) as Resource;
  } catch {
    throw new MappingError('not a JSON value', { line }, 'structure');
  }
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) throw new MappingError('a line holds one resource, a JSON object', { line }, 'structure');
  if (typeof resource.resourceType !== 'string' || !TYPE.test(resource.resourceType)) throw new MappingError('resourceType is missing or not a resource type', { line, path: 'resourceType' }, 'required');
  if (typeof resource.id !== 'string' || resource.id === '') {
    throw new MappingError('a resource to import needs its id, so that importing it again updates it instead of doubling it', { line, path: 'id' }, 'required');
  }
  const url = `${resource.resourceType}/${resource.id}`;
  return {
    bundle: { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: url, resource, request: { method: 'PUT', url } }] },
    createOnly: [],
    unmapped: [],
    warnings: [],
  };
}
