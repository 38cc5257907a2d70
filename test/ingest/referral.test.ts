/** A REF^I12 posted to /ingest/hl7v2 ends as the referral pair in the store; a REF^I14 cancels it (PostgreSQL, Redis). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type request from 'supertest';
import type { ServiceRequest, Task } from '@medplum/fhirtypes';
import { resourceId } from '../../mappers/ids';
import { directionOf } from '../../profiles/referral';
import { agentFor } from '../support/auth';
import { openIngestHarness, type IngestHarness } from '../support/ingest';

const DIR = resolve(__dirname, '../../fixtures/messages/city-hospital');
const HL7 = 'application/hl7-v2';
const srId = resourceId('city-hospital', 'referral', 'ZZ202511100001');
const taskId = resourceId('city-hospital', 'referral-task', 'ZZ202511100001');

describe('REF^I12 through ingest', () => {
  let h: IngestHarness;
  let city: request.Agent;
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    h.startWorker();
    city = await agentFor(h.app, 'city-hospital');
  });
  afterAll(() => h.close());

  async function send(file: string): Promise<void> {
    const res = await city.post('/ingest/hl7v2').set('Content-Type', HL7).send(readFileSync(resolve(DIR, file)));
    expect(res.status).toBe(200);
    const [done] = await h.waitForFinished([res.headers['x-message-id']]);
    expect([done.state, done.outcome]).toEqual(['done', null]);
  }

  it('stores the ServiceRequest and a requested Task owned by the receiving facility, then cancels it', async () => {
    await send('ref-i12-wang-xiaoming-down.hl7');
    const sr = (await city.get(`/fhir/ServiceRequest/${srId}`).expect(200)).body as ServiceRequest;
    expect([directionOf(sr.category), sr.status, sr.performer]).toEqual(['down', 'active', [{ reference: 'Organization/community-centre-a' }]]);
    const task = (await city.get(`/fhir/Task/${taskId}`).expect(200)).body as Task;
    expect([task.status, task.focus, task.owner]).toEqual(['requested', { reference: `ServiceRequest/${srId}` }, { reference: 'Organization/community-centre-a' }]);
    for (const ref of sr.supportingInfo!) await city.get(`/fhir/${ref.reference}`).expect(200);

    // Resent: still one referral, and the Task's state is not reset (create-only).
    await send('ref-i12-wang-xiaoming-down.hl7');
    const search = await city.get(`/fhir/Task?focus=ServiceRequest/${srId}`).expect(200);
    expect(search.body.entry).toHaveLength(1);

    await send('ref-i14-wang-xiaoming-cancel.hl7');
    expect(((await city.get(`/fhir/Task/${taskId}`).expect(200)).body as Task).status).toBe('cancelled');
    expect(((await city.get(`/fhir/ServiceRequest/${srId}`).expect(200)).body as ServiceRequest).status).toBe('revoked');
  });
});

describe('the county hospital\'s 转诊单 through ingest', () => {
  let h: IngestHarness;
  let county: request.Agent;
  const form = JSON.parse(readFileSync(resolve(__dirname, '../../fixtures/messages/county-hospital/zzd-zhao-wei-down.json'), 'utf8')) as Record<string, unknown>;
  const task = resourceId('county-hospital', 'referral-task', form.zzdh as string);
  beforeAll(async () => {
    h = await openIngestHarness('postgres');
    h.startWorker();
    county = await agentFor(h.app, 'county-hospital');
  });
  afterAll(() => h.close());

  async function send(body: object): Promise<void> {
    const res = await county.post('/ingest/county-hospital').set('Content-Type', 'application/json').send(body);
    expect([res.status, res.body.failed]).toEqual([202, 0]);
    const [done] = await h.waitForFinished(res.body.messages.map((m: { id: string }) => m.id));
    expect([done.state, done.outcome]).toEqual(['done', null]);
  }

  it('a form sent again with zt 撤销 cancels the referral it made', async () => {
    await send(form);
    expect(((await county.get(`/fhir/Task/${task}`).expect(200)).body as Task).status).toBe('requested');
    await send({ ...form, zt: '撤销' });
    const cancelled = (await county.get(`/fhir/Task/${task}`).expect(200)).body as Task;
    const sr = (await county.get(`/fhir/${cancelled.focus!.reference}`).expect(200)).body as ServiceRequest;
    expect([cancelled.status, sr.status]).toEqual(['cancelled', 'revoked']);
  });
});
