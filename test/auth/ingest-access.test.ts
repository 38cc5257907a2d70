import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { resolve } from 'node:path';
import type request from 'supertest';
import { adt, oru, syntheticPatient } from '../../fixtures/synthetic/hl7';
import { createMllpServer } from '../../gateway/ingest/mllp';
import { parseMllpPeers } from '../../gateway/ingest/mllp-peers';
import { openIngestHarness, silent, type IngestHarness } from '../support/ingest';
import { facilityAgents, OFFICE } from '../support/auth';
import { sendFramed } from '../support/mllp';

const HL7 = 'application/hl7-v2';
const COUNTY_JSON = readFileSync(resolve(__dirname, '../../fixtures/messages/county-hospital/br-patients.json'), 'utf8');
const segment = (ack: string, id: string): string[] => ack.split('\r').find((s) => s.startsWith(`${id}|`))!.split('|');

describe('ingest is bound to the sender\'s facility (PostgreSQL, Redis)', () => {
  let h: IngestHarness;
  let as: Record<string, request.Agent>;
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    as = await facilityAgents(h.app, ['city-hospital', 'county-hospital', OFFICE]);
  });
  afterAll(() => h.close());

  it('POST /ingest/{source}: only the source\'s own facility, before anything is stored', async () => {
    const refused = await as['city-hospital'].post('/ingest/county-hospital').set('Content-Type', 'application/json').send(COUNTY_JSON).expect(403);
    expect(refused.body.issue[0]).toMatchObject({ code: 'forbidden', diagnostics: expect.stringContaining('county-hospital') });
    await as[OFFICE].post('/ingest/county-hospital').set('Content-Type', 'application/json').send(COUNTY_JSON).expect(403);
    expect(await h.store.db.query(`SELECT 1 FROM ingest_message WHERE source = 'county-hospital'`)).toHaveLength(0);
    const accepted = await as['county-hospital'].post('/ingest/county-hospital').set('Content-Type', 'application/json').send(COUNTY_JSON).expect(202);
    expect(accepted.body.failed).toBe(0);
  });

  it('POST /ingest/hl7v2: AR (HTTP 403) naming MSH-4 when it is another facility\'s source, nothing stored', async () => {
    const res = await as['county-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(oru(syntheticPatient(700), 'XF-1', 'XR1')).expect(403);
    expect(segment(res.text, 'MSA').slice(1, 3)).toEqual(['AR', 'XF-1']);
    expect(segment(res.text, 'ERR')[2]).toBe('MSH^1^4^1');
    expect(res.headers['x-message-id']).toBeUndefined();
    expect(await h.store.db.query(`SELECT 1 FROM ingest_message WHERE control_id = 'XF-1'`)).toHaveLength(0);
  });

  it('POST /ingest/hl7v2: AR (HTTP 403) naming PID-3 when the MRN\'s assigning authority is another facility\'s', async () => {
    const byOid = oru(syntheticPatient(701), 'XF-2', 'XR2').replace('^^^CITYHOSP^MR', '^^^&2.16.156.10011.1.11.2&ISO^MR');
    const res = await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(byOid).expect(403);
    expect(segment(res.text, 'MSA')[1]).toBe('AR');
    expect(segment(res.text, 'ERR')[2]).toBe('PID^1^3^1');
    // The city's own MRN with another facility's as a secondary identifier is the city's patient.
    const both = adt('A04', syntheticPatient(702), 'XF-3').replace('^^^CITYHOSP^MR', '^^^CITYHOSP^MR~Z0000702^^^&2.16.156.10011.1.11.2&ISO^MR');
    expect(segment((await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(both).expect(200)).text, 'MSA')[1]).toBe('AA');
  });

  it('a message\'s status and replay are for its sender and the office; quality shows a facility its own sources', async () => {
    const sent = await as['city-hospital'].post('/ingest/hl7v2').set('Content-Type', HL7).send(adt('A04', syntheticPatient(703), 'XF-4')).expect(200);
    const id = sent.headers['x-message-id'];
    await as['city-hospital'].get(`/ingest/messages/${id}`).expect(200);
    await as[OFFICE].get(`/ingest/messages/${id}`).expect(200);
    expect((await as['county-hospital'].get(`/ingest/messages/${id}`).expect(403)).body.issue[0].code).toBe('forbidden');
    await as['county-hospital'].post(`/ingest/messages/${id}/$replay`).expect(403);
    const sources = async (a: request.Agent) => ((await a.get('/ingest/quality').expect(200)).body.sources as { source: string }[]).map((s) => s.source).sort();
    expect(await sources(as['county-hospital'])).toEqual(['county-hospital']);
    expect(await sources(as['city-hospital'])).toEqual(['city-hospital']);
    expect(await sources(as[OFFICE])).toEqual(['city-hospital', 'county-hospital']);
  });

  describe('MLLP peers', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      // Loopback addresses only: 127.0.0.2 relays for the city hospital, 127.0.0.3 for the county; 127.0.0.1 is unlisted.
      const peers = parseMllpPeers('127.0.0.2=city-hospital,127.0.0.3=county-hospital', false);
      server = createMllpServer({ receive: (m, f) => h.ingest.receiveHl7(m, undefined, f), peers, log: silent });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise((r) => server.close(r)));

    /** One message from `localAddress`; the reply, or null when the gateway hung up. */
    const send = (localAddress: string, message: string) => sendFramed(connect({ port, host: '127.0.0.1', localAddress }), message);

    it('closes a connection from an unlisted address at once, without an answer', async () => {
      expect(await send('127.0.0.1', adt('A04', syntheticPatient(710), 'XM-1'))).toBeNull();
      expect(await h.store.db.query(`SELECT 1 FROM ingest_message WHERE control_id = 'XM-1'`)).toHaveLength(0);
    });

    it('answers AR naming MSH-4 when the message is not the peer\'s facility, AA when it is', async () => {
      const wrong = await send('127.0.0.3', adt('A04', syntheticPatient(711), 'XM-2'));
      expect(segment(wrong!, 'MSA').slice(1, 3)).toEqual(['AR', 'XM-2']);
      expect(segment(wrong!, 'ERR')[2]).toBe('MSH^1^4^1');
      const right = await send('127.0.0.2', adt('A04', syntheticPatient(712), 'XM-3'));
      expect(segment(right!, 'MSA').slice(1, 3)).toEqual(['AA', 'XM-3']);
    });
  });
});
