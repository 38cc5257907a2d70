import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Condition, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { register } from 'prom-client';
import { createApp } from '../../gateway/app';
import { FhirError } from '../../store/errors';
import { forwardLog } from '../../store/forward-log';
import { Forwarder } from '../../workers/forward';
import { demoClient, OFFICE, testAuth } from '../support/auth';
import { silent } from '../support/ingest';
import { pollUntil } from '../support/poll';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';

/** The upstream platform: a second gateway, with its own store and its own token endpoint. */
async function listen(app: ReturnType<typeof createApp>, port = 0): Promise<Server> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

const close = (s: Server): Promise<void> =>
  new Promise((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });

const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
  await pollUntil(check, (ok) => ok, 20000, () => `still waiting for ${what}`);
};

/** A resource as the upstream should hold it: the same content, its own versions. */
const content = (r: Resource): unknown => {
  const { meta, ...rest } = r;
  const { versionId: _v, lastUpdated: _l, ...kept } = meta ?? {};
  return { ...rest, meta: kept };
};

const failures = async (): Promise<number> => (await register.getSingleMetric('forward_failures_total')!.get()).values[0]?.value ?? 0;

describe.each(DRIVERS)('forwarding every change upstream, from %s to a second gateway', (driver) => {
  let source: TestStore;
  let upstream: TestStore;
  let app: ReturnType<typeof createApp>;
  let server: Server;
  let port: number;
  let forwarder: Forwarder;
  beforeAll(async () => {
    source = await openTestStore(driver);
    upstream = await openTestStore('pglite');
    app = createApp({ repo: upstream.repo, auth: await testAuth() });
    server = await listen(app);
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await forwarder?.stop();
    await close(server);
    await source.close();
    await upstream.close();
  });

  const upstreamRead = async (type: string, id: string): Promise<Resource | 'gone' | 'absent'> => {
    try {
      return (await upstream.repo.read(type, id)).resource;
    } catch (err) {
      if (err instanceof FhirError && err.status === 410) return 'gone';
      if (err instanceof FhirError && err.status === 404) return 'absent';
      throw err;
    }
  };
  const drained = async (): Promise<boolean> => (await forwarder.backlog()).waiting === 0;

  it('sends the record as it stood when forwarding was turned on, then every change in order', async () => {
    const patient: Patient = { resourceType: 'Patient', id: 'fw-p1', name: [{ family: '转发', given: ['甲'] }], gender: 'female' };
    const obs: Observation = { resourceType: 'Observation', id: 'fw-o1', status: 'final', code: { text: '体重' }, subject: { reference: 'Patient/fw-p1' }, valueQuantity: { value: 60, unit: 'kg' } };
    await source.repo.update(patient);
    await source.repo.update(obs);

    const office = demoClient(OFFICE);
    forwarder = new Forwarder(source.db, { url: `http://127.0.0.1:${port}/fhir`, tokenUrl: `http://127.0.0.1:${port}/auth/token`, clientId: office.clientId, clientSecret: office.clientSecret }, silent, {
      batch: 3,
      idleMs: 20,
      retryMs: 50,
      maxRetryMs: 200,
    });
    await forwarder.start();
    await until('the baseline to reach the upstream', drained);
    expect(content((await upstreamRead('Patient', 'fw-p1')) as Resource)).toEqual(content((await source.repo.read('Patient', 'fw-p1')).resource));
    expect(content((await upstreamRead('Observation', 'fw-o1')) as Resource)).toEqual(content((await source.repo.read('Observation', 'fw-o1')).resource));

    // Five versions of one Patient in a row, then a deletion: the upstream ends where the source is.
    for (let i = 1; i <= 5; i++) await source.repo.update({ ...patient, telecom: [{ system: 'phone', value: `1700000000${i}` }] });
    await source.repo.delete('Observation', 'fw-o1');
    await until('the changes to reach the upstream', drained);
    const upPatient = (await upstreamRead('Patient', 'fw-p1')) as Patient;
    expect(upPatient.telecom).toEqual([{ system: 'phone', value: '17000000005' }]);
    // In order, each version once: 1 (baseline) + 5 updates.
    expect(upPatient.meta?.versionId).toBe('6');
    expect(await upstreamRead('Observation', 'fw-o1')).toBe('gone');
  });

  it('keeps what the upstream did not take, retries with backoff, and delivers once it is back', async () => {
    const before = await failures();
    await close(server);
    const condition: Condition = { resourceType: 'Condition', id: 'fw-c1', subject: { reference: 'Patient/fw-p1' }, code: { text: '高血压' } };
    await source.repo.update(condition);
    await until('failed attempts', async () => (await failures()) >= before + 2);
    const backlog = await forwarder.backlog();
    expect(backlog.waiting).toBe(1);
    expect(backlog.lagSeconds).toBeGreaterThan(0);
    expect(await forwardLog.pending(source.db, 10)).toEqual([expect.objectContaining({ type: 'Condition', id: 'fw-c1', version: 1 })]);

    server = await listen(app, port);
    await until('the change to reach the upstream after it came back', drained);
    expect(content((await upstreamRead('Condition', 'fw-c1')) as Resource)).toEqual(content((await source.repo.read('Condition', 'fw-c1')).resource));
  });

  it('turning forwarding on again for the same upstream does not resend the whole record', async () => {
    expect(await source.db.transaction((tx) => forwardLog.enable(tx, `http://127.0.0.1:${port}/fhir`))).toBe(false);
    expect((await forwardLog.backlog(source.db)).waiting).toBe(0);
  });

  it('turned off, it captures nothing: its triggers are gone', async () => {
    await forwarder.stop();
    expect(await source.db.transaction((tx) => forwardLog.disable(tx))).toBe(true);
    await source.repo.update({ resourceType: 'Patient', id: 'fw-p2', gender: 'male' });
    expect((await forwardLog.backlog(source.db)).waiting).toBe(0);
    const triggers = await source.db.query(`SELECT tgname FROM pg_trigger WHERE tgname LIKE 'forward_%'`);
    expect(triggers).toEqual([]);
    expect(await source.db.transaction((tx) => forwardLog.disable(tx))).toBe(false);
  });
});
