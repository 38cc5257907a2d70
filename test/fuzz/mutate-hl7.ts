/** Mutations of ER7 messages, as bytes, each with a name for the report. */
import iconv from 'iconv-lite';
import type { Rng } from '../../fixtures/synthetic/random';
import { hostileString } from '../support/fuzz';

export interface Hl7Mutant {
  bytes: Buffer;
  mutation: string;
  /** A Content-Type charset to send, when the mutation is about one. */
  charset?: string;
}

const segmentsOf = (text: string): string[] => text.split(/\r\n|\r|\n/).filter((s) => s !== '');

/** Replaces field n of one segment (MSH counts its separator as field 1, as HL7 does). */
function setField(segment: string, n: number, value: string): string {
  const fields = segment.split('|');
  const i = segment.startsWith('MSH') ? n - 1 : n;
  while (fields.length <= i) fields.push('');
  fields[i] = value;
  return fields.join('|');
}

/** A message decoded as text, mutated and encoded again in its own charset (utf-8, gb18030). */
export function mutateHl7(rng: Rng, text: string, charset: string): Hl7Mutant {
  const join = (segments: string[]): Buffer => iconv.encode(`${segments.join('\r')}\r`, charset);
  const segs = segmentsOf(text);
  const s = rng.int(0, segs.length - 1);
  const bytes = join(segs);
  switch (rng.int(0, 15)) {
    case 0: {
      const b = Buffer.from(bytes);
      const flips = rng.int(1, 20);
      for (let k = 0; k < flips; k++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return { bytes: b, mutation: `${flips} random bytes` };
    }
    case 1:
      return { bytes: bytes.subarray(0, rng.int(0, bytes.length - 1)), mutation: 'truncated' };
    case 2:
      return { bytes: join(segs.filter((_, i) => i !== s)), mutation: `segment ${s} (${segs[s].slice(0, 3)}) removed` };
    case 3:
      return { bytes: join([...segs.slice(0, s + 1), ...Array(rng.int(1, 50)).fill(segs[s]), ...segs.slice(s + 1)]), mutation: `segment ${s} (${segs[s].slice(0, 3)}) repeated` };
    case 4:
      return { bytes: join(rng.shuffle([...segs])), mutation: 'segments shuffled' };
    case 5: {
      const sep = rng.pick(['', 'A', '1', ' ', '^', '\t', '\u0000', '王', '||']);
      return { bytes: Buffer.concat([Buffer.from(`MSH${sep}`), bytes.subarray(4)]), mutation: `MSH-1 ${JSON.stringify(sep)}` };
    }
    case 6: {
      const enc = rng.pick(['', '^', '^^^^', '|~\\&', 'abcd', '^~\\&#', '^~\\', '~^&\\', '\u0000\u0001\u0002\u0003']);
      return { bytes: join([`MSH|${enc}|${segs[0].split('|').slice(2).join('|')}`, ...segs.slice(1)]), mutation: `MSH-2 ${JSON.stringify(enc)}` };
    }
    case 7: {
      const size = rng.pick([10_000, 200_000, 2_000_000]);
      const filler = rng.pick(['A', '^', '~', '\\', '&', '王']).repeat(size);
      return { bytes: join(segs.map((x, i) => (i === s ? setField(x, rng.int(1, 30), filler) : x))), mutation: `field of ${size} characters in segment ${s}` };
    }
    case 8: {
      const charset = rng.pick(['GARBAGE', 'UTF-16', 'UTF-32LE', 'EBCDIC', 'GB 18030-2000', 'BIG5', 'ISO IR87', '', 'UNICODE UTF-8']);
      return { bytes: join([setField(segs[0], 18, charset), ...segs.slice(1)]), mutation: `MSH-18 ${JSON.stringify(charset)}` };
    }
    case 9:
      return { bytes, charset: rng.pick(['gb18030', 'utf-16le', 'nonsense', 'latin1', 'utf-8', 'x'.repeat(200)]), mutation: 'Content-Type charset' };
    case 10: {
      // Chinese written as GB18030 inside a message that says (or assumes) UTF-8.
      const at = rng.int(0, bytes.length);
      return { bytes: Buffer.concat([bytes.subarray(0, at), iconv.encode('王小明', 'gb18030'), bytes.subarray(at)]), mutation: 'GB18030 bytes in a UTF-8 message' };
    }
    case 11: {
      const at = rng.int(0, bytes.length);
      const frame = Buffer.from(rng.pick([[0x0b], [0x1c], [0x1c, 0x0d], [0x0b, 0x1c, 0x0d], [0x00]]));
      return { bytes: Buffer.concat([bytes.subarray(0, at), frame, bytes.subarray(at)]), mutation: `frame bytes ${frame.toString('hex')} at ${at}` };
    }
    case 12:
      return { bytes: Buffer.alloc(0), mutation: 'empty body' };
    case 13: {
      const value = rng.pick([hostileString(rng), '\\X\\', '\\XZZ\\', '\\', '\\E', '""', '~'.repeat(10000), '^'.repeat(10000), '&'.repeat(5000)]);
      const field = rng.int(1, 25);
      return { bytes: join(segs.map((x, i) => (i === s ? setField(x, field, value) : x))), mutation: `${segs[s].slice(0, 3)}-${field} set to ${JSON.stringify(value.slice(0, 40))}` };
    }
    case 14: {
      const id = rng.pick(['ZZZ', 'pid', 'PI', 'PIDX', '123', 'MSH', '']);
      return { bytes: join([...segs.slice(0, s + 1), `${id}|x|y`, ...segs.slice(s + 1)]), mutation: `segment '${id}' inserted` };
    }
    default: {
      const ending = rng.pick(['\n', '\r\n', '\n\r', '\r\r\r']);
      return { bytes: iconv.encode(segs.join(ending), charset), mutation: `segments joined by ${JSON.stringify(ending)}` };
    }
  }
}
