/**
 * Delivering notifications (BullMQ queue `notify`): a rest-hook is POSTed to (no payload) or
 * sent the matched version with PUT [endpoint]/[Type]/[id] (payload application/fhir+json),
 * as R4 describes; a websocket-bound Subscription is published on Redis for the gateways
 * holding its sockets (gateway/notify/websocket.ts), and fails while none does. A failure is
 * retried with exponential backoff and shows on the Subscription as status `error`; after the
 * last attempt the notification is kept as a dead letter (store/notify-log.ts) and the
 * Subscription says so. The next success sets it `active` again.
 */
import type { Subscription } from '@medplum/fhirtypes';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { FhirError } from '../../store/errors';
import { notifyLog } from '../../store/notify-log';
import type { Repository } from '../../store/repository';
import { notifyMetrics } from '../metrics';
import { QUEUE_PREFIX } from '../queues';
import { NOTIFY_QUEUE, websocketChannel, type NotifyJob } from './queue';
import { notificationEvent, type AuditRecord } from './audit';
import { setStatus } from './status';
import { accessOf, watchOf, type Watch } from './subscription';

export interface DeliveryDeps {
  /** Unrestricted: it reads Subscriptions and sets their status; payloads are read as each Subscription's author. */
  repo: Repository;
  /** Publishes websocket notifications. */
  redis: Redis;
  log: Logger;
  /** Where each delivery's AuditEvent goes (./audit.ts). */
  audit: AuditRecord;
}

const TIMEOUT_MS = 10_000;

/** Nothing was owed: the version is no longer the subscriber's to see. */
const SKIPPED = Symbol('skipped');

export function startNotifyWorker(deps: DeliveryDeps, opts: { connection: ConnectionOptions; concurrency?: number; prefix?: string }): Worker<NotifyJob> {
  const prefix = opts.prefix ?? QUEUE_PREFIX;
  const worker = new Worker<NotifyJob>(NOTIFY_QUEUE, (job) => deliverJob(deps, prefix, job), { connection: opts.connection, prefix, concurrency: opts.concurrency ?? 16 });
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'notify worker error'));
  return worker;
}

async function deliverJob(deps: DeliveryDeps, prefix: string, job: Job<NotifyJob>): Promise<void> {
  const n = job.data;
  const watch = await liveWatch(deps.repo, n.subscription);
  if (!watch) return; // turned off or deleted since: nothing is owed
  const what = `${n.type}/${n.id}/_history/${n.version}`;
  let sent: string | null | typeof SKIPPED;
  try {
    sent = await deliver(deps, prefix, watch, n);
  } catch (err) {
    const reason = describe(err);
    const attempts = job.opts.attempts ?? 1;
    notifyMetrics.failures.inc({ channel: watch.channel.type });
    if (job.attemptsMade + 1 < attempts) {
      await setStatus(deps.repo, watch.id, { status: 'error', error: `notifying ${what} failed (${reason}); retrying` });
      throw new Error(reason, { cause: err });
    }
    await notifyLog.deadLetter(deps.repo.executor, { subscription: watch.id, type: n.type, id: n.id, version: n.version, attempts, error: reason });
    await setStatus(deps.repo, watch.id, { status: 'error', error: `gave up notifying ${what} after ${attempts} attempts (${reason}); set status to requested to have it sent again` });
    notifyMetrics.dead.inc();
    deps.log.warn({ subscription: watch.id, resource: what, attempts, err: reason }, 'notification kept as a dead letter');
    return;
  }
  if (sent === SKIPPED) return;
  notifyMetrics.delivered.inc({ channel: watch.channel.type });
  deps.audit.record(notificationEvent(watch, n, sent, 'consortium-fhir-gateway notifications'));
  if (watch.status === 'error') await setStatus(deps.repo, watch.id, { status: 'active' });
}

async function liveWatch(repo: Repository, id: string): Promise<Watch | undefined> {
  try {
    const sub = (await repo.read('Subscription', id)).resource as Subscription & { id: string };
    return sub.status === 'off' ? undefined : watchOf(sub);
  } catch (err) {
    if (err instanceof FhirError && err.status < 500) return undefined; // gone, or no longer one the gateway serves (the dispatcher says so on it)
    throw err;
  }
}

/** Delivers one notification; the JSON it carried (null when it carried none), or SKIPPED. */
async function deliver(deps: DeliveryDeps, prefix: string, watch: Watch, n: NotifyJob): Promise<string | null | typeof SKIPPED> {
  if (watch.channel.type === 'websocket') {
    const receivers = await deps.redis.publish(websocketChannel(prefix, watch.id), JSON.stringify({ type: n.type, id: n.id, version: n.version }));
    if (receivers === 0) throw new Error('no websocket is bound to it');
    return null;
  }
  const endpoint = watch.channel.endpoint!;
  const headers = new Headers(watch.channel.headers);
  let res: Response;
  let json: string | null = null;
  if (watch.channel.payload) {
    try {
      json = (await deps.repo.withAccess(accessOf(watch)).vread(n.type, n.id, String(n.version))).json;
    } catch (err) {
      // No longer visible to the subscriber (a label or an opt-out since): nothing it may be sent.
      if (err instanceof FhirError && err.status < 500) {
        deps.log.debug({ subscription: watch.id, resource: `${n.type}/${n.id}` }, 'notification not sent: the subscriber may no longer read it');
        return SKIPPED;
      }
      throw err;
    }
    headers.set('content-type', `${watch.channel.payload}; charset=utf-8`);
    res = await fetch(`${endpoint.replace(/\/+$/, '')}/${n.type}/${n.id}`, { method: 'PUT', headers, body: json, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } else {
    res = await fetch(endpoint, { method: 'POST', headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  }
  await res.body?.cancel();
  if (!res.ok) throw new Error(`the endpoint answered ${res.status}`);
  return json;
}

/** A failure's cause in a line: never a response body, nor the channel's headers (they may hold a secret). */
function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  if (e?.cause?.code) return `cannot reach the endpoint (${e.cause.code})`;
  return e?.message?.split('\n')[0] ?? String(err);
}
