import { connect, type Server } from 'node:net';
import { once } from 'node:events';
import type { AuditEvent } from '@medplum/fhirtypes';
import { adt, oru, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { createMllpServer } from '../../gateway/ingest/mllp';
import { parseMllpPeers } from '../../gateway/ingest/mllp-peers';
import { openIngestHarness, silent, type IngestHarness } from '../support/ingest';

const frame = (s: string): Buffer => Buffer.concat([Buffer.from([0x0b]), Buffer.from(s, 'utf8'), Buffer.from([0x1c, 0x0d])]);

describe('MLLP listener', () => {
  let h: IngestHarness;
  let server: Server;
  let port: number;
  const audited: AuditEvent[] = [];
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    h.startWorker();
    // The demo's default: loopback may send for every facility.
    server = createMllpServer({ receive: (m, f) => h.ingest.receiveHl7(m, undefined, f), peers: parseMllpPeers(undefined, true), log: silent, audit: { record: (e) => audited.push(e), observer: { name: 'mllp-suite' } } });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await h.close();
  });

  /** Sends bytes on one connection and collects `n` framed replies. */
  async function exchange(bytes: Buffer[], n: number): Promise<string[]> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const replies: string[] = [];
    let buffer = Buffer.alloc(0);
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (let end = buffer.indexOf(0x1c); end >= 0; end = buffer.indexOf(0x1c)) {
          expect(buffer[0]).toBe(0x0b);
          replies.push(buffer.subarray(1, end).toString('utf8'));
          buffer = buffer.subarray(end + 2);
        }
        if (replies.length >= n) resolve();
      });
      socket.on('error', reject);
    });
    for (const b of bytes) socket.write(b);
    await done;
    socket.end();
    return replies;
  }

  it('answers many messages on one connection, one ACK each, in order, even when frames are split across writes', async () => {
    const messages = [adt('A04', syntheticPatient(900), 'MLLP-1'), oru(syntheticPatient(900), 'MLLP-2', 'MR2'), oru(syntheticPatient(901), 'MLLP-3', 'MR3')];
    const all = Buffer.concat(messages.map(frame));
    // Split mid-frame, and two frames in one write.
    const cut = Math.floor(all.length / 3);
    const replies = await exchange([all.subarray(0, cut), all.subarray(cut)], 3);
    expect(replies.map((r) => r.split('\r')[1])).toEqual(['MSA|AA|MLLP-1', 'MSA|AA|MLLP-2', 'MSA|AA|MLLP-3']);
    const ids = (await h.store.db.query<{ id: string }>(`SELECT id FROM ingest_message WHERE control_id LIKE 'MLLP-%'`)).map((r) => r.id);
    expect(ids).toHaveLength(3);
    const finished = await h.waitForFinished(ids);
    expect(finished.every((m) => m.state === 'done')).toBe(true);
  });

  it('answers a broken message with AE and keeps the connection for the next', async () => {
    const bad = oru(syntheticPatient(902), 'MLLP-BAD', 'MR4').replace(/^PID\|1\|\|[^|]*/m, 'PID|1||');
    const replies = await exchange([frame(bad), frame(adt('A04', syntheticPatient(902), 'MLLP-5'))], 2);
    expect(replies[0].split('\r')[1]).toBe('MSA|AE|MLLP-BAD');
    expect(replies[0]).toMatch(/\rERR\|\|PID\^1\^3/);
    expect(replies[1].split('\r')[1]).toBe('MSA|AA|MLLP-5');
    // Each message is audited as its HTTP twin would be: a create by the peer, with the status POST /ingest/hl7v2 answers.
    const [refusal, accepted] = audited.slice(-2);
    expect([refusal.subtype?.[0]?.code, refusal.outcome, refusal.outcomeDesc, accepted.outcome]).toEqual(['create', '4', 'HTTP 422', '0']);
    expect(accepted.agent.find((a) => a.network)?.network?.address).toMatch(/127\.0\.0\.1/);
    expect(accepted.entity?.find((e) => e.description)?.description).toMatch(/^MLLP, message [0-9a-f-]{36}$/);
    expect(accepted.agent.find((a) => a.type?.coding?.[0]?.code === 'PROV')?.who?.reference).toBe('Organization/city-hospital');
  });

  it('answers a frame with a NUL byte with AE and keeps the connection, instead of failing to store it', async () => {
    const bad = oru(syntheticPatient(903), 'MLLP-NUL', 'MR6').replace(/^PID\|1\|\|/m, 'PID|1||\u0000');
    const replies = await exchange([frame(bad), frame(adt('A04', syntheticPatient(903), 'MLLP-7'))], 2);
    expect(replies[0].split('\r')[1]).toBe('MSA|AE|MLLP-NUL');
    expect(replies[0]).toMatch(/\rERR\|\|PID\^1\^3/);
    expect(replies[1].split('\r')[1]).toBe('MSA|AA|MLLP-7');
  });
});
