/**
 * Forwarding every stored change upstream (the provincial platform): the outbox in the store's
 * database (store/forward-log.ts) is read in write order and each version is PUT (or DELETEd)
 * on the upstream FHIR server with fhir-kit-client. A change leaves the outbox only once the
 * upstream has answered 2xx, so delivery is at least once; it is sent strictly in order, and a
 * failure stops the line and is retried with backoff, so a resource's versions arrive in order.
 * One forwarder runs at a time across processes (a lease in the database).
 */
import Client from 'fhir-kit-client';
import type { Resource } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { forwardLog, type PendingChange } from '../store/forward-log';
import { LeasedLoop } from './leased-loop';
import { forwardMetrics } from './metrics';
import type { Database } from '../store/db/database';

export interface UpstreamConfig {
  /** FHIR base of the upstream server. */
  url: string;
  /** Client credentials for the upstream's token endpoint (SMART Backend Services style), when it needs a token. */
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
}

export interface ForwarderOptions {
  batch: number;
  /** Wait when nothing is waiting. */
  idleMs: number;
  /** Backoff after a failure: doubles from `retryMs` up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
}

export const DEFAULT_FORWARDER: ForwarderOptions = { batch: 100, idleMs: 500, retryMs: 1000, maxRetryMs: 60_000 };

const LEASE_SECONDS = 30;

export class Forwarder extends LeasedLoop {
  private readonly client: Client;
  private token?: { value: string; expires: number };

  constructor(
    db: Database,
    private readonly upstream: UpstreamConfig,
    private readonly log: Logger,
    private readonly opts: ForwarderOptions = DEFAULT_FORWARDER,
  ) {
    super(db, 'forward_state');
    this.client = new Client({ baseUrl: upstream.url.replace(/\/+$/, '') });
  }

  /** Turns capture on (queueing the whole record the first time) and starts sending. */
  async start(): Promise<void> {
    if (await this.db.transaction((tx) => forwardLog.enable(tx, this.upstream.url))) this.log.info({ upstream: this.upstream.url }, 'forwarding enabled: the current record is queued for the upstream');
    this.begin();
  }

  /** Changes waiting and the lag, also published as metrics. */
  async backlog(): Promise<{ waiting: number; lagSeconds: number }> {
    const b = await forwardLog.backlog(this.db);
    forwardMetrics.lag.set(b.lagSeconds);
    forwardMetrics.waiting.set(b.waiting);
    return b;
  }

  protected async run(): Promise<void> {
    let delay = this.opts.retryMs;
    while (!this.stopped) {
      let pause = this.opts.idleMs;
      try {
        if (await forwardLog.lease(this.db, this.owner, LEASE_SECONDS)) {
          const batch = await forwardLog.pending(this.db, this.opts.batch);
          const sent = await this.send(batch);
          await forwardLog.sent(this.db, sent);
          await this.backlog();
          if (sent.length < batch.length) throw new Error('the upstream refused a change');
          if (batch.length === this.opts.batch) pause = 0;
        }
        delay = this.opts.retryMs;
      } catch (err) {
        forwardMetrics.failures.inc();
        this.log.warn({ err: describe(err), retryInMs: delay }, 'forwarding upstream failed; retrying');
        pause = delay;
        delay = Math.min(delay * 2, this.opts.maxRetryMs);
      }
      if (pause > 0) await this.sleep(pause);
    }
  }

  /** Sends in order, stopping at the first failure; the seqs the upstream accepted. */
  private async send(batch: PendingChange[]): Promise<number[]> {
    const sent: number[] = [];
    for (const change of batch) {
      try {
        await this.apply(change);
      } catch (err) {
        if (status(err) === 401) this.token = undefined;
        this.log.warn({ resource: `${change.type}/${change.id}`, version: change.version, err: describe(err) }, 'the upstream did not take a change');
        break;
      }
      sent.push(change.seq);
      forwardMetrics.forwarded.inc();
    }
    return sent;
  }

  private async apply(change: PendingChange): Promise<void> {
    this.client.bearerToken = await this.accessToken();
    if (change.content === null) {
      await this.client.delete({ resourceType: change.type, id: change.id });
      return;
    }
    const resource = JSON.parse(change.content) as Resource;
    // The upstream keeps its own versions; the source version is kept as the version it came from.
    const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta ?? {};
    await this.client.update({ resourceType: change.type, id: change.id, body: { ...resource, meta } });
  }

  private async accessToken(): Promise<string | undefined> {
    const { tokenUrl, clientId, clientSecret } = this.upstream;
    if (!tokenUrl || !clientId || !clientSecret) return undefined;
    if (this.token && this.token.expires > Date.now() + 10_000) return this.token.value;
    const res = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
    });
    if (!res.ok) throw new Error(`the upstream token endpoint answered ${res.status}`);
    const body = (await res.json()) as { access_token: string; expires_in?: number };
    this.token = { value: body.access_token, expires: Date.now() + (body.expires_in ?? 300) * 1000 };
    return this.token.value;
  }
}

const status = (err: unknown): number | undefined => (err as { response?: { status?: number } })?.response?.status;

/** An error's class and status, never a response body (it may quote the record). */
function describe(err: unknown): string {
  const s = status(err);
  if (s !== undefined) return `upstream answered ${s}`;
  return (err as Error)?.message?.split('\n')[0] ?? String(err);
}
