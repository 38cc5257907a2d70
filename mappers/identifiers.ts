import type { Identifier } from '@medplum/fhirtypes';
import { checkIdCard } from './id-card';

/**
 * One canonical identifier system per kind (WS/T 500 OIDs), and the aliases other systems
 * (HL7 China connectathon OIDs, vendors' own URIs) use for the same kind. Mappers write only
 * canonical systems, so a search for `identifier=<canonical>|<value>` finds every facility's
 * registration.
 */
export const SYSTEMS = {
  /** 居民身份证号 */
  idCard: 'urn:oid:2.16.156.10011.1.3',
  /** 居民健康卡号 / 电子健康卡 */
  healthCard: 'urn:oid:2.16.156.10011.1.19',
  /** 医保卡号 */
  insuranceCard: 'urn:oid:2.16.156.10011.1.15',
} as const;

export type IdentifierKind = keyof typeof SYSTEMS;

/** Aliases seen in the consortium's feeds; extend through configuration, not code edits. */
const DEFAULT_ALIASES: Record<string, IdentifierKind> = {
  'urn:oid:2.16.840.1.113883.2.23.11.1': 'idCard',
  'http://www.nhc.gov.cn/identifier/resident-id': 'idCard',
  'urn:oid:2.16.840.1.113883.2.23.11.19': 'healthCard',
  'urn:oid:2.16.840.1.113883.2.23.11.15': 'insuranceCard',
};

const HL7_V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';

/** The canonical system for a system or alias; unknown systems are returned unchanged. */
export function canonicalSystem(system: string, aliases: Record<string, IdentifierKind> = DEFAULT_ALIASES): string {
  const kind = aliases[system];
  return kind ? SYSTEMS[kind] : system;
}

/** A facility's medical record number. */
export function mrnIdentifier(system: string, value: string): Identifier {
  return { use: 'usual', type: { coding: [{ system: HL7_V2_0203, code: 'MR', display: 'Medical record number' }], text: '病案号' }, system, value };
}

/**
 * A 居民身份证号 as an Identifier. One that fails its checks is kept (it is what the patient
 * or the front desk gave) but flagged: `use: 'temp'` and an `unverified` tag in
 * the type, so the patient index treats it as a typo, never as identity. Returns the warning
 * to record, which never quotes the number.
 */
export function idCardIdentifier(raw: string): { identifier: Identifier; warning?: string } {
  const check = checkIdCard(raw);
  const type = { coding: [{ system: HL7_V2_0203, code: 'NI', display: 'National unique individual identifier' }], text: '居民身份证' };
  if (check.valid) return { identifier: { use: 'official', type, system: SYSTEMS.idCard, value: check.normalized } };
  return {
    identifier: {
      use: 'temp',
      type: { ...type, coding: [...type.coding, { system: ID_CHECK_SYSTEM, code: 'failed', display: `ID number check failed: ${check.reason}` }] },
      system: SYSTEMS.idCard,
      value: raw.trim(),
    },
    warning: `resident ID number fails its check (${check.reason}); stored as unverified`,
  };
}

/** Marks an identifier the gateway checked and found wrong. */
export const ID_CHECK_SYSTEM = 'http://consortium.example/fhir/CodeSystem/identifier-check';

export function isUnverified(identifier: Identifier): boolean {
  return identifier.type?.coding?.some((c) => c.system === ID_CHECK_SYSTEM && c.code === 'failed') ?? false;
}
