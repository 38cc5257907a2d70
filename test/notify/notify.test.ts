/**
 * FHIR Subscriptions end to end with PostgreSQL and a real Redis: facilities subscribe over the
 * API with their tokens, writes are matched by the dispatcher, and the BullMQ delivery worker
 * calls a test rest-hook server (or pings a bound websocket). Covers retry while the receiver
 * is down, the dead letter and its redelivery, access rules, and what the gateway refuses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent, Bundle, CapabilityStatement, Observation, Subscription, Task } from '@medplum/fhirtypes';
import Redis from 'ioredis';
import request from 'supertest';
import WebSocket from 'ws';
import { createApp } from '../../gateway/app';
import type { Auth } from '../../gateway/auth';
import { attachWebsocket, WEBSOCKET_PATH } from '../../gateway/notify/websocket';
import { notifyLog } from '../../store/notify-log';
import { NOTIFICATION_SUBTYPE } from '../../workers/notify/audit';
import { subscriptionGuard } from '../../workers/notify/subscription';
import { attachWorkflows } from '../../workflows/attach';
import { agentFor, testAuth, tokenFor } from '../support/auth';
import { labObservation } from '../support/fixtures';
import { silent } from '../support/ingest';
import { REDIS_URL, restHook, startHookReceiver, subscribe, subscriptionStatus, testNotifications, type HookReceiver } from '../support/notify';
import { pollUntil } from '../support/poll';
import { openTestStore, type TestStore } from '../support/stores';

const FHIR = 'application/fhir+json';
const A = 'city-hospital';
const B = 'county-hospital';
const C = 'community-centre-a';
const GLUCOSE = '2345-7';

const task = (from: string, to: string, note: string): Task => ({
  resourceType: 'Task',
  status: 'requested',
  intent: 'order',
  requester: { reference: `Organization/${from}` },
  owner: { reference: `Organization/${to}` },
  note: [{ text: note }],
});

describe('notifications: FHIR Subscriptions over rest-hook and websocket (PostgreSQL, Redis)', () => {
  let store: TestStore;
  let auth: Auth;
  let app: ReturnType<typeof createApp>;
  let notifications: ReturnType<typeof testNotifications>;
  let hooks: HookReceiver;
  let server: Server;
  let websocket: { close(): Promise<void> };
  const agents: Record<string, request.Agent> = {};

  const read = async (who: string, id: string): Promise<Subscription> => (await agents[who].get(`/fhir/Subscription/${id}`).expect(200)).body as Subscription;
  /** Writes a new resource as `who`: under its own id when it has one. */
  const create = async (who: string, body: { resourceType: string; id?: string }): Promise<string> => {
    const path = `/fhir/${body.resourceType}${body.id ? `/${body.id}` : ''}`;
    const res = await (body.id ? agents[who].put(path) : agents[who].post(path)).set('Content-Type', FHIR).send(body);
    expect([res.status, res.body.issue]).toEqual([201, undefined]);
    return res.body.id as string;
  };
  const channel = (path: string, payload = true): Subscription['channel'] => restHook(hooks, path, payload);

  beforeAll(async () => {
    store = await openTestStore('postgres');
    attachWorkflows(store.repo);
    auth = await testAuth();
    app = createApp({ repo: store.repo, auth, websocket: true });
    for (const f of [A, B, C]) agents[f] = await agentFor(app, f);
    hooks = await startHookReceiver();
    notifications = testNotifications(store);
    server = createServer(app);
    websocket = attachWebsocket(server, { repo: store.repo, verify: auth.verify, subscriber: new Redis(REDIS_URL), prefix: notifications.prefix, log: silent });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await websocket.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await notifications.stop();
    await hooks.close();
    await store.close();
  });
  beforeEach(() => {
    hooks.answer = () => 200;
  });

  it('tells the hospital of a Task it owns, sending the Task with PUT and the channel\'s headers; not of one for another facility', async () => {
    const sub = await subscribe(agents[A], `Task?owner=Organization/${A}`, channel('/hospital'));
    const other = await create(C, task(C, B, 'for the county hospital'));
    const mine = await create(C, task(C, A, '转诊申请'));
    const hook = await hooks.next((h) => h.path === `/hospital/Task/${mine}`, 'the hospital\'s Task');
    expect(hook.method).toBe('PUT');
    expect(hook.headers.authorization).toBe('Bearer hook-secret');
    expect(hook.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(hook.resource).toMatchObject({ resourceType: 'Task', id: mine, status: 'requested', meta: { versionId: '1' } });
    expect(hooks.received.some((h) => h.path.endsWith(other))).toBe(false);
    expect((await read(A, sub)).status).toBe('active');
    // The disclosure is audited: what went to which facility's endpoint, under which Subscription.
    const audited = await pollUntil(
      async () => (await store.repo.search('AuditEvent', [['subtype', `${NOTIFICATION_SUBTYPE.system}|${NOTIFICATION_SUBTYPE.code}`]], {}, 100)).matches.map((m) => m.resource as AuditEvent),
      (events) => events.some((e) => e.entity?.[0]?.what?.reference === `Task/${mine}/_history/1`),
      10000,
      (events) => `${events.length} notification AuditEvents, none for Task/${mine}`,
    );
    const event = audited.find((e) => e.entity?.[0]?.what?.reference === `Task/${mine}/_history/1`)!;
    expect(event.type.code).toBe('110106');
    expect(event.agent.find((a) => a.type?.coding?.[0]?.code === 'PROV')?.who?.reference).toBe(`Organization/${A}`);
    expect(event.entity?.find((e) => e.description)?.description).toBe(`Subscription/${sub} over rest-hook, with the resource`);
  });

  it('sends an empty POST to a rest-hook without payload, and tells again when the resource changes', async () => {
    await subscribe(agents[C], `Observation?code=http://loinc.org|${GLUCOSE}`, channel('/centre-empty', false));
    const first = hooks.received.length;
    await create(A, labObservation('n-glu-1', 'p-n1', GLUCOSE, 6.1, 'mmol/L', '2026-12-01'));
    const hook = await hooks.next((h) => h.path === '/centre-empty', 'the empty notification');
    expect([hook.method, hook.resource]).toEqual(['POST', undefined]);
    const obs = (await agents[A].get('/fhir/Observation/n-glu-1').expect(200)).body as Observation;
    await agents[A].put('/fhir/Observation/n-glu-1').set('Content-Type', FHIR).send({ ...obs, valueQuantity: { ...obs.valueQuantity, value: 6.3 } }).expect(200);
    await pollUntil(async () => hooks.received.slice(first).filter((h) => h.path === '/centre-empty').length, (n) => n === 2, 15000, (n) => `${n} empty notifications`);
  });

  it('retries while the receiver is down, shows the failure on the Subscription, and is active again once delivered', async () => {
    const sub = await subscribe(agents[C], `Task?owner=Organization/${C}&status=requested`, channel('/flaky'));
    let refused = 0;
    hooks.answer = (h) => (h.path.startsWith('/flaky') && refused++ < 2 ? 503 : 200);
    const id = await create(A, task(A, C, '下转'));
    const hook = await hooks.next((h) => h.path === `/flaky/Task/${id}`, 'the retried notification');
    expect(refused).toBe(3); // two refusals, then the third attempt was taken
    expect((hook.resource as Task).id).toBe(id);
    await subscriptionStatus(agents[C], sub, 'active');
    const history = (await agents[C].get(`/fhir/Subscription/${sub}/_history`).expect(200)).body as Bundle;
    const errors = (history.entry ?? []).map((e) => e.resource as Subscription).filter((s) => s.status === 'error');
    expect(errors.map((s) => s.error)).toEqual([`notifying Task/${id}/_history/1 failed (the endpoint answered 503); retrying`]);
  });

  it('after the last attempt keeps a dead letter, says so on the Subscription, and sends it when the subscriber requests again', async () => {
    const sub = await subscribe(agents[B], `Task?owner=Organization/${B}`, channel('/down'));
    hooks.answer = (h) => (h.path.startsWith('/down') ? 500 : 200);
    const id = await create(C, task(C, B, 'while the county hospital is down'));
    const failed = await subscriptionStatus(agents[B], sub, 'error', /gave up/);
    expect(failed.error).toBe(`gave up notifying Task/${id}/_history/1 after 3 attempts (the endpoint answered 500); set status to requested to have it sent again`);
    expect(await notifyLog.deadLetters(store.db, [sub])).toEqual([expect.objectContaining({ type: 'Task', id, version: 1, attempts: 3 })]);

    hooks.answer = () => 200;
    await agents[B].put(`/fhir/Subscription/${sub}`).set('Content-Type', FHIR).send({ ...failed, status: 'requested' }).expect(200);
    const hook = await hooks.next((h) => h.path === `/down/Task/${id}`, 'the redelivered dead letter');
    expect((hook.resource as Task).note?.[0]?.text).toBe('while the county hospital is down');
    await subscriptionStatus(agents[B], sub, 'active');
    // Forgotten once queued again (the dispatcher queues first, so a crash between sends it twice, never not at all).
    await pollUntil(() => notifyLog.deadLetters(store.db, [sub]), (l) => l.length === 0, 5000, (l) => `${l.length} dead letters left`);
  });

  it('notifies only of what the subscriber may read: a sensitive result stays with its author', async () => {
    const code = '4548-4'; // HbA1c: no other test writes it
    await subscribe(agents[C], `Observation?code=http://loinc.org|${code}`, channel('/centre-hba1c'));
    await create(A, labObservation('s-hba1c', 'p-s1', code, 9.9, '%', '2026-12-01', { meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIV' }] } }));
    await create(A, labObservation('o-hba1c', 'p-s1', code, 7.1, '%', '2026-12-01'));
    await hooks.next((h) => h.path === '/centre-hba1c/Observation/o-hba1c', 'the shareable result');
    // Both were matched in write order; give the worker as long again as the second took.
    await new Promise((r) => setTimeout(r, 500));
    expect(hooks.received.filter((h) => h.path.startsWith('/centre-hba1c')).map((h) => h.path)).toEqual(['/centre-hba1c/Observation/o-hba1c']);
    // Audited under the patient, for the patient's access log; the withheld one left no trace.
    const byPatient = await pollUntil(() => store.repo.search('AuditEvent', [['patient', 'Patient/p-s1']]), (r) => r.matches.length > 0, 10000, () => 'no AuditEvent for Patient/p-s1');
    expect(byPatient.matches.map((m) => (m.resource as AuditEvent).entity?.[0]?.what?.reference)).toEqual(['Observation/o-hba1c/_history/1']);
  });

  it('stops when the subscriber turns it off', async () => {
    const code = '2093-3';
    const off = await subscribe(agents[C], `Observation?code=http://loinc.org|${code}`, channel('/off'));
    const on = await subscribe(agents[B], `Observation?code=http://loinc.org|${code}`, channel('/on'));
    const current = await read(C, off);
    await agents[C].put(`/fhir/Subscription/${off}`).set('Content-Type', FHIR).send({ ...current, status: 'off' }).expect(200);
    await create(A, labObservation('chol-1', 'p-o1', code, 5.2, 'mmol/L', '2026-12-01'));
    await hooks.next((h) => h.path === '/on/Observation/chol-1', 'the subscription still on');
    await new Promise((r) => setTimeout(r, 300));
    expect(hooks.received.some((h) => h.path.startsWith('/off'))).toBe(false);
    expect((await read(B, on)).status).toBe('active');
  });

  it('refuses, naming the element, a Subscription it cannot serve or one that sets its own status', async () => {
    const base = { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Task?status=requested', channel: { type: 'rest-hook', endpoint: `${hooks.url}/x` } };
    const cases: [object, RegExp, string][] = [
      [{ criteria: 'Nonsense?x=1' }, /Unknown resource type/, 'Subscription.criteria'],
      [{ criteria: 'Task?colour=blue' }, /colour/, 'Subscription.criteria'],
      [{ criteria: 'Task?status=requested&_include=Task:owner' }, /_include/, 'Subscription.criteria'],
      [{ channel: { type: 'email', endpoint: 'mailto:x@example.org' } }, /not supported/, 'Subscription.channel.type'],
      [{ channel: { type: 'rest-hook', endpoint: 'ftp://example.org/x' } }, /http/, 'Subscription.channel.endpoint'],
      [{ channel: { type: 'rest-hook', endpoint: `${hooks.url}/x`, header: ['no colon'] } }, /Name: value/, 'Subscription.channel.header[0]'],
      [{ status: 'active' }, /set by the gateway/, 'Subscription.status'],
    ];
    for (const [change, message, expression] of cases) {
      const res = await agents[C].post('/fhir/Subscription').set('Content-Type', FHIR).send({ ...base, ...change });
      expect([res.status, res.body.issue?.[0]?.expression, message.test(res.body.issue?.[0]?.diagnostics)]).toEqual([422, [expression], true]);
    }
  });

  it('lists the websocket channel and how Subscriptions behave in the CapabilityStatement', async () => {
    const cs = (await agents[C].get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    expect(cs.rest?.[0].extension).toEqual([{ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUri: expect.stringMatching(/^ws:\/\/.*\/fhir\/websocket$/) }]);
    expect(cs.rest?.[0].resource?.find((r) => r.type === 'Subscription')?.documentation).toMatch(/dead letter/);
  });

  it('calls only the endpoints the operator lists, and none when it lists none', () => {
    const sub = { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Task?status=requested', channel: { type: 'rest-hook', endpoint: 'http://10.0.0.9/admin' } } as Subscription;
    const refused = (endpoints: string[]): string | undefined => {
      try {
        subscriptionGuard(endpoints).check({ id: 's', next: sub });
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(refused(['https://his.city-hospital.example/'])).toMatch(/not one this gateway calls/);
    expect(refused([])).toMatch(/no rest-hook endpoint/);
    expect(refused(['http://10.0.0.9/'])).toBeUndefined();
    expect(subscriptionGuard([]).check({ id: 's', next: { ...sub, channel: { type: 'websocket' } } })).toBeUndefined();
  });

  it('pings a bound websocket; binds only the facility\'s own websocket Subscriptions, and only with a token', async () => {
    const sub = await subscribe(agents[C], `Task?owner=Organization/${C}&status=requested`, { type: 'websocket' });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}${WEBSOCKET_PATH}`;
    const open = async (facility?: string): Promise<{ ws: WebSocket; said: string[]; next(prefix: string): Promise<string> }> => {
      const ws = new WebSocket(url, facility ? { headers: { authorization: `Bearer ${await tokenFor(app, facility)}` } } : {});
      const said: string[] = [];
      ws.on('message', (m) => said.push(m.toString()));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return { ws, said, next: (prefix) => pollUntil(async () => said.find((s) => s.startsWith(prefix)), (s) => s !== undefined, 15000, () => `no "${prefix}" on the socket; heard ${said.join(' | ')}`) as Promise<string> };
    };
    await expect(open()).rejects.toThrow(/401/);

    const stranger = await open(A);
    stranger.ws.send(`bind ${sub}`);
    expect(await stranger.next('error')).toBe(`error ${sub} it belongs to ${C}`);
    stranger.ws.close();

    const centre = await open(C);
    centre.ws.send(`bind ${sub}`);
    expect(await centre.next('bound')).toBe(`bound ${sub}`);
    await create(A, task(A, C, 'websocket'));
    expect(await centre.next('ping')).toBe(`ping ${sub}`);
    centre.ws.close();
  });
});

describe('notifications when the dispatching process dies (PostgreSQL, Redis)', () => {
  it('a standby process takes the lease once the dead holder\'s runs out, and delivers what was written meanwhile, once', async () => {
    const store = await openTestStore('postgres');
    attachWorkflows(store.repo);
    const app = createApp({ repo: store.repo, auth: await testAuth() });
    const [hospital, centre] = [await agentFor(app, A), await agentFor(app, C)];
    const hooks = await startHookReceiver();
    const first = testNotifications(store);
    let standby: ReturnType<typeof testNotifications> | undefined;
    try {
      await subscribe(hospital, `Task?owner=Organization/${A}`, restHook(hooks, '/hospital'));
      // Started while the first holds the lease: it stands by.
      standby = testNotifications(store);
      await first.stop();
      // As if the first had been killed while holding the lease: a holder that will never renew.
      await store.db.query(`UPDATE notify_state SET owner = 'killed-gateway', lease_until = now() + interval '1 second'`);
      const res = await centre.post('/fhir/Task').set('Content-Type', FHIR).send(task(C, A, 'written while no one dispatched'));
      expect(res.status).toBe(201);
      const id = res.body.id as string;
      await hooks.next((h) => h.path === `/hospital/Task/${id}`, 'the Task written during the hand-over');
      const [state] = await store.db.query<{ owner: string }>('SELECT owner FROM notify_state');
      expect(state.owner).not.toBe('killed-gateway');
      await new Promise((r) => setTimeout(r, 500));
      expect(hooks.received.filter((h) => h.path === `/hospital/Task/${id}`)).toHaveLength(1);
      expect(await notifyLog.pending(store.db, 10)).toEqual([]);
    } finally {
      await standby?.stop();
      await hooks.close();
      await store.close();
    }
  }, 60000);
});
