import type { Observation, Patient, Subscription } from '@medplum/fhirtypes';
import { releaseLease } from '../../store/lease';
import { notifyLog } from '../../store/notify-log';
import { pollUntil } from '../support/poll';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';

const patient: Patient = { resourceType: 'Patient', name: [{ family: '测试' }] };
const observation: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'Hb' } };
const subscription: Subscription = { resourceType: 'Subscription', status: 'requested', reason: 'test', criteria: 'Observation?status=final', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook' } };

describe.each(DRIVERS)('the notification outbox on %s', (driver) => {
  let store: TestStore;
  beforeAll(async () => {
    store = await openTestStore(driver);
  });
  afterAll(() => store.close());
  // One store per driver (PGlite takes seconds to open); each test starts from an empty outbox.
  afterEach(async () => {
    await store.db.transaction((tx) => notifyLog.watch(tx, []));
    for (const table of ['notify_outbox', 'notify_dead_letter']) await store.db.query(`DELETE FROM ${table}`);
    await store.db.query('UPDATE notify_state SET owner = NULL, lease_until = NULL');
  });

  const pendingKinds = async (): Promise<string[]> => (await notifyLog.pending(store.db, 100)).map((c) => `${c.type}/${c.version}`);
  /** The outbox once it shows `expected`: a transaction open anywhere on the server (another suite's) holds rows back until it ends. */
  const kindsOnce = (expected: string[]): Promise<string[]> => pollUntil(pendingKinds, (k) => JSON.stringify(k) === JSON.stringify(expected), 10000, (k) => `outbox ${k.join(', ')}`);

  it('captures Subscriptions always and other types only once they are watched, with each version', async () => {
    await store.repo.create(observation);
    const sub = await store.repo.create(subscription);
    expect(await kindsOnce(['Subscription/1'])).toEqual(['Subscription/1']);

    expect(await store.db.transaction((tx) => notifyLog.watch(tx, ['Observation']))).toBe(true);
    expect(await store.db.transaction((tx) => notifyLog.watch(tx, ['Observation']))).toBe(false);
    const obs = await store.repo.create(observation);
    await store.repo.create(patient);
    await store.repo.update({ ...(obs.stored.resource as Observation), status: 'amended' });
    await store.repo.delete('Observation', obs.stored.id);
    await store.repo.update({ ...(sub.stored.resource as Subscription), status: 'off' });
    const all = ['Subscription/1', 'Observation/1', 'Observation/2', 'Observation/3', 'Subscription/2'];
    expect(await kindsOnce(all)).toEqual(all);

    // Unwatched again: Observations are no longer captured, Subscriptions still are.
    await store.db.transaction((tx) => notifyLog.watch(tx, []));
    await store.repo.create(observation);
    await store.repo.create(subscription);
    expect((await kindsOnce([...all, 'Subscription/1'])).slice(5)).toEqual(['Subscription/1']);
  });

  it('keeps a change until it is done, and rows taken in order', async () => {
    await store.db.transaction((tx) => notifyLog.watch(tx, ['Patient']));
    for (let i = 0; i < 5; i++) await store.repo.create(patient);
    await pollUntil(() => notifyLog.pending(store.db, 10), (c) => c.length === 5, 10000, (c) => `${c.length} of 5 in the outbox`);
    const first = await notifyLog.pending(store.db, 3);
    expect(first.map((c) => c.seq)).toEqual([...first.map((c) => c.seq)].sort((a, b) => a - b));
    await notifyLog.done(store.db, first.map((c) => c.seq));
    const rest = await notifyLog.pending(store.db, 10);
    expect(rest).toHaveLength(2);
    expect(rest.every((c) => c.seq > first[2].seq)).toBe(true);
    expect(await notifyLog.backlog(store.db)).toBe(2);
  });

  it('refuses to watch something that is not a resource type (the name goes into DDL)', async () => {
    await expect(store.db.transaction((tx) => notifyLog.watch(tx, ["Patient') OR true; --"]))).rejects.toThrow(/not a resource type/);
    await expect(store.db.transaction((tx) => notifyLog.watch(tx, ['Bogus']))).rejects.toThrow(/not a resource type/);
  });

  it('keeps dead letters per Subscription until they are forgotten', async () => {
    const letter = { subscription: 's1', type: 'Task', id: 't1', version: 2, attempts: 8, error: 'the endpoint answered 503' };
    await notifyLog.deadLetter(store.db, letter);
    await notifyLog.deadLetter(store.db, { ...letter, attempts: 9 });
    await notifyLog.deadLetter(store.db, { ...letter, subscription: 's2' });
    const s1 = await notifyLog.deadLetters(store.db, ['s1']);
    expect(s1).toEqual([expect.objectContaining({ subscription: 's1', type: 'Task', id: 't1', version: 2, attempts: 9, error: 'the endpoint answered 503' })]);
    await notifyLog.forget(store.db, s1);
    expect(await notifyLog.deadLetters(store.db, ['s1', 's2'])).toHaveLength(1);
  });

  it('lets one dispatcher hold the lease at a time', async () => {
    expect(await notifyLog.lease(store.db, 'a', 30)).toBe(true);
    expect(await notifyLog.lease(store.db, 'b', 30)).toBe(false);
    expect(await notifyLog.lease(store.db, 'a', 30)).toBe(true);
    await releaseLease(store.db, 'notify_state', 'a');
    expect(await notifyLog.lease(store.db, 'b', 30)).toBe(true);
  });
});

describe('the notification outbox on postgres, with transactions in flight', () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await openTestStore('postgres');
  });
  afterAll(() => store.close());

  /** A transaction that has written a Patient and stays open until `commit()`. */
  const openWrite = async (): Promise<{ commit(): Promise<void> }> => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let written!: () => void;
    const wrote = new Promise<void>((r) => (written = r));
    const tx = store.repo.transaction(async (repo) => {
      await repo.create(patient);
      written();
      await held;
    });
    await wrote;
    return {
      async commit() {
        release();
        await tx;
      },
    };
  };

  it('does not hand out a change while an earlier transaction could still commit one before it', async () => {
    await store.db.transaction((tx) => notifyLog.watch(tx, ['Patient']));
    const slow = await openWrite();
    await store.repo.create(patient); // commits after the slow one began
    expect(await notifyLog.pending(store.db, 10)).toEqual([]);
    await slow.commit();
    expect(await pollUntil(() => notifyLog.pending(store.db, 10), (c) => c.length === 2, 10000, (c) => `${c.length} of 2 in the outbox`)).toHaveLength(2);
  });

  it('gives up rewriting the trigger while a long write is in flight, instead of holding up every write behind it', async () => {
    const long = await openWrite();
    await expect(store.db.transaction((tx) => notifyLog.watch(tx, ['Observation']))).rejects.toThrow(/lock timeout/);
    await long.commit();
    expect(await store.db.transaction((tx) => notifyLog.watch(tx, ['Observation']))).toBe(true);
  });
});
