/**
 * What the gateway makes of a FHIR R4 Subscription: its criteria (a search on one type), its
 * channel, and the rules a client's write of one must follow. Pure: the dispatcher, the
 * delivery worker, the websocket and the store's write guard all read Subscriptions this way.
 */
import type { Subscription } from '@medplum/fhirtypes';
import { authorOf } from '../../store/access-labels';
import type { AccessContext } from '../../store/access';
import { deepEqual } from '../../store/deep-equal';
import { unprocessable, type FhirError } from '../../store/errors';
import type { WriteGuard } from '../../store/repository';
import { parseSearch } from '../../store/search/parse';

export type ChannelType = 'rest-hook' | 'websocket';

export interface Watch {
  id: string;
  /** The facility that wrote it: notifications carry only what that facility may read. */
  author: string | null;
  status: Subscription['status'];
  type: string;
  params: [string, string][];
  channel: { type: ChannelType; endpoint?: string; payload?: string; headers: [string, string][] };
}

/** Search controls that shape a result page: meaningless for "does this resource match". */
const PAGE_CONTROLS = new Set(['_count', '_sort', '_include', '_revinclude', '_include:iterate', '_revinclude:iterate', '_total', '_summary', '_elements', '_cursor']);

/** The statuses a client asks for; `active` and `error` are the gateway's to set. */
const CLIENT_STATUSES = new Set(['requested', 'off']);

const invalid = (message: string, field: string): FhirError => unprocessable(message, [`Subscription.${field}`]);

/** `Type?param=value&...` as a type and its parameters, checked as the search API would check them (strictly). */
export function criteriaOf(criteria: string): { type: string; params: [string, string][] } {
  const q = criteria.indexOf('?');
  const type = q < 0 ? criteria : criteria.slice(0, q);
  if (!/^[A-Z][A-Za-z]+$/.test(type)) throw invalid(`criteria must be a search, Type?param=value, got '${criteria}'`, 'criteria');
  const params = [...new URLSearchParams(q < 0 ? '' : criteria.slice(q + 1))] as [string, string][];
  const control = params.find(([name]) => PAGE_CONTROLS.has(name));
  if (control) throw invalid(`criteria may not use ${control[0]}: a notification is about one resource, not a page`, 'criteria');
  try {
    // `:mdm` (the whole person, mpi/person-search.ts) is the patient index's to expand, at each match; the store checks the rest.
    parseSearch(type, params.map(([name, value]) => [name.replace(/:mdm$/, ''), value]), { strict: true });
  } catch (err) {
    throw invalid(`criteria '${criteria}': ${(err as Error).message}`, 'criteria');
  }
  return { type, params };
}

/** The watch a stored Subscription stands for; throws a FhirError when it is not one the gateway can serve. */
export function watchOf(sub: Subscription & { id: string }): Watch {
  if (!sub.criteria) throw invalid('criteria is required', 'criteria');
  const { type, params } = criteriaOf(sub.criteria);
  const channel = sub.channel;
  if (channel?.type !== 'rest-hook' && channel?.type !== 'websocket') throw invalid(`channel.type ${channel?.type ?? '(none)'} is not supported: rest-hook and websocket are`, 'channel.type');
  if (channel.type === 'rest-hook') {
    let url: URL;
    try {
      url = new URL(channel.endpoint ?? '');
    } catch {
      throw invalid('a rest-hook needs channel.endpoint, an http(s) URL', 'channel.endpoint');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('channel.endpoint must be an http(s) URL', 'channel.endpoint');
  }
  if (channel.payload && channel.payload !== 'application/fhir+json' && channel.payload !== 'application/json') {
    throw invalid(`channel.payload ${channel.payload} is not supported: application/fhir+json is, or none for an empty notification`, 'channel.payload');
  }
  const headers = (channel.header ?? []).map((h, i): [string, string] => {
    const colon = h.indexOf(':');
    if (colon < 1) throw invalid(`channel.header[${i}] must be "Name: value"`, `channel.header[${i}]`);
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
  });
  return {
    id: sub.id,
    author: authorOf(sub),
    status: sub.status,
    type,
    params,
    channel: { type: channel.type, endpoint: channel.endpoint, payload: channel.payload, headers },
  };
}

/** What a watch's matches are read with: its author's view of the record (everything for the office's own). */
export const accessOf = (w: Pick<Watch, 'author'>): AccessContext => (w.author ? { facility: w.author } : { unrestricted: true });

/**
 * A client's Subscription must be one the gateway serves, and asks for `requested` (or `off`):
 * the gateway sets it `active` once its trigger captures the type (workers/notify), and
 * `error` when delivery fails. A client may send back the status it read while the criteria
 * and channel stay as they were. `endpoints`, when given, are the URL prefixes a rest-hook may
 * call (none when empty): the gateway should not be made to call anything on its network.
 */
export function subscriptionGuard(endpoints?: string[]): WriteGuard {
  return {
    type: 'Subscription',
    check({ prior, next }) {
      if (!next) return undefined;
      const sub = next as Subscription;
      const watch = watchOf({ ...sub, id: sub.id ?? 'new' });
      if (watch.channel.endpoint && endpoints && !endpoints.some((p) => watch.channel.endpoint!.startsWith(p))) {
        throw invalid(
          endpoints.length === 0
            ? 'this gateway calls no rest-hook endpoint until its operator lists them (SUBSCRIPTION_ENDPOINTS)'
            : `channel.endpoint ${watch.channel.endpoint} is not one this gateway calls (SUBSCRIPTION_ENDPOINTS)`,
          'channel.endpoint',
        );
      }
      const before = prior as Subscription | undefined;
      const unchanged = before?.status === sub.status && before.criteria === sub.criteria && deepEqual(before.channel, sub.channel);
      if (!CLIENT_STATUSES.has(sub.status) && !unchanged) {
        throw invalid(`status ${sub.status} is set by the gateway: send requested (or off)`, 'status');
      }
      return undefined;
    },
  };
}
