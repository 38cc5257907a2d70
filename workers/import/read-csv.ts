/**
 * A registered source's CSV file, streamed: the header is checked once, as a posted body's
 * is, then each data row becomes the same record `split` makes of a posted body (the header
 * and the row, marked with the row's line), so it maps exactly as it would have one by one.
 * GB18030 exports are decoded on the way in when the import names the charset.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { CsvError, parse } from 'csv-parse';
import * as iconv from 'iconv-lite';
import { kindOf } from '../../mappers/community-csv/columns';
import { isBlankRow, markLine, NEWLINES, PARSE_OPTIONS, rowOf, trimLineEnds, type Parsed } from '../../mappers/community-csv/csv';
import { MappingError } from '../../mappers/types';
import type { ReadRecord } from './records';

export async function* csvRecords(file: Readable, charset?: string): AsyncIterable<ReadRecord> {
  let offset = 0;
  file.on('data', (chunk: Buffer) => (offset += chunk.length));
  const parser = parse({ ...PARSE_OPTIONS, bom: true });
  // pipeline, not pipe: a failure anywhere (the file, the decoder) ends the parser with it, so the loop below sees it.
  pipeline(file, charset && !/^utf-?8$/i.test(charset) ? decoder(charset) : utf8(), lfOnly(), parser, () => undefined);
  let header: string | undefined;
  try {
    for await (const parsed of parser as AsyncIterable<Parsed>) {
      if (header === undefined) {
        kindOf(parsed.record.map((h) => h.toLowerCase()));
        header = trimLineEnds(parsed.raw);
        continue;
      }
      const row = rowOf(parsed);
      if (!isBlankRow(row)) yield { record: { line: row.line, raw: markLine(row.line, `${header}\n${row.text}`) }, offset };
    }
  } catch (err) {
    const e = err as { code?: string; lines?: number };
    if (err instanceof MappingError || !(err instanceof CsvError)) throw err;
    // The parser cannot find where the next row starts: the rows before are kept, the rest is refused.
    throw new MappingError(`not valid CSV (${e.code ?? 'unreadable'}); the rows after it were not read`, { line: typeof e.lines === 'number' ? e.lines : undefined }, 'structure');
  }
  if (header === undefined) throw new MappingError('the file is empty: a header row is required', { line: 1 }, 'required');
}

function decoder(charset: string): Transform {
  if (!iconv.encodingExists(charset)) throw new MappingError(`charset '${charset}' is not a character set this gateway reads`, { path: 'charset' }, 'not-supported');
  return iconv.decodeStream(charset) as unknown as Transform;
}

/** UTF-8 that refuses bytes that are not: a GB18030 export read as UTF-8 would turn every name into U+FFFD. */
function utf8(): Transform {
  const d = new StringDecoder('utf8');
  const checked = (text: string): string => {
    if (text.includes('\uFFFD')) throw new MappingError("the file is not valid UTF-8: name its charset (e.g. GB18030)", { path: 'charset' }, 'value');
    return text;
  };
  return new Transform({
    transform: (chunk: Buffer, _enc, done) => {
      try {
        done(null, checked(d.write(chunk)));
      } catch (err) {
        done(err as Error);
      }
    },
    flush: (done) => done(null, checked(d.end())),
  });
}

/** CRLF and lone CR to LF (csv-parse counts lines wrongly otherwise); a CR ending one chunk waits for the next. */
function lfOnly(): Transform {
  let pendingCr = false;
  return new Transform({
    transform(chunk: Buffer | string, _enc, done) {
      let text = (pendingCr ? '\r' : '') + chunk.toString();
      pendingCr = text.endsWith('\r');
      if (pendingCr) text = text.slice(0, -1);
      done(null, text.replace(NEWLINES, '\n'));
    },
    flush(done) {
      done(null, pendingCr ? '\n' : '');
    },
  });
}
