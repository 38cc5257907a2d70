/** The two shapes a recognition answer leaves in: CDS Hooks cards and a FHIR Parameters. */
import { createHash } from 'node:crypto';
import type { Parameters } from '@medplum/fhirtypes';
import type { Found } from './lookup';
import { resultSummary } from './match';

export const SOURCE_LABEL = 'Consortium shared record (检查结果互认)';

export interface Card {
  uuid: string;
  summary: string;
  detail: string;
  indicator: 'info';
  source: { label: string };
  suggestions?: { label: string; uuid: string; actions: { type: 'delete'; description: string; resourceId: string[] }[] }[];
}

/** Same input, same uuid: a client that calls twice (order-select, then order-sign) sees the same card. */
const uuidOf = (s: string): string => {
  const h = createHash('sha256').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const day = (when: string): string => when.slice(0, 10);

export function cardsFor(found: Found[]): Card[] {
  return found.map((f) => {
    const ref = `${f.result.resourceType}/${f.result.id}`;
    const orderId = f.order.id;
    const summary = `${f.test}: ${resultSummary(f.result)} at ${f.facility} on ${day(f.when)}`.slice(0, 140);
    return {
      uuid: uuidOf(`${orderId ?? ''}|${ref}`),
      summary,
      detail: `${ref} (LOINC ${f.code}) is within the ${f.windowDays}-day validity window for ${f.test}; the consortium recognises it, so the order may not need repeating.`,
      indicator: 'info' as const,
      source: { label: SOURCE_LABEL },
      ...(orderId && {
        suggestions: [
          {
            label: `Drop the draft order; use the result of ${day(f.when)}`,
            uuid: uuidOf(`drop|${orderId}|${ref}`),
            actions: [{ type: 'delete' as const, description: `Remove the draft ${f.test} order`, resourceId: [`ServiceRequest/${orderId}`] }],
          },
        ],
      }),
    };
  });
}

export function parametersFor(found: Found[]): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: found.map((f) => ({
      name: 'match',
      part: [
        ...(f.order.id ? [{ name: 'order', valueReference: { reference: `ServiceRequest/${f.order.id}` } }] : []),
        { name: 'result', resource: f.result },
        { name: 'test', valueString: f.test },
        { name: 'code', valueCoding: { system: 'http://loinc.org', code: f.code } },
        { name: 'facility', valueString: f.facility },
        { name: 'date', valueDateTime: f.when },
        { name: 'windowDays', valueInteger: f.windowDays },
        { name: 'summary', valueString: resultSummary(f.result) },
      ],
    })),
  };
}
