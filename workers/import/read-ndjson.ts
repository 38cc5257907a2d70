import type { Readable } from 'node:stream';
import { byteLines, type ReadRecord } from './records';

/** FHIR Bulk Data NDJSON: a resource per line; blank lines (and a BOM, which trim() drops) are skipped. */
export async function* ndjsonRecords(file: Readable): AsyncIterable<ReadRecord> {
  for await (const { bytes, line, offset } of byteLines(file)) {
    const raw = bytes.toString('utf8').trim();
    if (raw) yield { record: { line, raw }, offset };
  }
}
