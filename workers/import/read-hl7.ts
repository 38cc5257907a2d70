/**
 * An HL7 v2 batch file: FHS/BHS ... BTS/FTS wrapped or a plain stream of messages, possibly
 * an MLLP capture (its framing bytes are dropped). A message runs from its MSH to the next
 * MSH or batch segment. Bytes are split on CR and LF before decoding: neither byte occurs
 * inside a GB18030 or UTF-8 character, so this is safe whatever the charset. Each message is
 * decoded as receipt decodes it (the file's charset if given, else its own MSH-18).
 */
import type { Readable } from 'node:stream';
import { decodeEr7 } from '../../mappers/hl7v2/decode';
import { MappingError } from '../../mappers/types';
import { byteLines, type ReadRecord } from './records';

const BATCH_SEGMENTS = new Set(['FHS', 'BHS', 'BTS', 'FTS']);

export async function* hl7Records(file: Readable, charset?: string): AsyncIterable<ReadRecord> {
  let segments: Buffer[] = [];
  let start = 0;
  let offset = 0;
  const message = (): ReadRecord => {
    const bytes = Buffer.concat(segments.flatMap((s, i) => (i === 0 ? [s] : [CR, s])));
    segments = [];
    try {
      return { record: { line: start, raw: decodeEr7(bytes, charset).text }, offset };
    } catch (err) {
      // Kept (as far as it reads) and reported at its line; the rest of the file goes on.
      const reason = err instanceof MappingError ? `${err.where}: ${err.message}` : 'the message cannot be decoded';
      return { record: { line: start, raw: bytes.toString('latin1'), unreadable: reason }, offset };
    }
  };
  for await (const l of byteLines(file)) {
    const bytes = unframed(l.bytes);
    if (bytes.length === 0) continue;
    const id = bytes.toString('latin1', 0, 3);
    if (id === 'MSH' || BATCH_SEGMENTS.has(id)) {
      if (segments.length > 0) yield message();
      if (id !== 'MSH') continue;
      start = l.line;
    }
    // Segments before the first MSH (a header without one) belong to no message.
    if (id === 'MSH' || segments.length > 0) segments.push(bytes);
    offset = l.offset;
  }
  if (segments.length > 0) yield message();
}

const CR = Buffer.from('\r');

const isFraming = (b: number): boolean => b === 0x0b || b === 0x1c;

/** A line without MLLP start/end bytes (0x0b, 0x1c); empty when nothing but blanks is left. */
function unframed(bytes: Buffer): Buffer {
  let s = 0;
  let e = bytes.length;
  while (s < e && isFraming(bytes[s])) s++;
  while (e > s && isFraming(bytes[e - 1])) e--;
  const line = bytes.subarray(s, e);
  return line.every((b) => b === 0x20 || b === 0x09) ? line.subarray(0, 0) : line;
}
