import type { MapResult } from '../mappers/types';

/**
 * What receipt mapped and checked, kept for the ingest worker of the same process, so that it
 * applies a record without mapping it again: same code, same record, same result. A record
 * received by another process, or pushed out by newer ones while the worker is behind, is
 * mapped again, as every record was before. Each is taken once: a retry maps afresh.
 */
export class PreparedRecords {
  private readonly records = new Map<string, MapResult>();

  /** About 1,000 ORU^R01 of 8 results hold some 30 MB. */
  constructor(private readonly max = 1000) {}

  put(messageId: string, mapped: MapResult): void {
    if (this.records.size >= this.max) this.records.delete(this.records.keys().next().value!);
    this.records.set(messageId, mapped);
  }

  take(messageId: string): MapResult | undefined {
    const mapped = this.records.get(messageId);
    this.records.delete(messageId);
    return mapped;
  }
}
