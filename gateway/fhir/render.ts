import type { BundleLink, OperationOutcome } from '@medplum/fhirtypes';
import type { StoredResource } from '../../store/stored';

export interface RenderEntry {
  fullUrl?: string;
  /** Resource JSON text, spliced in as is. */
  json?: string;
  search?: { mode: 'match' | 'include' | 'outcome'; score?: number; extension?: { url: string; valueCode: string }[] };
  request?: { method: string; url: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: OperationOutcome };
}

/**
 * Writes a Bundle as text around the stored resources' JSON, so a page of 500 resources is not
 * parsed and serialised again on its way out.
 */
export function renderBundle(head: { type: string; total?: number; link?: BundleLink[] }, entries: RenderEntry[]): string {
  const parts: string[] = [`{"resourceType":"Bundle","type":${JSON.stringify(head.type)}`];
  if (head.total !== undefined) parts.push(`,"total":${head.total}`);
  if (head.link?.length) parts.push(`,"link":${JSON.stringify(head.link)}`);
  parts.push(`,"timestamp":"${new Date().toISOString()}","entry":[`);
  entries.forEach((e, i) => {
    if (i > 0) parts.push(',');
    const fields: string[] = [];
    if (e.fullUrl) fields.push(`"fullUrl":${JSON.stringify(e.fullUrl)}`);
    if (e.json) fields.push(`"resource":${e.json}`);
    if (e.search) fields.push(`"search":${JSON.stringify(e.search)}`);
    if (e.request) fields.push(`"request":${JSON.stringify(e.request)}`);
    if (e.response) fields.push(`"response":${JSON.stringify(e.response)}`);
    parts.push(`{${fields.join(',')}}`);
  });
  parts.push(']}');
  return parts.join('');
}

export function fullUrl(base: string, s: StoredResource): string {
  return `${base}/${s.resourceType}/${s.id}`;
}
