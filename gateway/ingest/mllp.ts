import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { buildAuditEvent, type AuditInput } from '../../store/audit-event';
import type { IdentifiedAuditEvent } from '../../workers/audit';
import { ACK_STATUS } from './ack';
import { ANY_FACILITY, peerFacilities, type MllpPeers } from './mllp-peers';
import type { Hl7Receipt } from './service';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

export interface MllpOptions {
  /** Receives one message's bytes (without framing), sent for one of `facilities`, and returns its ACK. */
  receive: (message: Buffer, facilities: ReadonlySet<string>) => Promise<Hl7Receipt>;
  /** Who may connect, and for which facilities (MLLP_PEERS); not consulted under mutual TLS. */
  peers: MllpPeers;
  /** Mutual TLS (MLLP_TLS_CERT, MLLP_TLS_KEY, MLLP_TLS_CA): a client certificate from the CA, its CN the facility. */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
  log: Logger;
  /** A frame larger than this closes the connection (a sender not speaking MLLP, or a runaway). */
  maxMessageBytes?: number;
  /** Idle connections are closed after this long. */
  idleTimeoutMs?: number;
  /** The audit trail: one AuditEvent per message, as `POST /ingest/hl7v2` gets from gateway/audit. */
  audit?: { record(event: IdentifiedAuditEvent): void; observer: AuditInput['observer'] };
}

/**
 * The MLLP listener: `<VT> message <FS><CR>` frames, many per connection, answered one ACK
 * per message in the order received, as interface engines expect. The same receipt as
 * `POST /ingest/hl7v2`, so the same ACK semantics. MLLP has no credentials of its own: a
 * sender is known by its address, and one not in MLLP_PEERS is cut off before it says a word;
 * under mutual TLS it is known by its certificate instead.
 */
export function createMllpServer(opts: MllpOptions): Server {
  const max = opts.maxMessageBytes ?? 10 * 1024 * 1024;
  const server = opts.tls
    ? createTlsServer({ ...opts.tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket) => handle(socket, opts, max))
    : createServer((socket) => handle(socket, opts, max));
  // A failed handshake (no certificate, another CA) is the peer's problem, not the listener's.
  server.on('tlsClientError', (err) => opts.log.warn({ err: err.message }, 'MLLP TLS handshake refused'));
  server.on('error', (err) => opts.log.error({ err: err.message }, 'MLLP listener error'));
  return server;
}

function handle(socket: Socket, opts: MllpOptions, max: number): void {
  const facilities = socket instanceof TLSSocket ? certificateFacility(socket) : peerFacilities(opts.peers, socket.remoteAddress);
  if (!facilities) {
    opts.log.warn({ remote: socket.remoteAddress }, 'MLLP connection from a peer not in MLLP_PEERS, or without a facility in its certificate; closed');
    socket.destroy();
    return;
  }
  socket.setTimeout(opts.idleTimeoutMs ?? 300_000, () => socket.end());
  let buffer = Buffer.alloc(0);
  // Messages of one connection are answered in order: each waits for the one before.
  let chain: Promise<void> = Promise.resolve();
  socket.on('data', (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    for (;;) {
      const start = buffer.indexOf(VT);
      if (start < 0) {
        buffer = Buffer.alloc(0); // bytes outside a frame carry nothing
        break;
      }
      const end = buffer.indexOf(FS, start + 1);
      if (end < 0 || end + 1 >= buffer.length) {
        if (buffer.length - start > max) {
          opts.log.warn({ remote: socket.remoteAddress, bytes: buffer.length - start }, 'MLLP frame too large; closing the connection');
          socket.destroy();
        }
        buffer = start > 0 ? buffer.subarray(start) : buffer;
        break;
      }
      const message = Buffer.from(buffer.subarray(start + 1, end));
      // <FS> must be followed by <CR>; tolerate senders that omit it by not consuming the byte.
      buffer = buffer.subarray(buffer[end + 1] === CR ? end + 2 : end + 1);
      chain = chain.then(() => answer(socket, opts, message, facilities));
    }
  });
  socket.on('error', (err) => opts.log.debug({ err: err.message }, 'MLLP connection error'));
}

/** The facility a verified client certificate names in its subject CN. */
function certificateFacility(socket: TLSSocket): ReadonlySet<string> | undefined {
  const cn = socket.getPeerCertificate()?.subject?.CN;
  const name = Array.isArray(cn) ? undefined : cn;
  return socket.authorized && name ? new Set([name]) : undefined;
}

async function answer(socket: Socket, opts: MllpOptions, message: Buffer, facilities: ReadonlySet<string>): Promise<void> {
  let receipt: Hl7Receipt;
  try {
    receipt = await opts.receive(message, facilities);
  } catch (err) {
    // Not stored (database away): say nothing rather than a false ACK; the sender resends.
    opts.log.error({ err: (err as Error).message }, 'MLLP message could not be stored; closing the connection');
    audit(opts, socket, facilities, undefined);
    socket.destroy();
    return;
  }
  audit(opts, socket, facilities, receipt);
  if (!socket.destroyed) socket.write(Buffer.concat([Buffer.from([VT]), receipt.ack, Buffer.from([FS, CR])]));
}

/**
 * The message's AuditEvent: a create by the peer (its address; the facility of the source that
 * sent it, or the peer's only facility when the message was refused before), with the status `POST /ingest/hl7v2` would have answered; no status when nothing could
 * be stored. Patients are not named: the message is mapped later, by the worker.
 */
function audit(opts: MllpOptions, socket: Socket, facilities: ReadonlySet<string>, receipt: Hl7Receipt | undefined): void {
  if (!opts.audit) return;
  const peerFor = facilities.size === 1 && !facilities.has(ANY_FACILITY) ? [...facilities][0] : undefined;
  const facility = receipt?.facility ?? peerFor;
  opts.audit.record(
    buildAuditEvent({
      id: randomUUID(),
      recorded: new Date().toISOString(),
      what: { interaction: 'create' },
      status: receipt ? (receipt.forbidden ? 403 : ACK_STATUS[receipt.code]) : undefined,
      client: { facility, address: socket.remoteAddress },
      observer: opts.audit.observer,
      detail: `MLLP${receipt?.messageId ? `, message ${receipt.messageId}` : ''}`,
    }) as IdentifiedAuditEvent,
  );
}
