import type { Subscription } from '@medplum/fhirtypes';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';

/** Marks the gateway's own writes of Subscription status (see Written.origin): no client guard applies. */
export const NOTIFY_ORIGIN = 'notify';

export type StatusChange = { status: 'active'; error?: undefined } | { status: 'error'; error: string };

/**
 * Sets a Subscription's status (and `error`, the delivery problem a subscriber reads), unless
 * the Subscription is gone, turned off, or already says so. The write is conditional on the
 * version read, so a client's change made meanwhile (turning it off, a new endpoint) wins.
 * `repo` must be unrestricted: the Subscription keeps its author.
 */
export async function setStatus(repo: Repository, id: string, change: StatusChange): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let sub: Subscription;
    try {
      sub = (await repo.read('Subscription', id)).resource as Subscription;
    } catch (err) {
      if (err instanceof FhirError && (err.status === 404 || err.status === 410)) return;
      throw err;
    }
    if (sub.status === 'off' || (sub.status === change.status && sub.error === change.error)) return;
    const { error: _dropped, ...rest } = sub;
    const next: Subscription = { ...rest, status: change.status, ...(change.error ? { error: change.error } : {}) };
    try {
      await repo.applyWrites([{ method: 'update', type: 'Subscription', id, resource: next, ifMatch: sub.meta?.versionId, origin: NOTIFY_ORIGIN }]);
      return;
    } catch (err) {
      if (!(err instanceof FhirError && err.status === 412)) throw err;
    }
  }
}
