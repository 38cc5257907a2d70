import { randomUUID } from 'node:crypto';
import type { OperationOutcome } from '@medplum/fhirtypes';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { splitRecords } from '../../mappers';
import { decodeEr7 } from '../../mappers/hl7v2/decode';
import { ackCodeFor, readHeader, type Hl7Header } from '../../mappers/hl7v2/header';
import { MappingError, type MapResult } from '../../mappers/types';
import { notFound } from '../../store/errors';
import { messageLog, type NewMessage, type SourceQuality, type StoredMessage } from '../../store/messages';
import type { Repository } from '../../store/repository';
import { failureOutcome, mapperBugOutcome, patientKey, prepare } from '../../workers/ingest';
import { ingestMetrics } from '../../workers/metrics';
import { enqueueMessages, type IngestJob } from '../../workers/queues';
import type { SourceRegistry } from '../../workers/sources';
import { buildAck, type AckCode } from './ack';
import { foreignMrnFacility } from '../../workers/foreign-mrn';
import { ANY_FACILITY } from './mllp-peers';
import { ReceiptWriter } from './receipts';
import type { PreparedRecords } from '../../workers/prepared';

export interface Hl7Receipt {
  code: AckCode;
  /** The ACK, encoded in the message's charset. */
  ack: Buffer;
  charset: string;
  /** Absent when the message was refused before it could be stored (AR). */
  messageId?: string;
  /** AR because the sender may not send for the facility the message names. */
  forbidden?: boolean;
  /** The facility whose source sent it, once it is stored. */
  facility?: string;
}

export interface RecordReceipt {
  id: string;
  state: 'received' | 'failed';
  line?: number;
  outcome?: OperationOutcome;
}

export interface IngestServiceDeps {
  repo: Repository;
  queue: Queue<IngestJob>;
  sources: SourceRegistry;
  log: Logger;
  /** Set when this process's ingest worker applies what it receives: it is handed the mapped records. */
  prepared?: PreparedRecords;
}

/**
 * Receipt: the one road into the gateway for HTTP, MLLP and (later) batch imports. A record
 * is mapped and checked at once (pure, no I/O) so the sender hears precisely what is wrong,
 * then stored whatever the verdict, so nothing a sender handed over is lost and the quality
 * view sees failures; only then is it acknowledged and, if good, queued.
 */
export class IngestService {
  private readonly writer: ReceiptWriter;

  constructor(private readonly deps: IngestServiceDeps) {
    this.writer = new ReceiptWriter(deps.repo.executor, deps.queue, deps.log);
  }

  /**
   * `senderFacilities`: the facilities the authenticated sender may send for (an HTTP
   * client's one, an MLLP peer's list); unset only for the gateway's own callers (demo load).
   */
  async receiveHl7(bytes: Buffer, contentTypeCharset?: string, senderFacilities?: ReadonlySet<string>): Promise<Hl7Receipt> {
    let header: Hl7Header;
    let text: string;
    let charset = 'UTF-8';
    try {
      const decoded = decodeEr7(bytes, contentTypeCharset);
      charset = decoded.charset;
      text = decoded.text;
      header = readHeader(text);
    } catch (err) {
      return this.refuse(err, charset);
    }
    const ctx = header.sendingFacility ? this.deps.sources.forSendingFacility(header.sendingFacility) : undefined;
    if (!ctx) {
      return this.refuse(new MappingError(`sending facility '${header.sendingFacility}' is not a registered source`, { segment: 'MSH', field: 4 }, 'not-supported'), charset, header);
    }
    if (senderFacilities && !senderFacilities.has(ANY_FACILITY) && !senderFacilities.has(ctx.source.facility)) {
      const refused = this.refuse(new MappingError(`sending facility '${header.sendingFacility}' is not a source of the sender's facility`, { segment: 'MSH', field: 4 }, 'not-supported'), charset, header);
      return { ...refused, forbidden: true };
    }
    const foreign = foreignMrnFacility(text, ctx.source, this.deps.sources.sources);
    if (foreign) {
      const refused = this.refuse(new MappingError(`the patient's MRN is assigned by another facility (${foreign}); a source files its own patients only`, { segment: 'PID', field: 3 }, 'not-supported'), charset, header);
      return { ...refused, forbidden: true };
    }
    const { message, error } = this.checked({ id: randomUUID(), source: ctx.source.id, kind: [header.messageCode, header.triggerEvent].filter(Boolean).join('^'), controlId: header.controlId, charset, body: bytes });
    // A header the gateway cannot honour (message type, version, sender) is rejected, not kept.
    if (error && ackCodeFor(error) === 'AR') return this.refuse(error, charset, header);
    await this.writer.store([message]);
    ingestMetrics.received.inc({ source: message.source, state: message.state });
    const failure = message.outcome?.issue[0];
    const code: AckCode = message.state === 'received' ? 'AA' : 'AE';
    return { code, ack: buildAck(header, code, charset, failure && { text: failure.diagnostics ?? '', location: failure.expression?.[0], code: failure.code }), charset, messageId: message.id, facility: ctx.source.facility };
  }

  /** AR: the message could not even be attributed to a source; nothing is stored. */
  private refuse(err: unknown, charset: string, header?: Hl7Header): Hl7Receipt {
    const e = err instanceof MappingError ? err : new MappingError('the message cannot be read', { segment: 'MSH' }, 'structure');
    ingestMetrics.received.inc({ source: 'unknown', state: 'refused' });
    return { code: 'AR', ack: buildAck(header, 'AR', charset, { text: e.message, location: e.where, code: e.code }), charset };
  }

  /** Splits, checks and stores a registered non-HL7 source's posted body; throws MappingError when the body cannot be split. */
  async receiveRecords(sourceId: string, body: string): Promise<RecordReceipt[]> {
    const ctx = this.deps.sources.get(sourceId);
    if (!ctx || ctx.source.format === 'hl7v2') throw notFound(`No registered non-HL7 source '${sourceId}'`);
    const records = splitRecords(ctx, body);
    const messages = records.map((r) => this.check({ id: randomUUID(), source: sourceId, kind: r.kind, controlId: r.localId, body: Buffer.from(r.raw, 'utf8') }));
    await this.writer.store(messages);
    for (const m of messages) ingestMetrics.received.inc({ source: sourceId, state: m.state });
    return messages.map((m, i) => ({ id: m.id, state: m.state, ...(records[i].line ? { line: records[i].line } : {}), ...(m.outcome ? { outcome: m.outcome } : {}) }));
  }

  /** Maps and checks a record: a receivable message keyed by its patient, or a failed one with its reason. */
  private check(m: Omit<NewMessage, 'state'>): NewMessage {
    return this.checked(m).message;
  }

  private checked(m: Omit<NewMessage, 'state'>): { message: NewMessage; error?: unknown } {
    let mapped: MapResult;
    try {
      mapped = prepare(this.deps, { source: m.source, body: m.body, charset: m.charset ?? null });
    } catch (err) {
      const reason = failureOutcome(err) ?? unexpected(this.deps.log, m, err);
      return { message: { ...m, state: 'failed', outcome: reason }, error: err };
    }
    this.deps.prepared?.put(m.id, mapped);
    return { message: { ...m, state: 'received', patientKey: patientKey(mapped) } };
  }

  /** Per source; `facility` set: only that facility's sources. */
  async quality(facility?: string): Promise<SourceQuality[]> {
    const all = await messageLog.quality(this.deps.repo.executor);
    return facility === undefined ? all : all.filter((q) => this.facilityOf(q.source) === facility);
  }

  /** The facility a registered source belongs to. */
  facilityOf(sourceId: string): string | undefined {
    return this.deps.sources.get(sourceId)?.source.facility;
  }

  async status(id: string): Promise<StoredMessage & { job?: string }> {
    const m = await messageLog.get(this.deps.repo.executor, id);
    if (!m) throw notFound(`No ingest message ${id}`);
    if (m.state !== 'received') return m;
    // 'processing' is the queue's knowledge, not the log's: ask it only when it matters.
    const state = await this.deps.queue.getJobState(id).catch(() => 'unknown');
    return { ...m, job: state };
  }

  /**
   * Re-queues a message after a mapping fix: it is mapped and checked again from what was
   * received; still bad, it fails again with the new reason and is not queued.
   */
  async replay(id: string): Promise<StoredMessage> {
    const m = await messageLog.get(this.deps.repo.executor, id);
    if (!m) throw notFound(`No ingest message ${id}`);
    const recheck = this.check({ id: m.id, source: m.source, kind: m.kind, body: m.body, charset: m.charset ?? undefined });
    const reset = await messageLog.reset(this.deps.repo.executor, id, recheck);
    if (reset.state === 'received') {
      // A finished job of the same id would make the queue treat the replay as a duplicate.
      const job = await this.deps.queue.getJob(id);
      if (job && ((await job.isCompleted()) || (await job.isFailed()))) await job.remove();
      await enqueueMessages(this.deps.queue, [reset]);
    }
    return reset;
  }
}

function unexpected(log: Logger, m: Omit<NewMessage, 'state'>, err: unknown): OperationOutcome {
  log.error({ source: m.source, kind: m.kind, err: (err as Error)?.message }, 'mapper failed unexpectedly at receipt');
  return mapperBugOutcome();
}
