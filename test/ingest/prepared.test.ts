import type { MapResult } from '../../mappers/types';
import { PreparedRecords } from '../../workers/prepared';

const mapped = (n: number): MapResult => ({ bundle: { resourceType: 'Bundle', type: 'transaction', entry: [] }, createOnly: [], unmapped: [], warnings: [`record ${n}`] });

describe('records receipt mapped, kept for the worker of the same process', () => {
  it('hands each record over once, so a retried job maps it again', () => {
    const prepared = new PreparedRecords(10);
    const record = mapped(1);
    prepared.put('m1', record);
    expect(prepared.take('m1')).toBe(record);
    expect(prepared.take('m1')).toBeUndefined();
  });

  it('holds at most its bound, pushing out the oldest records first', () => {
    const prepared = new PreparedRecords(3);
    for (let n = 1; n <= 5; n++) prepared.put(`m${n}`, mapped(n));
    expect(['m1', 'm2', 'm3', 'm4', 'm5'].map((id) => prepared.take(id)?.warnings[0])).toEqual([undefined, undefined, 'record 3', 'record 4', 'record 5']);
  });
});
