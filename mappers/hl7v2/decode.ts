/**
 * Bytes of an ER7 message to text. The character set is the HTTP Content-Type's charset when
 * one was sent, else MSH-18 (HL7 table 0211, plus the names Chinese vendors actually write),
 * else UTF-8. MSH itself is ASCII, so it is read from the raw bytes before decoding.
 */
import { isUtf8 } from 'node:buffer';
import * as iconv from 'iconv-lite';
import { MappingError, type SourceLocation } from '../types';

/** Normalised charset names (upper case, no spaces, dashes or underscores) to the decoder used. */
const CHARSETS: Readonly<Record<string, string>> = {
  UNICODEUTF8: 'utf-8',
  UTF8: 'utf-8',
  // ASCII is a subset of UTF-8: reading it as UTF-8 is exact, and forgiving of senders who say ASCII and send more.
  ASCII: 'utf-8',
  USASCII: 'utf-8',
  // GB 18030 is a superset of GBK and GB 2312, so one decoder reads all three exactly.
  GB180302000: 'gb18030',
  GB180302005: 'gb18030',
  GB180302022: 'gb18030',
  GB18030: 'gb18030',
  GBK: 'gb18030',
  CP936: 'gb18030',
  GB2312: 'gb18030',
  EUCCN: 'gb18030',
  '8859/1': 'latin1',
  ISOIR100: 'latin1',
  ISO88591: 'latin1',
  LATIN1: 'latin1',
  BIG5: 'big5',
};

const NAME_NOISE = /[\s_-]/g;

function decoderFor(name: string): string | undefined {
  return CHARSETS[name.toUpperCase().replace(NAME_NOISE, '')];
}

const MSH18: SourceLocation = { segment: 'MSH', field: 18 };
const CONTENT_TYPE: SourceLocation = { path: 'Content-Type charset' };

export function decodeEr7(bytes: Buffer, contentTypeCharset?: string): { text: string; charset: string } {
  let charset: string;
  let from: SourceLocation;
  let declared: string | undefined;
  if (contentTypeCharset) {
    from = CONTENT_TYPE;
    declared = contentTypeCharset;
    const known = decoderFor(contentTypeCharset) ?? (iconv.encodingExists(contentTypeCharset) ? contentTypeCharset.toLowerCase() : undefined);
    if (!known) throw new MappingError(`Content-Type charset '${contentTypeCharset}' is not a character set this gateway reads`, from, 'not-supported');
    charset = known;
  } else {
    from = MSH18;
    declared = msh18(bytes);
    const known = declared === undefined ? 'utf-8' : decoderFor(declared);
    if (!known) {
      throw new MappingError(`MSH-18 '${declared}' is not a character set this gateway reads (use UNICODE UTF-8 or GB 18030-2000)`, from, 'not-supported');
    }
    charset = known;
  }
  let text: string;
  if (charset === 'utf-8') {
    // Decoding invalid UTF-8 would silently turn names into U+FFFD; a GB18030 message sent
    // without MSH-18 is the usual cause, and the sender must hear it.
    if (!isUtf8(bytes)) {
      throw new MappingError(
        declared === undefined
          ? 'the message is not valid UTF-8 and MSH-18 does not name its character set (GB18030 senders: MSH-18 = GB 18030-2000)'
          : `the message is not valid UTF-8, as its declared character set '${declared}' says it is`,
        from,
        'value',
      );
    }
    text = bytes.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  } else {
    text = iconv.decode(bytes, charset);
  }
  return { text: text.replace(LINE_BREAKS, '\r'), charset };
}

const LINE_BREAKS = /\r\n|\n/g;

/** MSH-18, first repetition, first component, read from the bytes as Latin-1. */
function msh18(bytes: Buffer): string | undefined {
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  while (start < bytes.length && (bytes[start] === 0x0b || bytes[start] === 0x0d || bytes[start] === 0x0a || bytes[start] === 0x20)) start++;
  let end = start;
  while (end < bytes.length && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
  const line = bytes.toString('latin1', start, end);
  if (!line.startsWith('MSH') || line.length < 5) return undefined;
  const fields = line.split(line[3]);
  const raw = fields[17];
  if (!raw) return undefined;
  const encoding = fields[1] ?? '';
  const first = raw.split(encoding[1] || '~')[0].split(encoding[0] || '^')[0].trim();
  return first === '' ? undefined : first;
}
