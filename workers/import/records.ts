/**
 * A file as a stream of records, whatever its format, read with constant memory. Each
 * record carries the line it starts on (for the error report) and how far into the file the
 * reader had got (for the progress estimate).
 */
import type { Readable } from 'node:stream';
import type { ImportFormat, ImportRecord } from '../../store/imports';
import { csvRecords } from './read-csv';
import { hl7Records } from './read-hl7';
import { ndjsonRecords } from './read-ndjson';

export interface ReadRecord {
  record: ImportRecord;
  /** Bytes of the file read when this record was complete. */
  offset: number;
}

export function readRecords(format: ImportFormat, file: Readable, charset?: string): AsyncIterable<ReadRecord> {
  switch (format) {
    case 'csv':
      return csvRecords(file, charset);
    case 'hl7v2':
      return hl7Records(file, charset);
    case 'ndjson':
      return ndjsonRecords(file);
  }
}

/** Bytes to lines (LF, CRLF or lone CR), each with its 1-based number, and the bytes read so far. */
export async function* byteLines(file: Readable): AsyncIterable<{ bytes: Buffer; line: number; offset: number }> {
  let line = 0;
  let offset = 0;
  let rest: Buffer = Buffer.alloc(0);
  let lastWasCr = false;
  for await (const chunk of file as AsyncIterable<Buffer>) {
    offset += chunk.length;
    const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (b !== 0x0a && b !== 0x0d) continue;
      // CR LF is one line end; the LF after a CR that ended the previous chunk too.
      if (b === 0x0a && lastWasCr && i === start) {
        lastWasCr = false;
        start = i + 1;
        continue;
      }
      line++;
      yield { bytes: buf.subarray(start, i), line, offset };
      lastWasCr = b === 0x0d;
      start = i + 1;
    }
    if (start < buf.length) lastWasCr = false;
    rest = Buffer.from(buf.subarray(start));
  }
  if (rest.length > 0) yield { bytes: rest, line: line + 1, offset };
}
