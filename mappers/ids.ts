import { createHash } from 'node:crypto';

/**
 * A resource id derived from where a record came from, as FHIR-Converter does: the same
 * facility, record kind and local id always give the same id, so a resent or corrected
 * record updates its resource instead of adding a copy. Hashed (a name-based UUID) rather
 * than spelled out, so local MRNs and visit numbers never appear in URLs or logs.
 */
export function resourceId(facility: string, kind: string, localId: string): string {
  const h = createHash('sha256').update(`${facility}\u0000${kind}\u0000${localId}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50; // version 5 layout (name-based), SHA-256 truncated
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** `Type/<resourceId>`. */
export function reference(type: string, facility: string, kind: string, localId: string): string {
  return `${type}/${resourceId(facility, kind, localId)}`;
}
