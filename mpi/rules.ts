/**
 * The matching rules: a versioned JSON file (mpi/rules/default.json, or MPI_RULES_FILE), not
 * code. Loading checks it against the comparators this version of the index has, so a rules
 * file that names an unknown field or level fails at start, not at the first match.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCKING_KEYS, type BlockingKey } from './blocking';
import { FIELD_LEVELS, type Field } from './compare';

interface Probabilities {
  m: number;
  u: number;
}

export interface RulesFile {
  version: string;
  description?: string;
  blocking: { keys: BlockingKey[]; maxBlockSize: number };
  fields: Record<Field, Record<string, Probabilities>>;
  similarity: { nameCharactersJaroWinkler: number; latinNameJaroWinkler: number; addressJaroWinkler: number };
  groups: { name: string; fields: Field[]; why?: string }[];
  thresholds: { autoLink: number; review: number };
  /** Agreements an automatic link needs (one of them); the rule that held is recorded on the link. */
  autoLinkRequires: { rule: string; all: Partial<Record<Field, string[]>> }[];
  /** Disagreements that send a pair to review whatever its score. */
  neverAutoLink: { rule: string; any: Partial<Record<Field, string[]>>; why?: string }[];
}

/** Rules with each level's weight, log2(m/u), worked out once. */
export interface MatchRules extends RulesFile {
  weights: Record<Field, Record<string, number>>;
}

export const DEFAULT_RULES_FILE = join(__dirname, 'rules', 'default.json');

export function loadRules(file = DEFAULT_RULES_FILE): MatchRules {
  let parsed: RulesFile;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as RulesFile;
  } catch (err) {
    throw new Error(`patient index rules ${file}: ${(err as Error).message}`, { cause: err });
  }
  return compileRules(parsed, file);
}

export function compileRules(rules: RulesFile, origin = 'rules'): MatchRules {
  const fail = (msg: string): never => {
    throw new Error(`patient index rules ${origin}: ${msg}`);
  };
  if (typeof rules.version !== 'string' || !rules.version) fail('version is required');
  for (const key of rules.blocking?.keys ?? fail('blocking.keys is required')) if (!BLOCKING_KEYS.includes(key)) fail(`unknown blocking key '${key}'`);
  if (!(rules.blocking.maxBlockSize > 0)) fail('blocking.maxBlockSize must be positive');
  const weights = {} as Record<Field, Record<string, number>>;
  for (const [field, levels] of Object.entries(FIELD_LEVELS) as [Field, readonly string[]][]) {
    const given = rules.fields?.[field] ?? fail(`fields.${field} is missing`);
    weights[field] = {};
    for (const level of levels) {
      const p = given[level] ?? fail(`fields.${field}.${level} is missing`);
      if (!(p.m > 0 && p.m <= 1 && p.u > 0 && p.u <= 1)) fail(`fields.${field}.${level}: m and u must be in (0, 1]`);
      weights[field][level] = Math.log2(p.m / p.u);
    }
    for (const level of Object.keys(given)) if (!levels.includes(level)) fail(`fields.${field}.${level} is not a level of ${field} (${levels.join(', ')})`);
  }
  for (const g of rules.groups ?? []) for (const f of g.fields) if (!(f in FIELD_LEVELS)) fail(`group ${g.name}: unknown field '${f}'`);
  const { autoLink, review } = rules.thresholds ?? fail('thresholds are required');
  if (!(autoLink > review)) fail('thresholds.autoLink must be above thresholds.review');
  const checkLevels = (where: string, spec: Partial<Record<Field, string[]>>): void => {
    for (const [f, levels] of Object.entries(spec)) {
      if (!(f in FIELD_LEVELS)) fail(`${where}: unknown field '${f}'`);
      for (const l of levels ?? []) if (!(FIELD_LEVELS[f as Field] as readonly string[]).includes(l)) fail(`${where}: '${l}' is not a level of ${f}`);
    }
  };
  for (const r of rules.autoLinkRequires ?? fail('autoLinkRequires is required')) checkLevels(`autoLinkRequires ${r.rule}`, r.all);
  for (const r of rules.neverAutoLink ?? fail('neverAutoLink is required')) checkLevels(`neverAutoLink ${r.rule}`, r.any);
  return { ...rules, weights };
}
