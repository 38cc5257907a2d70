import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect, type Server as NetServer } from 'node:net';
import { join, resolve } from 'node:path';
import iconv from 'iconv-lite';
import pino from 'pino';
import request from 'supertest';
import { createApp } from '../../gateway/app';
import { parseMllpPeers } from '../../gateway/ingest/mllp-peers';
import { testAuth, tokenFor } from '../support/auth';
import { createMllpServer } from '../../gateway/ingest/mllp';
import { IngestService } from '../../gateway/ingest/service';
import { decodeEr7 } from '../../mappers/hl7v2/decode';
import { fuzzRng, FuzzTally, REQUEST_TIMEOUT_MS } from '../support/fuzz';
import { demoSources, openIngestHarness, type IngestHarness } from '../support/ingest';
import { mutateHl7 } from './mutate-hl7';

const CASES = Number(process.env.FUZZ_HL7_CASES ?? 800);
const FRAMES = Number(process.env.FUZZ_MLLP_FRAMES ?? 300);
const MESSAGES = resolve(__dirname, '../../fixtures/messages');
const HL7_TYPES = ['application/hl7-v2', 'x-application/hl7-v2+er7', 'application/edi-hl7', 'text/plain'];
const ACK_STATUS: Record<string, number> = { AA: 200, AE: 422, AR: 400 };

/** Every sample ER7 message, good and broken, as text in its own charset. */
function samples(): { name: string; text: string; charset: string }[] {
  const dirs = [join(MESSAGES, 'city-hospital'), join(MESSAGES, 'broken/city-hospital')];
  return dirs.flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.hl7'))
      .map((f) => {
        const bytes = readFileSync(join(dir, f));
        try {
          const { text, charset } = decodeEr7(bytes);
          return { name: f, text, charset };
        } catch {
          return { name: f, text: bytes.toString('latin1'), charset: 'latin1' };
        }
      }),
  );
}

/** What is wrong with an answer to an ER7 message, if anything: it must be an ACK whose code matches the HTTP status. */
function ackProblem(status: number, body: Buffer, charset: string): string | undefined {
  if (status >= 500) return `HTTP ${status}: ${body.toString('utf8').slice(0, 200)}`;
  const text = iconv.encodingExists(charset) ? iconv.decode(body, charset) : body.toString('latin1');
  if (!text.startsWith('MSH|^~\\&|')) return `HTTP ${status} without an ACK: ${text.slice(0, 120)}`;
  const code = /\rMSA\|([A-Z]{2})\|/.exec(text)?.[1];
  if (!code || !(code in ACK_STATUS)) return `ACK without MSA-1 AA/AE/AR: ${text.slice(0, 200)}`;
  // AR is 403 when the message names another facility than the token's (a mutated MSH-4 or PID-3).
  if (ACK_STATUS[code] !== status && !(code === 'AR' && status === 403)) return `${code} with HTTP ${status}`;
  if (code !== 'AA' && !/\rERR\|/.test(text)) return `${code} without an ERR segment saying why`;
  return undefined;
}

describe('fuzz: HL7 v2 ingest', () => {
  let h: IngestHarness;
  let service: IngestService;
  let server: Server;
  let token: string;
  /** What receipt logged at error level: a mapper that threw something other than a MappingError. */
  const logged: string[] = [];
  const rng = fuzzRng('hl7v2');
  const inputs = samples();

  beforeAll(async () => {
    h = await openIngestHarness('pglite');
    const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    service = new IngestService({ repo: h.store.repo, queue: h.queue, sources: demoSources(), log });
    const app = createApp({ repo: h.store.repo, ingest: service, mpi: h.store.mpi, auth: await testAuth(), onError: (err) => logged.push((err as Error).message) });
    // The samples are the city hospital's, sent with its token.
    token = await tokenFor(app, 'city-hospital');
    server = await new Promise<Server>((done) => {
      const s = app.listen(0, '127.0.0.1', () => done(s));
    });
  });
  afterAll(async () => {
    await new Promise((done) => server.close(done));
    await h.close();
  });

  it(`answers ${CASES} mutated messages over HTTP with an ACK, never a 5xx, a hang or a mapper crash`, async () => {
    const tally = new FuzzTally('hl7v2-http');
    const api = request(server);
    for (let i = 0; i < CASES; i++) {
      const n = tally.next();
      const sample = rng.pick(inputs);
      const m = mutateHl7(rng, sample.text, sample.charset);
      const type = rng.pick(HL7_TYPES);
      const contentType = m.charset ? `${type}; charset=${m.charset}` : type;
      const input = `${sample.name}: ${m.mutation} [${contentType}]`;
      const before = logged.length;
      const started = performance.now();
      try {
        const res = await api
          .post('/ingest/hl7v2')
          .set('Authorization', `Bearer ${token}`)
          .set('Content-Type', contentType)
          .send(m.bytes)
          .buffer(true)
          .parse((r, cb) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => cb(null, Buffer.concat(chunks)));
          })
          .timeout(REQUEST_TIMEOUT_MS)
          .ok(() => true);
        tally.took(performance.now() - started, input);
        const charset = /charset=([^;]+)/.exec(res.headers['content-type'] ?? '')?.[1] ?? 'utf-8';
        const problem = ackProblem(res.status, res.body as Buffer, charset);
        const cause = logged.length > before ? `logged: ${logged.at(-1)!.slice(0, 200)}` : undefined;
        if (problem || cause) tally.fail(n, input, [problem, cause].filter(Boolean).join('; '), res.status >= 500);
      } catch (err) {
        tally.fail(n, input, `no answer: ${(err as Error).message}`, true);
      }
    }
    expect(tally.report()).toEqual([]);
    expect(tally.cases).toBe(CASES);
  });

  it(`answers ${FRAMES} mutated frames over MLLP with one ACK each, in order, and keeps listening`, async () => {
    const mllp: NetServer = createMllpServer({ receive: (b, f) => service.receiveHl7(b, undefined, f), peers: parseMllpPeers(undefined, true), log: pino({ level: 'silent' }) });
    mllp.listen(0, '127.0.0.1');
    await once(mllp, 'listening');
    const port = (mllp.address() as { port: number }).port;
    const tally = new FuzzTally('hl7v2-mllp');
    try {
      // Frame bytes inside a frame end it early by design; the HTTP run covers them.
      const frames = Array.from({ length: FRAMES }, () => {
        const sample = rng.pick(inputs);
        const m = mutateHl7(rng, sample.text, sample.charset);
        const body = Buffer.from(m.bytes.filter((b) => b !== 0x0b && b !== 0x1c));
        return { input: `${sample.name}: ${m.mutation}`, bytes: Buffer.concat([Buffer.from([0x0b]), body, Buffer.from([0x1c, 0x0d])]) };
      });
      const connections = 3;
      const per = Math.ceil(FRAMES / connections);
      await Promise.all(
        Array.from({ length: connections }, async (_, c) => {
          const mine = frames.slice(c * per, (c + 1) * per);
          const replies = await exchange(port, mine.map((f) => f.bytes), mine.length);
          mine.forEach((f, i) => {
            const n = tally.next();
            const reply = replies[i];
            if (reply === undefined) tally.fail(n, f.input, `no ACK (got ${replies.length} of ${mine.length} on connection ${c})`, true);
            else if (!/^MSH\|\^~\\&\|[^\r]*\rMSA\|A[AER]\|/.test(reply.toString('latin1'))) tally.fail(n, f.input, `not an ACK: ${reply.toString('latin1').slice(0, 120)}`);
          });
        }),
      );
      expect(tally.report()).toEqual([]);
      expect(tally.cases).toBe(FRAMES);
      // Still listening: a clean message on a new connection is accepted.
      const clean = inputs.find((x) => x.name === 'adt-a04-wang-xiaoming.hl7')!;
      const [ack] = await exchange(port, [Buffer.concat([Buffer.from([0x0b]), Buffer.from(clean.text, 'utf8'), Buffer.from([0x1c, 0x0d])])], 1);
      expect(ack.toString('utf8')).toMatch(/\rMSA\|AA\|/);
    } finally {
      await new Promise((done) => mllp.close(done));
    }
  });
});

/** Writes frames on one connection and collects replies until `n` arrive or the connection ends. */
async function exchange(port: number, frames: Buffer[], n: number): Promise<Buffer[]> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const replies: Buffer[] = [];
  let buffer = Buffer.alloc(0);
  const done = new Promise<void>((resolveDone) => {
    const timer = setTimeout(resolveDone, REQUEST_TIMEOUT_MS * 4);
    const finish = (): void => {
      clearTimeout(timer);
      resolveDone();
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (let end = buffer.indexOf(0x1c); end >= 0; end = buffer.indexOf(0x1c)) {
        replies.push(buffer.subarray(buffer.indexOf(0x0b) + 1, end));
        buffer = buffer.subarray(end + 2);
      }
      if (replies.length >= n) finish();
    });
    socket.on('close', finish);
    socket.on('error', finish);
  });
  for (const f of frames) socket.write(f);
  await done;
  socket.destroy();
  return replies;
}
