import type { MapResult } from '../mappers/types';

/**
 * The records' Bundles as one, a resource once: mapped ids are deterministic and references
 * absolute, so records written together (an import chunk, an ingest batch) may share a Patient
 * or an Encounter. A later record's version wins, as it would have one by one, except that a
 * demographics copy (createOnly) never replaces a full record of the same resource.
 */
export function combined(results: MapResult[]): MapResult {
  const entries = new Map<string, { entry: NonNullable<MapResult['bundle']['entry']>[number]; createOnly: boolean }>();
  for (const m of results) {
    const createOnly = new Set(m.createOnly);
    for (const entry of m.bundle.entry ?? []) {
      const key = entry.fullUrl!;
      const copy = createOnly.has(key);
      const seen = entries.get(key);
      if (seen && copy) continue;
      entries.set(key, { entry, createOnly: copy });
    }
  }
  const all = [...entries.values()];
  return {
    bundle: { resourceType: 'Bundle', type: 'transaction', entry: all.map((e) => e.entry) },
    createOnly: all.filter((e) => e.createOnly).map((e) => e.entry.fullUrl!),
    unmapped: [],
    warnings: [],
  };
}
