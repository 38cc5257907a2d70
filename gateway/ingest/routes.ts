import express, { Router, type Request } from 'express';
import iconv from 'iconv-lite';
import { MappingError } from '../../mappers/types';
import { badRequest, FhirError } from '../../store/errors';
import type { Principal } from '../auth/principal';
import { isOffice, principalOf } from '../auth/require';
import type { StoredMessage } from '../../store/messages';
import { sendJson } from '../fhir/routes';
import { ACK_STATUS } from './ack';
import type { IngestService } from './service';

const HL7_TYPES = ['application/hl7-v2', 'x-application/hl7-v2+er7', 'application/edi-hl7', 'text/plain'];
const RECORD_TYPES = ['application/json', 'text/csv', 'application/csv'];

/**
 * `/ingest`: HL7 v2 over HTTP, registered sources' JSON and CSV, each message's fate, replay
 * and the per-source quality view. The handlers translate HTTP; receipt lives in IngestService.
 */
export function ingestRouter(service: IngestService, limit = '10mb'): Router {
  const r = Router();
  const raw = express.raw({ type: [...HL7_TYPES, ...RECORD_TYPES], limit });

  r.post('/hl7v2', raw, async (req, res) => {
    const sender = new Set([principalOf(res).facility]);
    // An empty message of an HL7 type is still a message to the sender's interface engine: it hears AR, not an OperationOutcome.
    const isHl7 = HL7_TYPES.includes((req.get('content-type') ?? '').split(';')[0].trim().toLowerCase());
    const bytes = isHl7 ? (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)) : requireBody(req);
    const receipt = await service.receiveHl7(bytes, charsetOf(req), sender);
    res.status(receipt.forbidden ? 403 : ACK_STATUS[receipt.code]).type(`application/hl7-v2; charset=${receipt.charset}`);
    if (receipt.messageId) res.set('X-Message-Id', receipt.messageId).set('Location', `${req.baseUrl}/messages/${receipt.messageId}`);
    res.send(receipt.ack);
  });

  r.get('/quality', async (_req, res) => {
    const p = principalOf(res);
    sendJson(res, 200, { sources: await service.quality(isOffice(p) ? undefined : p.facility) });
  });

  r.get('/messages/:id', async (req, res) => {
    const message = await service.status(req.params.id);
    requireSender(principalOf(res), message.source);
    sendJson(res, 200, view(message));
  });

  r.post('/messages/:id/\\$replay', async (req, res) => {
    requireSender(principalOf(res), (await service.status(req.params.id)).source);
    sendJson(res, 202, view(await service.replay(req.params.id)));
  });

  /** A message's fate is its sender's business, and the office's. */
  function requireSender(p: Principal, source: string): void {
    if (!isOffice(p) && service.facilityOf(source) !== p.facility) throw new FhirError(403, 'forbidden', 'This message was sent by another facility');
  }

  r.post('/:source', raw, async (req, res) => {
    const facility = service.facilityOf(req.params.source);
    // Before anything is mapped or stored: a facility sends only as its own sources.
    if (facility !== undefined && facility !== principalOf(res).facility) throw new FhirError(403, 'forbidden', `Source '${req.params.source}' belongs to another facility`);
    const bytes = requireBody(req);
    const charset = charsetOf(req) ?? 'utf-8';
    if (!iconv.encodingExists(charset)) throw badRequest(`Unsupported charset '${charset}'`);
    let receipts;
    try {
      receipts = await service.receiveRecords(req.params.source, iconv.decode(bytes, charset));
    } catch (err) {
      if (err instanceof MappingError) throw new FhirError(400, err.code, err.where ? `${err.where}: ${err.message}` : err.message, err.where ? [err.where] : undefined);
      throw err;
    }
    const received = receipts.filter((m) => m.state === 'received').length;
    sendJson(res, received === 0 ? 422 : 202, { received, failed: receipts.length - received, messages: receipts });
  });

  return r;
}

function requireBody(req: Request): Buffer {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
    throw new FhirError(415, 'not-supported', `Expected a non-empty body of type ${[...HL7_TYPES, ...RECORD_TYPES].join(', ')}`);
  }
  return req.body;
}

function charsetOf(req: Request): string | undefined {
  return /charset\s*=\s*"?([^";]+)/i.exec(req.get('content-type') ?? '')?.[1]?.trim();
}

/** What a sender or an operator may see of a message: its fate, never its content. */
function view(m: StoredMessage & { job?: string }): Record<string, unknown> {
  const state = m.state === 'received' && m.job === 'active' ? 'processing' : m.state;
  return {
    id: m.id,
    source: m.source,
    kind: m.kind,
    ...(m.controlId ? { controlId: m.controlId } : {}),
    state,
    receivedAt: m.receivedAt,
    ...(m.finishedAt ? { finishedAt: m.finishedAt } : {}),
    attempts: m.attempts,
    resources: m.resources ?? [],
    ...(m.outcome ? { outcome: m.outcome } : {}),
    ...(m.unmapped ? { unmapped: m.unmapped } : {}),
  };
}
