import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { FhirError } from '../../store/errors';
import { isKnownResourceType } from '../../store/search-params';
import type { Principal } from '../auth/principal';
import { forbiddenFor, mayAccess } from '../auth/require';
import type { Interaction } from '../auth/scopes';

/** The (type, interaction) an entry's request asks for; undefined when the store will refuse it anyway. */
function entryAccess(entry: BundleEntry): { type: string; interaction: Interaction } | undefined {
  const { method, url } = (entry?.request ?? {}) as { method?: unknown; url?: unknown };
  // Left to the store, which refuses a malformed request naming the entry.
  if (typeof method !== 'string' || typeof url !== 'string') return undefined;
  const [type, id] = url.replace(/^\//, '').split('?', 1)[0].split('/');
  if (!isKnownResourceType(type)) return undefined;
  const interaction = method === 'GET' ? (id ? 'r' : 's') : ({ POST: 'c', PUT: 'u', DELETE: 'd' } as Record<string, Interaction | undefined>)[method];
  return interaction ? { type, interaction } : undefined;
}

/** Each refused entry of the Bundle, by index, with the 403 it gets. */
export function refusedEntries(p: Principal, bundle: Bundle): Map<number, FhirError> {
  const refused = new Map<number, FhirError>();
  (Array.isArray(bundle?.entry) ? bundle.entry : []).forEach((entry, i) => {
    const access = entryAccess(entry);
    if (access && !mayAccess(p, access.type, access.interaction)) {
      const err = forbiddenFor(p, access.type, access.interaction);
      refused.set(i, new FhirError(403, 'forbidden', `Bundle.entry[${i}]: ${err.message}`, [`Bundle.entry[${i}].request`]));
    }
  });
  return refused;
}

/**
 * A batch's refused entries replaced by a request the store rejects before touching any data
 * (an unsupported method): the store numbers entries by position, so each keeps its place and
 * the caller puts the 403 in its response slot.
 */
export function withoutRefused(bundle: Bundle, refused: Map<number, FhirError>): Bundle {
  return { ...bundle, entry: bundle.entry!.map((e, i) => (refused.has(i) ? { request: { method: 'PATCH', url: 'Basic' } } : e)) as BundleEntry[] };
}
