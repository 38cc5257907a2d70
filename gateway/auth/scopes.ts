import type { Scope } from './principal';

export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

const ORDER = 'cruds';
/** SMART v1 suffixes, as the v2 interactions they grant. */
const V1: Readonly<Record<string, string>> = { read: 'rs', write: 'cud', '*': 'cruds' };
const RESOURCE_SCOPE = /^(system|user|patient)\/([A-Z][A-Za-z]+|\*)\.([a-z*]+)$/;

/**
 * One SMART resource scope (v2 `system/Observation.rs`, or v1 `.read`/`.write`/`.*` mapped to
 * v2). Null for what is not a resource scope (`openid`, `launch`, a v2 scope with search
 * parameters, letters out of order): callers decide whether that is an error.
 */
export function parseScope(text: string): Scope | null {
  const m = RESOURCE_SCOPE.exec(text);
  if (!m) return null;
  const [, context, type, suffix] = m;
  const interactions = V1[suffix] ?? suffix;
  if (!isOrderedSubset(interactions)) return null;
  return { context: context as Scope['context'], type, interactions };
}

function isOrderedSubset(letters: string): boolean {
  let at = -1;
  for (const l of letters) {
    const i = ORDER.indexOf(l, at + 1);
    if (i < 0) return false;
    at = i;
  }
  return letters.length > 0;
}

export const formatScope = (s: Scope): string => `${s.context}/${s.type}.${s.interactions}`;

export const formatScopes = (scopes: Scope[]): string => scopes.map(formatScope).join(' ');

/**
 * Whether the scopes grant `interaction` on `type`. `patient/` scopes grant nothing: the
 * gateway has no launch patient to hold them to.
 */
export function allows(scopes: Scope[], type: string, interaction: Interaction): boolean {
  return scopes.some((s) => s.context !== 'patient' && (s.type === '*' || s.type === type) && s.interactions.includes(interaction));
}

/** Whether `wanted` asks for no more than one of `allowed` gives (same context, its type or '*'). */
export function covers(allowed: Scope[], wanted: Scope): boolean {
  return allowed.some(
    (a) => a.context === wanted.context && (a.type === '*' || a.type === wanted.type) && [...wanted.interactions].every((l) => a.interactions.includes(l)),
  );
}
