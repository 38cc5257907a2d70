/**
 * CSV text to rows that know their line in the posted body. Line endings are made LF first:
 * exports from Windows tools end lines with CRLF, and csv-parse counts lines wrongly for
 * them. A record split off a body starts with a line mark (`#line 7`), so an error in it
 * names the line the sender knows even though the record is mapped on its own.
 */
import { parse, type CsvError } from 'csv-parse/sync';
import { MappingError } from '../types';

export interface CsvRow {
  /** Line in the posted body where the row starts (1-based, the header is line 1). */
  line: number;
  fields: string[];
  /** The row's text, without its line end. */
  text: string;
}

export interface CsvTable {
  header: string[];
  headerText: string;
  rows: CsvRow[];
}

const MARK = /^#line (\d+)\n/;
export const NEWLINES = /\r\n?/g;

/** `text` (a header line and one row) marked as the row that starts on `line` of its body. */
export const markLine = (line: number, text: string): string => `#line ${line}\n${text}`;

/** A record as csv-parse hands it over with `PARSE_OPTIONS`. */
export interface Parsed {
  record: string[];
  raw: string;
  info: { lines: number };
}

/** Options for csv-parse (sync or streaming) giving `Parsed` records; line ends already LF. */
export const PARSE_OPTIONS = {
  raw: true,
  info: true,
  trim: true,
  skip_empty_lines: true,
  // A row of the wrong width fails alone, when it is mapped, not the whole body.
  relax_column_count: true,
} as const;

/** A parsed record as a row starting `shift` lines further down than where the parser saw it. */
export function rowOf(r: Parsed, shift = 0): CsvRow {
  const text = trimLineEnds(r.raw);
  return { line: r.info.lines - countNewlines(text) + shift, fields: r.record, text };
}

/** Spreadsheets export trailing rows of bare commas. */
export const isBlankRow = (r: CsvRow): boolean => r.fields.every((f) => f === '');

export const trimLineEnds = (raw: string): string => raw.replace(/^\n+/, '').replace(/\n$/, '');

export function readCsv(input: string): CsvTable {
  let body = input.replace(NEWLINES, '\n');
  if (body.charCodeAt(0) === 0xfeff) body = body.slice(1);
  const mark = MARK.exec(body);
  if (mark) {
    body = body.slice(mark[0].length);
    const plain = plainRecord(body, Number(mark[1]));
    if (plain) return plain;
  }
  let lastEnd = 0;
  let parsed: Parsed[];
  try {
    parsed = parse(body, {
      ...PARSE_OPTIONS,
      on_record: (record, context) => {
        lastEnd = context.lines;
        return record;
      },
    }) as unknown as Parsed[];
  } catch (err) {
    throw syntaxError(err as CsvError, body, lastEnd);
  }
  if (parsed.length === 0) throw new MappingError('the body is empty: a header row is required', { line: 1 }, 'required');
  const [head, ...rest] = parsed;
  // The row of a marked record is line 2 of the text, and line `mark` of its body.
  const shift = mark ? Number(mark[1]) - 2 : 0;
  const rows = rest.map((r) => rowOf(r, shift)).filter((r) => !isBlankRow(r));
  return { header: head.record, headerText: trimLineEnds(head.raw), rows };
}

/**
 * A record split off a body (its header and one row) with no quote in it, the usual case, read
 * by splitting on commas: what csv-parse would make of it with these options, without the
 * parser's set-up, which costs more than the row (a batch import maps records one by one).
 */
function plainRecord(body: string, line: number): CsvTable | undefined {
  if (body.includes('"')) return undefined;
  const lines = body.split('\n');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length !== 2 || lines.some((l) => l.trim() === '')) return undefined;
  const [headerText, text] = lines;
  // csv-parse's `trim` takes every Unicode blank, the ideographic space included, as String.trim does.
  const row = { line, fields: text.split(',').map((f) => f.trim()), text };
  return { header: headerText.split(',').map((f) => f.trim()), headerText, rows: isBlankRow(row) ? [] : [row] };
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * csv-parse's messages quote the field they stop at; these do not (patient data stays out
 * of stored outcomes). An unclosed quote is only noticed at the end of the body: it is named
 * at the line where its row starts, the first non-empty line after the last complete row.
 */
function syntaxError(err: CsvError, body: string, lastEnd: number): MappingError {
  const line = typeof err.lines === 'number' ? err.lines : lastEnd + 1;
  switch (err.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return new MappingError('a quoted field is never closed (an unbalanced quote)', { line: firstLineWithText(body, lastEnd + 1) }, 'structure');
    case 'INVALID_OPENING_QUOTE':
      return new MappingError('a quote inside an unquoted field: quote the whole field and double the quote', { line }, 'structure');
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return new MappingError('text after the closing quote of a field', { line }, 'structure');
    default:
      return new MappingError(`not valid CSV (${err.code})`, { line }, 'structure');
  }
}

function firstLineWithText(body: string, from: number): number {
  const lines = body.split('\n');
  let line = from;
  while (line <= lines.length && lines[line - 1].trim() === '') line++;
  return line;
}
