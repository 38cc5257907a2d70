/** Collects what one message maps to: the transaction entries and the soft findings beside them. */
import type { BundleEntry, Coding, Meta, Organization, Reference, Resource } from '@medplum/fhirtypes';
import { metaSource, SOURCE_URI_BASE, type MapContext } from '../context';
import { resourceId } from '../ids';
import type { MapResult, MergeRequest, UnmappedCode } from '../types';

type IdentifiedResource = Resource & { id: string };

export class ResultBuilder {
  private readonly facility: string;
  private readonly source: string;
  private readonly entries: BundleEntry[] = [];
  private readonly fullUrls = new Set<string>();
  private readonly createOnly: string[] = [];
  private readonly unmappedCodes: UnmappedCode[] = [];
  private readonly unmappedKeys = new Set<string>();
  private readonly warnings: string[] = [];

  constructor(
    readonly ctx: MapContext,
    /** MSH-10: named in every resource's meta.source. */
    controlId: string,
  ) {
    this.facility = ctx.source.facility;
    this.source = metaSource(ctx.source, controlId);
  }

  /** The deterministic id of a record of this facility (ids.ts). */
  id(kind: string, localId: string): string {
    return resourceId(this.facility, kind, localId);
  }

  ref(type: string, kind: string, localId: string): string {
    return `${type}/${this.id(kind, localId)}`;
  }

  get organization(): Reference<Organization> {
    return { reference: `Organization/${this.facility}` };
  }

  /** A fresh object per resource: the store may stamp versionId/lastUpdated on it. */
  meta(): Meta {
    return { source: this.source };
  }

  /**
   * Adds a PUT of the resource; false (and nothing added) when the message already produced
   * a resource with this id. `createOnly` marks a copy that must not overwrite the owner's.
   */
  add(resource: IdentifiedResource, createOnly = false): boolean {
    const fullUrl = `urn:uuid:${resource.id}`;
    if (this.fullUrls.has(fullUrl)) return false;
    this.fullUrls.add(fullUrl);
    this.entries.push({ fullUrl, resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } });
    if (createOnly) this.createOnly.push(fullUrl);
    return true;
  }

  /** A local code without a standard mapping, counted once per message. */
  unmapped(coding: Coding & { system: string; code: string }, kind: string): void {
    const key = `${kind}\u0000${coding.system}\u0000${coding.code}`;
    if (this.unmappedKeys.has(key)) return;
    this.unmappedKeys.add(key);
    this.unmappedCodes.push({ system: coding.system, code: coding.code, ...(coding.display !== undefined && { display: coding.display }), kind });
  }

  /** `where` as Er7Segment.label / Er7Field.label print it: 'PID-3 (repetition 2)'. */
  warn(where: string, message: string): void {
    this.warnings.push(`${where}: ${message}`);
  }

  /**
   * The system of a facility-local code or number of this kind: the configured local code
   * system ('lab', 'exam', 'diagnosis', 'drug'), else one derived from the source's URI.
   */
  localSystem(kind: string): string {
    return this.ctx.source.localSystems?.[kind] ?? `${SOURCE_URI_BASE}${this.ctx.source.id}:${kind}`;
  }

  result(merge?: MergeRequest): MapResult {
    return {
      bundle: { resourceType: 'Bundle', type: 'transaction', entry: this.entries },
      createOnly: this.createOnly,
      unmapped: this.unmappedCodes,
      ...(merge && { merge }),
      warnings: this.warnings,
    };
  }
}
