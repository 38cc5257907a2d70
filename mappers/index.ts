import * as communityCsv from './community-csv';
import type { MapContext } from './context';
import * as countyJson from './county-json';
import { decodeEr7 } from './hl7v2/decode';
import { mapHl7v2 } from './hl7v2';
import type { MapResult, RawRecord } from './types';

/**
 * The one entry to every mapper: a stored record (its bytes as received) to a MapResult.
 * Receipt and the ingest worker both call this, so what was checked when the sender was
 * acknowledged is exactly what is applied.
 */
export function mapRecord(ctx: MapContext, body: Buffer, charset?: string): MapResult {
  switch (ctx.source.format) {
    case 'hl7v2':
      return mapHl7v2(decodeEr7(body, charset).text, ctx);
    case 'county-json':
      return countyJson.map(body.toString('utf8'), ctx);
    case 'community-csv':
      return communityCsv.map(body.toString('utf8'), ctx);
  }
}

/** Splits a posted body of a non-HL7 source into its records (throws MappingError naming where it cannot). */
export function splitRecords(ctx: MapContext, body: string): RawRecord[] {
  switch (ctx.source.format) {
    case 'county-json':
      return countyJson.split(body);
    case 'community-csv':
      return communityCsv.split(body);
    case 'hl7v2':
      throw new Error('HL7 v2 messages arrive one at a time; they are not split');
  }
}
