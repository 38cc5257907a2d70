/**
 * A small ER7 (pipe-and-hat) reader. Written here rather than wrapping @medplum/core's
 * Hl7Message because mappers need two things it does not give: unescaped values (\F\ \S\ \T\
 * \R\ \E\ \X..\ \.br\) and a SourceLocation for every value, so an error can name the segment,
 * which occurrence of it, the field and the component. Values are split lazily: a field is cut
 * into repetitions and components only when a mapper reads it.
 */
import { MappingError, type SourceLocation } from '../types';
import { hl7Date, hl7DateTime } from './datetime';

export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

const DEFAULT_ENCODING = '^~\\&';
const SEGMENT_BREAK = /\r\n|\r|\n/;
const FIRST_BREAK = /[\r\n]/g;
/** What may precede MSH in a received message: a byte-order mark, an MLLP start block, blank lines. */
const isLeadingJunk = (c: number): boolean => c === 0xfeff || c === 0x0b || c === 0x0d || c === 0x0a || c === 0x20 || c === 0x09;
/** MLLP end block and trailing white space. */
const isTrailingJunk = (c: number): boolean => c === 0x1c || c === 0x0d || c === 0x0a || c === 0x20 || c === 0x09;

function messageStart(text: string): number {
  let i = 0;
  while (i < text.length && isLeadingJunk(text.charCodeAt(i))) i++;
  return i;
}
const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;
const ALPHANUMERIC = /[A-Za-z0-9\s]/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/** One repetition of one field. */
export class Er7Field {
  private components?: string[];

  constructor(
    readonly segment: Er7Segment,
    readonly field: number,
    /** 1-based repetition number. */
    readonly repetition: number,
    readonly raw: string,
  ) {}

  /**
   * Component c, subcomponent s, trimmed and unescaped; undefined when empty or the HL7
   * explicit null `""`.
   */
  get(c = 1, s = 1): string | undefined {
    const d = this.segment.delimiters;
    this.components ??= this.raw.split(d.component);
    let v = this.components[c - 1];
    if (v === undefined) return undefined;
    if (v.includes(d.subcomponent)) v = v.split(d.subcomponent)[s - 1] ?? '';
    else if (s > 1) return undefined;
    v = v.trim();
    if (v === '' || v === '""') return undefined;
    return unescape(v, d);
  }

  /**
   * The whole repetition as text, delimiters included: for TX/FT/ST values, whose senders
   * often leave a `^` in prose unescaped.
   */
  text(): string | undefined {
    const v = this.raw.trim();
    return v === '' || v === '""' ? undefined : unescape(v, this.segment.delimiters);
  }

  /** Says which repetition, which SourceLocation cannot. */
  get label(): string {
    return `${this.segment.label(this.field)}${this.repetition > 1 ? ` (repetition ${this.repetition})` : ''}`;
  }
}

export class Er7Segment {
  constructor(
    readonly id: string,
    /** 1-based position among the message's segments with this id. */
    readonly index: number,
    /** fields[n] is field n, raw; for MSH, fields[1] is the field separator and fields[2] MSH-2. */
    private readonly fields: readonly string[],
    readonly delimiters: Delimiters,
  ) {}

  /** Field n's repetitions (none when the field is empty). */
  reps(n: number): Er7Field[] {
    const raw = this.fields[n];
    if (!raw) return [];
    if (this.isLiteral(n)) return [new Er7Field(this, n, 1, raw)];
    return raw.split(this.delimiters.repetition).map((r, i) => new Er7Field(this, n, i + 1, r));
  }

  /** The first repetition of field n (empty when absent). */
  field(n: number): Er7Field {
    const raw = this.fields[n] ?? '';
    if (this.isLiteral(n)) return new Er7Field(this, n, 1, raw);
    const cut = raw.indexOf(this.delimiters.repetition);
    return new Er7Field(this, n, 1, cut < 0 ? raw : raw.slice(0, cut));
  }

  /** Component c (subcomponent s) of field n's first repetition. */
  get(n: number, c = 1, s = 1): string | undefined {
    if (this.isLiteral(n)) return c === 1 && s === 1 ? this.fields[n] || undefined : undefined;
    return this.field(n).get(c, s);
  }

  /**
   * Field n whole, unescaped, delimiters left as sent: for free-text fields that are neither
   * repeating nor composite, where senders write a literal `~` (OBX-7 `82~100`).
   */
  text(n: number): string | undefined {
    const raw = this.fields[n]?.trim();
    return raw === undefined || raw === '' || raw === '""' ? undefined : unescape(raw, this.delimiters);
  }

  /**
   * Like get, but a missing value is a 'required' MappingError naming `what`. Here and below,
   * a component number given is named in the error's location; none means component 1 of a
   * field whose problem is the field's.
   */
  need(n: number, what: string, c?: number): string {
    const v = this.get(n, c ?? 1);
    if (v === undefined) throw this.missing(n, what, c);
    return v;
  }

  /** The 'required' error for field n (component c), for values read some other way. */
  missing(n: number, what: string, c?: number): MappingError {
    return this.error(`${this.label(n, c)} (${what}) is required`, n, c, 'required');
  }

  /** A DTM/TS field as FHIR date or dateTime; present but not a real date is a MappingError. */
  dateTime(n: number, c?: number): string | undefined {
    const raw = this.get(n, c ?? 1);
    if (raw === undefined) return undefined;
    const v = hl7DateTime(raw);
    if (v === undefined) throw this.error(`${this.label(n, c)} '${raw}' is not a valid HL7 date/time`, n, c, 'value');
    return v;
  }

  /** A date (birth date): a DTM's time part is dropped. */
  date(n: number): string | undefined {
    const raw = this.get(n);
    if (raw === undefined) return undefined;
    const v = hl7Date(raw);
    if (v === undefined) throw this.error(`${this.label(n)} '${raw}' is not a valid HL7 date`, n, undefined, 'value');
    return v;
  }

  /** A numeric field; present but not a number is a MappingError. */
  number(n: number, c?: number): number | undefined {
    const raw = this.get(n, c ?? 1);
    if (raw === undefined) return undefined;
    return parseNumber(raw, () => this.error(`${this.label(n, c)} '${raw}' is not a number`, n, c, 'value'));
  }

  at(field?: number, component?: number): SourceLocation {
    return { segment: this.id, segmentIndex: this.index, field, component };
  }

  error(message: string, field?: number, component?: number, code?: MappingError['code']): MappingError {
    return new MappingError(message, this.at(field, component), code);
  }

  /** 'OBX[3]-5.2', for messages. */
  label(field?: number, component?: number): string {
    let s = this.index > 1 ? `${this.id}[${this.index}]` : this.id;
    if (field !== undefined) s += `-${field}`;
    if (component !== undefined) s += `.${component}`;
    return s;
  }

  /** MSH-1 and MSH-2 hold the delimiters themselves and are never split or unescaped. */
  private isLiteral(n: number): boolean {
    return n <= 2 && this.id === 'MSH';
  }
}

export class Er7Message {
  private readonly byId = new Map<string, Er7Segment[]>();

  constructor(readonly segments: readonly Er7Segment[]) {
    for (const s of segments) {
      const list = this.byId.get(s.id);
      if (list) list.push(s);
      else this.byId.set(s.id, [s]);
    }
  }

  get msh(): Er7Segment {
    return this.segments[0];
  }

  first(id: string): Er7Segment | undefined {
    return this.byId.get(id)?.[0];
  }

  all(id: string): readonly Er7Segment[] {
    return this.byId.get(id) ?? [];
  }

  need(id: string, why: string): Er7Segment {
    const s = this.first(id);
    if (!s) throw new MappingError(`${id} segment is required: ${why}`, { segment: id }, 'required');
    return s;
  }
}

/** Parses a whole message; its first segment must be MSH. */
export function parseEr7(text: string): Er7Message {
  const start = messageStart(text);
  let end = text.length;
  while (end > start && isTrailingJunk(text.charCodeAt(end - 1))) end--;
  const lines = text.slice(start, end).split(SEGMENT_BREAK);
  const msh = mshFromLine(lines[0]);
  const d = msh.delimiters;
  const segments: Er7Segment[] = [msh];
  const counts = new Map<string, number>([['MSH', 1]]);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const fields = line.split(d.field);
    const id = fields[0];
    if (!SEGMENT_ID.test(id)) {
      const prev = segments[segments.length - 1];
      throw new MappingError(
        `segment ${i + 1} ('${id.slice(0, 12).replaceAll('\0', '\\0')}') is not an HL7 segment: is there an unescaped line break in ${prev.label()}?`,
        prev.at(),
        'structure',
      );
    }
    if (line.includes('\0')) throw nulError(id, (counts.get(id) ?? 0) + 1, fields);
    const index = (counts.get(id) ?? 0) + 1;
    counts.set(id, index);
    segments.push(new Er7Segment(id, index, fields, d));
  }
  return new Er7Message(segments);
}

/** Only the MSH segment, for reading the header of a message whose body may be garbage. */
export function parseMsh(text: string): Er7Segment {
  const start = messageStart(text);
  FIRST_BREAK.lastIndex = start;
  const m = FIRST_BREAK.exec(text);
  return mshFromLine(text.slice(start, m ? m.index : text.length));
}

function mshFromLine(line: string): Er7Segment {
  if (!line.startsWith('MSH')) throw new MappingError('the message does not start with an MSH segment', { segment: 'MSH' }, 'structure');
  const sep = line[3];
  if (sep === undefined || ALPHANUMERIC.test(sep)) {
    throw new MappingError('MSH-1 (field separator) is missing or not a delimiter character', { segment: 'MSH', field: 1 }, 'structure');
  }
  const parts = line.split(sep);
  if (line.includes('\0')) throw nulError('MSH', 1, ['MSH', sep, ...parts.slice(1)]);
  const encoding = parts[1] || DEFAULT_ENCODING;
  const d: Delimiters = {
    field: sep,
    component: encoding[0],
    repetition: encoding[1] ?? DEFAULT_ENCODING[1],
    escape: encoding[2] ?? DEFAULT_ENCODING[2],
    subcomponent: encoding[3] ?? DEFAULT_ENCODING[3],
  };
  const chars = [d.field, d.component, d.repetition, d.escape, d.subcomponent];
  if (new Set(chars).size !== chars.length || chars.some((c) => ALPHANUMERIC.test(c))) {
    throw new MappingError(`MSH-2 '${parts[1]}' does not hold four distinct delimiter characters`, { segment: 'MSH', field: 2 }, 'structure');
  }
  return new Er7Segment('MSH', 1, ['MSH', sep, ...parts.slice(1)], d);
}

/**
 * NUL is no character of any HL7 data type, and PostgreSQL text cannot hold it: the sender
 * hears which field has one instead of the store failing on a copy of it. `fields` is split
 * as Er7Segment holds them (MSH: [MSH, separator, MSH-2, ...]).
 */
function nulError(id: string, index: number, fields: string[]): MappingError {
  const field = fields.findIndex((f) => f.includes('\0'));
  const at = { segment: id, segmentIndex: index, field: field > 0 ? field : undefined };
  const label = `${index > 1 ? `${id}[${index}]` : id}${at.field ? `-${at.field}` : ''}`;
  return new MappingError(`${label} contains a NUL (0x00) character`, at, 'value');
}

/** The HL7 escape sequences; anything else between escape characters is kept as sent. */
export function unescape(v: string, d: Delimiters): string {
  let i = v.indexOf(d.escape);
  if (i < 0) return v;
  let out = v.slice(0, i);
  while (i >= 0) {
    const end = v.indexOf(d.escape, i + 1);
    if (end < 0) {
      out += v.slice(i);
      break;
    }
    out += escapeSequence(v.slice(i + 1, end), d) ?? v.slice(i, end + 1);
    i = v.indexOf(d.escape, end + 1);
    out += v.slice(end + 1, i < 0 ? undefined : i);
  }
  return out;
}

const HEX = /^X((?:[0-9A-Fa-f]{2})+)$/;

function escapeSequence(seq: string, d: Delimiters): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case '.br':
      return '\n';
    case 'H': // highlighting on/off: no meaning in plain text
    case 'N':
      return '';
  }
  const hex = HEX.exec(seq);
  // The message was decoded to text before parsing; hex escapes are read as UTF-8 bytes.
  const text = hex ? Buffer.from(hex[1], 'hex').toString('utf8') : undefined;
  // \X00\ would smuggle in the NUL that parseEr7 refuses as a byte: kept as sent instead.
  return text?.includes('\0') ? undefined : text;
}

/** A decimal, optionally signed. */
export function parseNumber(raw: string, fail: () => MappingError): number {
  if (!NUMBER.test(raw)) throw fail();
  // 400 nines match the pattern but are no number JSON can carry.
  const n = Number(raw);
  if (!Number.isFinite(n)) throw fail();
  return n;
}
