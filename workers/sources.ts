import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConceptMap } from '@medplum/fhirtypes';
import { facilityNames, Terminology, type MapContext, type SourceConfig } from '../mappers/context';

const FORMATS = new Set(['hl7v2', 'county-json', 'community-csv']);

/** Where the ConceptMaps of every source live: `<source id>-<kind>.json`. */
export const TERMINOLOGY_DIR = resolve(__dirname, '../mappers/terminology');

/**
 * The registered sources and, for each, the context its mapper runs with (its ConceptMaps
 * loaded once). Read at start; a bad file stops the process with a message naming it.
 */
export class SourceRegistry {
  private readonly contexts = new Map<string, MapContext>();
  private readonly bySendingFacility = new Map<string, MapContext>();

  constructor(sources: SourceConfig[], conceptMaps: ConceptMap[]) {
    const facilities = facilityNames(sources);
    for (const source of sources) {
      const own = conceptMaps.filter((cm) => cm.id?.startsWith(`${source.id}-`));
      const ctx: MapContext = { source, terminology: new Terminology(own), facilities };
      this.contexts.set(source.id, ctx);
      for (const ns of source.sendingFacility ?? []) this.bySendingFacility.set(ns, ctx);
    }
  }

  get(id: string): MapContext | undefined {
    return this.contexts.get(id);
  }

  /** The HL7 source sending as MSH-4 `namespace` (its first component). */
  forSendingFacility(namespace: string): MapContext | undefined {
    return this.bySendingFacility.get(namespace);
  }

  get sources(): SourceConfig[] {
    return [...this.contexts.values()].map((c) => c.source);
  }

  /** Each source's MRN system -> its facility: the store refuses a facility another's MRNs (store/access-writes.ts). */
  get mrnSystems(): Record<string, string> {
    return Object.fromEntries(this.sources.map((s) => [s.mrnSystem, s.facility]));
  }
}

/** Loads sources from a JSON file (an array of SourceConfig) and every ConceptMap in `terminologyDir`. */
export function loadSources(file: string, terminologyDir = TERMINOLOGY_DIR): SourceRegistry {
  const sources = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(sources)) throw new Error(`${file}: expected a JSON array of sources`);
  const seen = new Set<string>();
  sources.forEach((s: Partial<SourceConfig>, i) => {
    const at = `${file}: source [${i}]`;
    if (!s || typeof s.id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(s.id)) throw new Error(`${at}: id must be lower-case letters, digits and dashes`);
    if (seen.has(s.id)) throw new Error(`${at}: duplicate id '${s.id}'`);
    seen.add(s.id);
    if (typeof s.facility !== 'string' || !s.facility) throw new Error(`${at}: facility is required`);
    if (!s.format || !FORMATS.has(s.format)) throw new Error(`${at}: format must be one of ${[...FORMATS].join(', ')}`);
    if (typeof s.mrnSystem !== 'string' || !s.mrnSystem) throw new Error(`${at}: mrnSystem is required`);
  });
  const conceptMaps = readdirSync(terminologyDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const cm = JSON.parse(readFileSync(join(terminologyDir, f), 'utf8')) as ConceptMap;
      if (cm.resourceType !== 'ConceptMap') throw new Error(`${join(terminologyDir, f)}: not a ConceptMap`);
      // The file name, not cm.id, says which source a map belongs to.
      return { ...cm, id: f.replace(/\.json$/, '') };
    });
  return new SourceRegistry(sources as SourceConfig[], conceptMaps);
}
