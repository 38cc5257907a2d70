/** The ORDER / ORDER_OBSERVATION groups of ORU, ORM, OMG and RDE messages. */
import type { Er7Message, Er7Segment } from './er7';

export interface OrderGroup {
  orc?: Er7Segment;
  /** The group's request segment: OBR (results, orders) or RXE (prescriptions). */
  main?: Er7Segment;
  /** The group's other segments in message order (TQ1, NTE, OBX, DG1, RXR, ZDS ...). */
  rest: Er7Segment[];
}

/**
 * Splits the message at each ORC, and at a request segment that follows another (results
 * often come as OBR groups without ORC). Segments before the first group (PID, PV1, their
 * NTE) belong to no group.
 */
export function orderGroups(msg: Er7Message, main: 'OBR' | 'RXE'): OrderGroup[] {
  const groups: OrderGroup[] = [];
  let group: OrderGroup | undefined;
  for (const s of msg.segments) {
    if (s.id === 'ORC') {
      group = { orc: s, rest: [] };
      groups.push(group);
    } else if (s.id === main) {
      if (!group || group.main) {
        group = { rest: [] };
        groups.push(group);
      }
      group.main = s;
    } else if (group) {
      group.rest.push(s);
    }
  }
  return groups;
}

/** NTE-3 (FT, repeating) as lines of text. */
export function noteText(nte: Er7Segment): string | undefined {
  const lines = nte.reps(3).map((r) => r.text() ?? '');
  const text = lines.join('\n').trim();
  return text === '' ? undefined : text;
}
