/**
 * Result recognition (检查结果互认): which results already held for a patient stand in for a
 * draft order. Pure: the caller reads the candidates (through its access-bound store) and
 * renders the answer; this module only decides.
 */
import type { CodeableConcept, DiagnosticReport, Observation, ServiceRequest } from '@medplum/fhirtypes';
import defaults from './rules.json';

export const LOINC = 'http://loinc.org';

export interface RecognitionRules {
  /** Days a result stays valid when no window names its code. */
  defaultWindowDays: number;
  /** Codes that measure the same thing: a result under any one answers an order for another. */
  equivalents: { name: string; codes: string[] }[];
  /** How long a result of a test kind stays valid. */
  windows: { name: string; codes: string[]; days: number }[];
}

export type Result = (Observation | DiagnosticReport) & { id: string };

export interface Recognised {
  order: ServiceRequest;
  result: Result;
  /** The LOINC code of the result that matched. */
  code: string;
  /** The rule's name (the window's or equivalence's), else the code's display. */
  test: string;
  windowDays: number;
  /** The result's clinically relevant time. */
  when: string;
}

export const DEFAULT_RULES: RecognitionRules = defaults;

const USABLE = new Set(['final', 'amended', 'corrected']);
const DAY_MS = 86_400_000;

/** Rules from a JSON file's content; what it leaves out comes from the defaults. Throws naming the bad field. */
export function parseRules(json: unknown): RecognitionRules {
  if (typeof json !== 'object' || json === null) throw new Error('recognition rules must be a JSON object');
  const r = { ...DEFAULT_RULES, ...(json as Partial<RecognitionRules>) };
  if (!(Number.isFinite(r.defaultWindowDays) && r.defaultWindowDays > 0)) throw new Error('recognition rules: defaultWindowDays must be a positive number');
  for (const [i, w] of r.windows.entries()) {
    if (!Array.isArray(w.codes) || !(Number.isFinite(w.days) && w.days > 0)) throw new Error(`recognition rules: windows[${i}] needs codes and positive days`);
  }
  for (const [i, e] of r.equivalents.entries()) if (!Array.isArray(e.codes)) throw new Error(`recognition rules: equivalents[${i}] needs codes`);
  return r;
}

export function loincCodes(c: CodeableConcept | undefined): string[] {
  return (c?.coding ?? []).filter((x) => x.system === LOINC && x.code).map((x) => x.code!);
}

/** The codes whose results answer an order for `code`: itself and its equivalents. */
export function acceptedCodes(rules: RecognitionRules, code: string): Set<string> {
  const out = new Set([code]);
  for (const e of rules.equivalents) if (e.codes.includes(code)) e.codes.forEach((c) => out.add(c));
  return out;
}

function windowOf(rules: RecognitionRules, code: string): { name?: string; days: number } {
  const w = rules.windows.find((x) => x.codes.includes(code));
  return w ? { name: w.name, days: w.days } : { days: rules.defaultWindowDays };
}

export function resultTime(r: Result): string | undefined {
  return r.effectiveDateTime ?? r.effectivePeriod?.end ?? r.effectivePeriod?.start ?? r.issued;
}

/**
 * For each order, the results that answer it: usable status, a LOINC code the order's code
 * accepts, and taken within the order's window before `now`. Newest first per order.
 */
export function recognise(orders: ServiceRequest[], results: Result[], now: Date, rules: RecognitionRules = DEFAULT_RULES): Recognised[] {
  const out: Recognised[] = [];
  for (const order of orders) {
    const ordered = loincCodes(order.code);
    const found: Recognised[] = [];
    for (const code of ordered) {
      const accepted = acceptedCodes(rules, code);
      const window = windowOf(rules, code);
      for (const result of results) {
        if (!USABLE.has(result.status) || found.some((f) => f.result === result)) continue;
        const hit = loincCodes(result.code).find((c) => accepted.has(c));
        const when = resultTime(result);
        if (!hit || !when) continue;
        const t = Date.parse(when);
        if (!(t <= now.getTime() && now.getTime() - t <= window.days * DAY_MS)) continue;
        const test = window.name ?? rules.equivalents.find((e) => e.codes.includes(code))?.name ?? order.code?.text ?? order.code?.coding?.[0]?.display ?? code;
        found.push({ order, result, code: hit, test, windowDays: window.days, when });
      }
    }
    out.push(...found.sort((a, b) => Date.parse(b.when) - Date.parse(a.when)));
  }
  return out;
}

/** What the result says, in a few words: its value, or its conclusion. */
export function resultSummary(r: Result): string {
  if (r.resourceType === 'DiagnosticReport') return r.conclusion ?? r.conclusionCode?.[0]?.text ?? r.conclusionCode?.[0]?.coding?.[0]?.display ?? 'report available';
  if (r.valueQuantity) return `${r.valueQuantity.value ?? ''} ${r.valueQuantity.unit ?? r.valueQuantity.code ?? ''}`.trim();
  if (r.valueString) return r.valueString;
  if (r.valueCodeableConcept) return r.valueCodeableConcept.text ?? r.valueCodeableConcept.coding?.[0]?.display ?? '';
  return 'result available';
}
