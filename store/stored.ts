import type { Resource } from '@medplum/fhirtypes';

/**
 * A resource as the store holds it. `json` is the stored text, served as is: responses splice
 * it into Bundles without a parse/serialise round trip, which matters for $everything.
 */
export class StoredResource {
  private parsed?: Resource;
  constructor(
    readonly resourceType: string,
    readonly id: string,
    readonly versionId: string,
    readonly lastUpdated: string,
    readonly deleted: boolean,
    readonly json: string | null,
    /** The Patient ids it is about (its access labels, store/access-labels.ts), comma-separated as selected: split only when asked. */
    private readonly patientList = '',
  ) {}

  /** `Patient/id` of each Patient this resource is about (its patient compartment), without parsing the resource. */
  get patients(): string[] {
    return this.patientList === '' ? [] : this.patientList.split(',').map((id) => `Patient/${id}`);
  }

  get resource(): Resource {
    if (this.json === null) throw new Error(`${this.resourceType}/${this.id} is deleted`);
    this.parsed ??= JSON.parse(this.json) as Resource;
    return this.parsed;
  }

  get reference(): string {
    return `${this.resourceType}/${this.id}`;
  }
}

export interface ResourceRow {
  type: string;
  id: string;
  version: number;
  last_updated: Date | string;
  deleted: boolean;
  content: string | null;
  patients: string;
}

/** Columns to select (from a table aliased `r`) to build a StoredResource. */
// Patient ids cannot hold a comma (store/repository.ts ID_PATTERN), so the joined list splits back exactly.
export const RESOURCE_COLUMNS = `r.type, r.id, r.version, r.last_updated, r.deleted, r.content::text AS content, array_to_string(r.patients, ',') AS patients`;

export function fromRow(row: ResourceRow): StoredResource {
  const lastUpdated = row.last_updated instanceof Date ? row.last_updated.toISOString() : new Date(row.last_updated).toISOString();
  return new StoredResource(row.type, row.id, String(row.version), lastUpdated, row.deleted, row.content, row.patients);
}
