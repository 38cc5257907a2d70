/** One data row, read by column name; every error names the row's line and the column. */
import { localDateTime } from '../context';
import { decimal } from '../common/lab-values';
import { MappingError, type SourceLocation } from '../types';

export class Row {
  constructor(
    readonly line: number,
    private readonly cells: ReadonlyMap<string, string>,
  ) {}

  at(column: string): SourceLocation {
    return { line: this.line, path: column };
  }

  /** The cell's text, or undefined when the cell is empty or the column absent. */
  text(column: string): string | undefined {
    return this.cells.get(column) || undefined;
  }

  required(column: string): string {
    const v = this.text(column);
    if (v === undefined) throw new MappingError('required, but empty', this.at(column), 'required');
    return v;
  }

  number(column: string): number | undefined {
    const v = this.text(column);
    if (v === undefined) return undefined;
    const n = decimal(v);
    if (n === undefined) throw new MappingError('not a number', this.at(column), 'value');
    return n;
  }

  positive(column: string): number | undefined {
    const n = this.number(column);
    if (n !== undefined && n <= 0) throw new MappingError('must be greater than 0', this.at(column), 'value');
    return n;
  }

  wholeDays(column: string): number | undefined {
    const n = this.positive(column);
    if (n !== undefined && !Number.isInteger(n)) throw new MappingError('must be a whole number of days', this.at(column), 'value');
    return n;
  }

  /** yyyy-MM-dd, or with a time (yyyy-MM-dd HH:mm:ss) where `withTime`: China Standard Time. */
  date(column: string, withTime = false): string | undefined {
    const v = this.text(column);
    if (v === undefined) return undefined;
    const date = localDateTime(v);
    if (!date || (!withTime && date.length !== 10)) {
      throw new MappingError(`not a date (yyyy-MM-dd${withTime ? ', or yyyy-MM-dd HH:mm:ss' : ''})`, this.at(column), 'value');
    }
    return date;
  }

  requiredDate(column: string, withTime = false): string {
    this.required(column);
    return this.date(column, withTime)!;
  }
}
