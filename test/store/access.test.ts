import type { Bundle, Observation, Patient, Practitioner, Resource } from '@medplum/fhirtypes';
import { AUTHOR_TAG_SYSTEM } from '../../store/access';
import { accessLabels, optOutOf, sensitiveCodeSet } from '../../store/access-labels';
import { extractIndexRows } from '../../store/extract';
import { processBundle } from '../../store/bundle';
import { migrate } from '../../store/db/migrations';
import { FhirError } from '../../store/errors';
import type { Repository } from '../../store/repository';
import type { PatientIndex } from '../../mpi';
import { labObservation, transaction } from '../support/fixtures';
import { openIndexedStore } from '../support/mpi';
import { facilityPatient, idNumber, mrnSystem, optOutConsent } from '../support/people';
import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { rejection } from '../support/thrown';

const CITY = 'city-hospital';
const COUNTY = 'county-hospital';
const CENTRE = 'community-centre-a';
const MRN_SYSTEMS = Object.fromEntries([CITY, COUNTY, CENTRE].map((f) => [mrnSystem(f), f]));
const HIV = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'HIV' };

const authorTags = (r: Resource): string[] => (r.meta?.tag ?? []).filter((t) => t.system === AUTHOR_TAG_SYSTEM).map((t) => t.code!);
const refs = (list: { reference: string }[]): string[] => list.map((s) => s.reference).sort();

async function status(p: Promise<unknown>): Promise<number> {
  const err = await rejection(() => p);
  if (!(err instanceof FhirError)) throw err;
  return err.status;
}

describe.each(DRIVERS)('access rules on %s', (driver) => {
  let store: TestStore & { mpi: PatientIndex };
  let repo: Repository;
  let city: Repository;
  let county: Repository;
  let centre: Repository;
  let golden: string;
  beforeAll(async () => {
    store = await openIndexedStore(driver, { access: { mrnSystems: MRN_SYSTEMS } });
    repo = store.repo;
    city = repo.withAccess({ facility: CITY });
    county = repo.withAccess({ facility: COUNTY });
    centre = repo.withAccess({ facility: CENTRE });
    // One person registered at the city hospital and at the county hospital (linked by the
    // index), and somebody else at the community centre.
    const person = { name: '赵丽华', gender: 'female' as const, birthDate: '1966-08-19', idNumber: idNumber('1966-08-19', 42) };
    await city.update(facilityPatient('c-1', person, CITY));
    await county.update(facilityPatient('k-1', person, COUNTY));
    await centre.update(facilityPatient('a-1', { name: '孙强', gender: 'male', birthDate: '1980-02-02' }, CENTRE));
    golden = (await store.mpi.person(repo.executor, 'c-1'))!.goldenId;
    await city.update(labObservation('o-c', 'c-1', '718-7', 13, 'g/dL', '2024-03-01'));
    await county.update(labObservation('o-k', 'k-1', '718-7', 12, 'g/dL', '2024-04-01'));
    await centre.update(labObservation('o-a', 'a-1', '718-7', 14, 'g/dL', '2024-05-01'));
  });
  afterAll(() => store.close());

  const author = async (type: string, id: string): Promise<string | null> =>
    (await repo.executor.query<{ author: string | null }>('SELECT author FROM resource WHERE type = $1 AND id = $2', [type, id]))[0].author;

  describe('authorship', () => {
    it('stamps the writing facility and replaces an author tag the client sent', async () => {
      const claimed = labObservation('o-claim', 'a-1', '718-7', 11, 'g/dL', '2024-01-01', { meta: { tag: [{ system: AUTHOR_TAG_SYSTEM, code: CITY }, { system: 'urn:x', code: 'kept' }] } });
      const { stored } = await centre.update(claimed);
      expect(authorTags(stored.resource)).toEqual([CENTRE]);
      expect(stored.resource.meta?.tag).toContainEqual({ system: 'urn:x', code: 'kept' });
      expect(await author('Observation', 'o-claim')).toBe(CENTRE);
    });

    it('keeps the author tag a resource carries when written without a context, else none', async () => {
      await repo.update(labObservation('o-ingest', 'a-1', '718-7', 11, 'g/dL', '2024-01-01', { meta: { tag: [{ system: AUTHOR_TAG_SYSTEM, code: CENTRE }] } }));
      expect(await author('Observation', 'o-ingest')).toBe(CENTRE);
      await repo.update(labObservation('o-untagged', 'a-1', '718-7', 11, 'g/dL', '2024-01-01'));
      expect(await author('Observation', 'o-untagged')).toBeNull();
    });
  });

  describe('write rules', () => {
    it('refuses an update or delete of another facility’s resource, naming it, and changes nothing', async () => {
      const err = await rejection(() => county.update({ ...labObservation('o-c', 'c-1', '718-7', 99, 'g/dL', '2024-03-01') }));
      expect(err).toBeInstanceOf(FhirError);
      expect((err as FhirError).status).toBe(403);
      expect((err as FhirError).outcome.issue[0]).toMatchObject({ code: 'forbidden', diagnostics: expect.stringContaining('Observation/o-c') });
      expect(await status(county.delete('Observation', 'o-c'))).toBe(403);
      const stored = await repo.read('Observation', 'o-c');
      expect(stored.versionId).toBe('1');
      expect((stored.resource as Observation).valueQuantity?.value).toBe(13);
      // Its own author may.
      expect((await city.update(labObservation('o-c', 'c-1', '718-7', 13.5, 'g/dL', '2024-03-01'))).stored.versionId).toBe('2');
    });

    it('refuses a resource without a facility author (the consortium’s) to a facility', async () => {
      expect(await status(centre.update(labObservation('o-untagged', 'a-1', '718-7', 1, 'g/dL', '2024-01-01')))).toBe(403);
    });

    it('refuses a Patient carrying another facility’s MRN, naming the identifier', async () => {
      const err = (await rejection(() => county.update(facilityPatient('k-fake', { name: '钱某' }, CITY)))) as FhirError;
      expect(err.status).toBe(403);
      expect(err.outcome.issue[0].expression).toEqual(['Patient.identifier[0]']);
      expect(await status(repo.read('Patient', 'k-fake'))).toBe(404);
    });

    it('refuses writes to a golden record', async () => {
      const current = (await repo.read('Patient', golden)).resource as Patient;
      expect(await status(city.update({ ...current, active: false }))).toBe(403);
      expect(await status(city.delete('Patient', golden))).toBe(403);
    });

    it('does not hold the patient index’s own writes to the facility that caused them', async () => {
      // The office's operations run in the caller's transaction; the golden records they rewrite stay the consortium's.
      await city.transaction((tx) => store.mpi.unlink(tx, 'c-1', 'office-1'));
      const own = (await store.mpi.person(repo.executor, 'c-1'))!.goldenId;
      expect(own).not.toBe(golden);
      expect(await author('Patient', own)).toBeNull();
      await city.transaction((tx) => store.mpi.link(tx, 'c-1', golden, 'office-1'));
      expect((await store.mpi.person(repo.executor, 'c-1'))!.goldenId).toBe(golden);
      expect(await author('Patient', golden)).toBeNull();
      const audits = await repo.search('AuditEvent', [['entity', 'Patient/c-1']]);
      expect(audits.matches.length).toBeGreaterThanOrEqual(2);
      expect(await Promise.all(audits.matches.map((a) => author('AuditEvent', a.id)))).toEqual(audits.matches.map(() => null));
    });

    it('holds inside a transaction Bundle, and the whole transaction rolls back', async () => {
      const bundle: Bundle = transaction([labObservation('o-k-new', 'k-1', '718-7', 10, 'g/dL', '2024-06-01'), labObservation('o-c', 'c-1', '718-7', 1, 'g/dL', '2024-03-01')]);
      const err = (await rejection(() => processBundle(county, bundle))) as FhirError;
      expect(err.status).toBe(403);
      expect(err.message).toContain('Observation/o-c');
      expect(await status(repo.read('Observation', 'o-k-new'))).toBe(404);
      const mrnBundle = transaction([labObservation('o-k-new', 'k-1', '718-7', 10, 'g/dL', '2024-06-01'), facilityPatient('k-2', { name: '钱某' }, CITY)]);
      expect(await status(processBundle(county, mrnBundle))).toBe(403);
      expect(await status(repo.read('Observation', 'o-k-new'))).toBe(404);
    });
  });

  describe('an opted-out person', () => {
    beforeAll(async () => {
      // The person withdraws sharing at the county hospital; the city registration is linked.
      await county.update(optOutConsent('consent-k', 'k-1'));
      await county.update({ resourceType: 'Encounter', id: 'e-k', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/k-1' } });
    });

    it('is hidden from other facilities on read and vread, through the linked registration too', async () => {
      expect(await status(city.read('Observation', 'o-k'))).toBe(404);
      expect(await status(city.vread('Observation', 'o-k', '1'))).toBe(404);
      expect(await status(city.read('Patient', 'k-1'))).toBe(404);
      expect(await status(county.read('Observation', 'o-c'))).toBe(404);
      expect(await status(centre.read('Patient', 'c-1'))).toBe(404);
      expect(await status(centre.read('Patient', golden))).toBe(404);
      expect(await status(centre.read('Consent', 'consent-k'))).toBe(404);
      // A transaction-bound copy keeps the context.
      expect(await status(centre.transaction((tx) => tx.read('Observation', 'o-k')))).toBe(404);
    });

    it('still shows each facility its own records, and everyone else’s unrelated ones', async () => {
      expect((await city.read('Observation', 'o-c')).id).toBe('o-c');
      expect((await county.read('Observation', 'o-k')).id).toBe('o-k');
      expect((await county.read('Consent', 'consent-k')).id).toBe('consent-k');
      expect((await city.read('Observation', 'o-a')).id).toBe('o-a');
    });

    it('leaves nothing in search matches, counts or _revinclude', async () => {
      const all = await centre.search('Observation', [['code', '718-7'], ['_total', 'accurate']]);
      expect(refs(all.matches)).not.toEqual(expect.arrayContaining(['Observation/o-c']));
      expect(refs(all.matches)).not.toContain('Observation/o-k');
      expect(refs(all.matches)).toContain('Observation/o-a');
      expect(all.total).toBe(all.matches.length);
      const unrestricted = await repo.search('Observation', [['code', '718-7'], ['_summary', 'count']]);
      const counted = await centre.search('Observation', [['code', '718-7'], ['_summary', 'count']]);
      expect(counted.total).toBe(unrestricted.total! - 2);
      expect((await centre.search('Observation', [['patient', 'Patient/k-1'], ['_summary', 'count']])).total).toBe(0);
      const rev = await city.search('Patient', [['_id', 'c-1,k-1'], ['_revinclude', 'Observation:subject'], ['_revinclude', 'Encounter:subject']]);
      expect(refs(rev.matches)).toEqual(['Patient/c-1']);
      expect(refs(rev.included)).toEqual(['Observation/o-c']);
      const own = await county.search('Patient', [['_id', 'c-1,k-1'], ['_revinclude', 'Observation:subject'], ['_revinclude', 'Encounter:subject']]);
      expect(refs(own.included)).toEqual(['Encounter/e-k', 'Observation/o-k']);
    });

    it('leaves nothing in _include', async () => {
      const inc = await county.search('Encounter', [['_id', 'e-k'], ['_include', 'Encounter:subject']]);
      expect(refs(inc.included)).toEqual(['Patient/k-1']);
      // The centre's own record pointing at the person's registration does not pull it in.
      await centre.update(labObservation('o-a-ref', 'k-1', '718-7', 14, 'g/dL', '2024-05-01'));
      const pulled = await centre.search('Observation', [['_id', 'o-a-ref'], ['_include', 'Observation:subject']]);
      expect(refs(pulled.matches)).toEqual(['Observation/o-a-ref']);
      expect(pulled.included).toEqual([]);
      expect(refs((await repo.search('Observation', [['_id', 'o-a-ref'], ['_include', 'Observation:subject']])).included)).toEqual(['Patient/k-1']);
    });

    it('leaves nothing in history (instance, type, system)', async () => {
      expect(await status(city.history({ type: 'Observation', id: 'o-k' }, { count: 10 }))).toBe(404);
      const type = await centre.history({ type: 'Observation' }, { count: 1000 });
      expect(type.entries.map((e) => e.reference)).not.toContain('Observation/o-k');
      expect(type.entries.map((e) => e.reference)).not.toContain('Observation/o-c');
      const system = await centre.history({}, { count: 1000 });
      const seen = new Set(system.entries.map((e) => e.reference));
      for (const hidden of ['Observation/o-k', 'Observation/o-c', 'Patient/c-1', 'Patient/k-1', `Patient/${golden}`, 'Consent/consent-k']) expect(seen.has(hidden)).toBe(false);
      expect(seen.has('Observation/o-a')).toBe(true);
      expect((await city.history({ type: 'Observation', id: 'o-c' }, { count: 10 })).entries).toHaveLength(2);
    });

    it('leaves only the reader’s own records in $everything', async () => {
      const ids = [golden, 'c-1', 'k-1'];
      expect(refs((await county.everything(ids, { count: 100 })).entries)).toEqual(['Consent/consent-k', 'Encounter/e-k', 'Observation/o-k', 'Patient/k-1']);
      expect(refs((await centre.everything(ids, { count: 100 })).entries)).toEqual(['Observation/o-a-ref']);
      // Unbound, everything is there (the index's AuditEvents of the link changes aside).
      expect(refs((await repo.everything(ids, { count: 100 })).entries).filter((r) => !r.startsWith('AuditEvent/'))).toEqual(
        ['Consent/consent-k', 'Encounter/e-k', 'Observation/o-a-ref', 'Observation/o-c', 'Observation/o-k', `Patient/${golden}`, 'Patient/c-1', 'Patient/k-1'].sort(),
      );
    });

    it('refuses a write to a record the writer cannot read without naming who wrote it', async () => {
      const hidden = await rejection(() => city.update(labObservation('o-k', 'k-1', '718-7', 1, 'g/dL', '2024-04-01')));
      expect([(hidden as FhirError).status, (hidden as FhirError).message]).toEqual([403, `Observation/o-k cannot be written by ${CITY}`]);
      const seen = await rejection(() => city.update(labObservation('o-a', 'a-1', '718-7', 1, 'g/dL', '2024-05-01')));
      expect([(seen as FhirError).status, (seen as FhirError).message]).toEqual([403, expect.stringContaining(`written by ${CENTRE}`)]);
    });

    it('is invisible to existence checks and conditional matches', async () => {
      expect([...(await centre.existing(['Observation/o-k', 'Observation/o-a']))]).toEqual(['Observation/o-a']);
      expect((await centre.search('Observation', [['_id', 'o-k']])).matches).toEqual([]);
      const created = await centre.create(labObservation('ignored', 'a-1', '718-7', 1, 'g/dL', '2024-01-01'), { ifNoneExist: [['_id', 'o-k']] });
      expect(created.status).toBe(201);
      expect(created.stored.id).not.toBe('o-k');
    });

    it('follows the patient index: an unlinked registration is shared again, a relinked one hidden', async () => {
      await repo.transaction((tx) => store.mpi.unlink(tx, 'c-1', 'office-1'));
      expect((await centre.read('Observation', 'o-c')).id).toBe('o-c');
      expect(await status(centre.read('Observation', 'o-k'))).toBe(404);
      await repo.transaction((tx) => store.mpi.link(tx, 'c-1', 'k-1', 'office-1'));
      expect(await status(centre.read('Observation', 'o-c'))).toBe(404);
    });

    it('follows merges: a person merged into the opted-out one is hidden, and shared again when undone', async () => {
      const centrePerson = (await store.mpi.person(repo.executor, 'a-1'))!.goldenId;
      const merge = await repo.transaction((tx) => store.mpi.merge(tx, centrePerson, golden, 'duplicate', 'office-1'));
      expect(await status(city.read('Observation', 'o-a'))).toBe(404);
      expect((await centre.read('Observation', 'o-a')).id).toBe('o-a');
      await repo.transaction((tx) => store.mpi.unmerge(tx, merge!.id, 'office-1'));
      expect((await city.read('Observation', 'o-a')).id).toBe('o-a');
    });

    it('is lifted by break-the-glass, and the unrestricted context sees everything', async () => {
      const glass = repo.withAccess({ facility: CENTRE, breakGlass: 'unconscious patient in the emergency room' });
      expect((await glass.read('Observation', 'o-k')).id).toBe('o-k');
      expect((await glass.read('Observation', 'o-c')).id).toBe('o-c');
      const office = repo.withAccess({ unrestricted: true });
      expect((await office.search('Observation', [['patient', 'Patient/k-1,Patient/c-1']])).matches).toHaveLength(3);
      // Break-the-glass opens reads, not writes.
      expect(await status(glass.update(labObservation('o-k', 'k-1', '718-7', 1, 'g/dL', '2024-04-01')))).toBe(403);
    });

    it('lets both ends of a completed referral keep what it carried, and only that, never past a sensitivity label', async () => {
      await county.update(labObservation('o-k-glu', 'k-1', '2345-7', 9.1, 'mmol/L', '2024-06-01'));
      await county.update(labObservation('o-k-other', 'k-1', '2345-7', 8.0, 'mmol/L', '2024-06-02'));
      await county.update(labObservation('o-k-hiv', 'k-1', '2345-7', 7.0, 'mmol/L', '2024-06-03', { meta: { security: [HIV] } }));
      await county.update({ resourceType: 'ServiceRequest', id: 'sr-k', status: 'active', intent: 'order', subject: { reference: 'Patient/k-1' }, requester: { reference: `Organization/${COUNTY}` }, performer: [{ reference: `Organization/${CITY}` }], supportingInfo: [{ reference: 'Observation/o-k-glu' }, { reference: 'Observation/o-k-hiv' }] });
      const referral = { resourceType: 'Task' as const, id: 't-k', status: 'requested' as const, intent: 'order' as const, focus: { reference: 'ServiceRequest/sr-k' }, for: { reference: 'Patient/k-1' }, requester: { reference: `Organization/${COUNTY}` }, owner: { reference: `Organization/${CITY}` } };
      await county.update(referral);
      // Open: the whole person's records, to both ends only.
      expect((await city.read('Observation', 'o-k-other')).id).toBe('o-k-other');
      expect(await status(centre.read('Observation', 'o-k-glu'))).toBe(404);
      await county.update({ ...referral, status: 'completed' });
      // Completed: what it carried stays; the rest is hidden again.
      for (const [type, id] of [['Observation', 'o-k-glu'], ['ServiceRequest', 'sr-k'], ['Task', 't-k']]) expect((await city.read(type, id)).id).toBe(id);
      expect(await status(city.read('Observation', 'o-k-other'))).toBe(404);
      expect(await status(city.read('Observation', 'o-k-hiv'))).toBe(404);
      expect(await status(centre.read('Observation', 'o-k-glu'))).toBe(404);
      expect(refs((await city.search('Observation', [['code', '2345-7']])).matches)).toEqual(['Observation/o-k-glu']);
      // A deleted Task discloses nothing.
      await county.delete('Task', 't-k');
      expect(await status(city.read('Observation', 'o-k-glu'))).toBe(404);
      for (const [type, id] of [['Observation', 'o-k-glu'], ['Observation', 'o-k-other'], ['Observation', 'o-k-hiv'], ['ServiceRequest', 'sr-k']]) await county.delete(type, id);
    });

    it('is shared again when the Consent is withdrawn or deleted, and hidden again when reinstated', async () => {
      await county.update(optOutConsent('consent-k', 'k-1', 'inactive'));
      expect((await centre.read('Observation', 'o-k')).id).toBe('o-k');
      expect((await centre.read('Patient', golden)).id).toBe(golden);
      await county.update(optOutConsent('consent-k', 'k-1'));
      expect(await status(centre.read('Observation', 'o-k'))).toBe(404);
      await county.delete('Consent', 'consent-k');
      expect((await centre.read('Observation', 'o-c')).id).toBe('o-c');
      expect((await centre.search('Observation', [['patient', 'Patient/k-1,Patient/c-1']])).matches).toHaveLength(3);
    });
  });

  describe('a sensitive label', () => {
    it('shows the resource to its author only, per version', async () => {
      await city.update(labObservation('o-hiv', 'c-1', '718-7', 13, 'g/dL', '2024-07-01'));
      await city.update(labObservation('o-hiv', 'c-1', '718-7', 13, 'g/dL', '2024-07-01', { meta: { security: [HIV] } }));
      expect(await status(county.read('Observation', 'o-hiv'))).toBe(404);
      expect(await status(county.vread('Observation', 'o-hiv', '2'))).toBe(404);
      expect((await county.vread('Observation', 'o-hiv', '1')).versionId).toBe('1');
      expect((await county.history({ type: 'Observation', id: 'o-hiv' }, { count: 10 })).entries.map((e) => e.versionId)).toEqual(['1']);
      expect((await county.search('Observation', [['_id', 'o-hiv']])).matches).toEqual([]);
      expect((await city.read('Observation', 'o-hiv')).versionId).toBe('2');
      expect((await repo.withAccess({ facility: COUNTY, breakGlass: 'emergency' }).read('Observation', 'o-hiv')).versionId).toBe('2');
    });

    it('hides a sensitive support resource from $everything and _include', async () => {
      const practitioner: Practitioner & { id: string } = { resourceType: 'Practitioner', id: 'pr-psy', meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }, name: [{ text: '周医生' }] };
      await county.update(practitioner);
      await centre.update(labObservation('o-a-pr', 'a-1', '718-7', 14, 'g/dL', '2024-05-02', { performer: [{ reference: 'Practitioner/pr-psy' }] } as Partial<Observation>));
      const inc = await centre.search('Observation', [['_id', 'o-a-pr'], ['_include', 'Observation:performer']]);
      expect(inc.included).toEqual([]);
      expect(refs((await county.search('Observation', [['_id', 'o-a-pr'], ['_include', 'Observation:performer']])).included)).toEqual(['Practitioner/pr-psy']);
      // Nor can a chain probe it through a visible resource.
      expect((await centre.search('Observation', [['performer:Practitioner.name', '周']])).matches).toEqual([]);
      expect(refs((await county.search('Observation', [['performer:Practitioner.name', '周']])).matches)).toEqual(['Observation/o-a-pr']);
      expect(refs((await centre.everything(['a-1'], { count: 100 })).entries)).not.toContain('Practitioner/pr-psy');
      expect(refs((await county.everything(['a-1'], { count: 100 })).entries)).toContain('Practitioner/pr-psy');
    });
  });
});

describe('access labels', () => {
  const labels = (r: Resource & { id: string }, codes = sensitiveCodeSet()) => accessLabels(r, extractIndexRows(r as Resource & { resourceType: string; [k: string]: unknown }), codes);

  it('takes the Patients a resource is about from its compartment references only', () => {
    const obs = labObservation('o', 'p-1', '718-7', 1, 'g/dL', '2024-01-01', { performer: [{ reference: 'Practitioner/pr-1' }], hasMember: [{ reference: 'Observation/o-2' }] } as Partial<Observation>);
    expect(labels(obs).patients).toEqual(['p-1']);
    expect(labels({ resourceType: 'Patient', id: 'p-2' }).patients).toEqual(['p-2']);
    expect(labels({ resourceType: 'Organization', id: 'org' }).patients).toEqual([]);
  });

  it('reads sensitivity from the configured codes, the HL7 defaults otherwise', () => {
    const restricted = { resourceType: 'Organization', id: 'org', meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] } } as Resource & { id: string };
    const normal = { ...restricted, meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] } } as Resource & { id: string };
    expect(labels(restricted).sensitive).toBe(true);
    expect(labels(normal).sensitive).toBe(false);
    const onlyN = sensitiveCodeSet({ sensitiveCodes: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] });
    expect(labels(restricted, onlyN).sensitive).toBe(false);
    expect(labels(normal, onlyN).sensitive).toBe(true);
  });

  it('counts only an active patient-privacy deny Consent as an opt-out', () => {
    expect(optOutOf(optOutConsent('c', 'p-1'))).toBe('p-1');
    expect(optOutOf(optOutConsent('c', 'p-1', 'inactive'))).toBeNull();
    expect(optOutOf({ ...optOutConsent('c', 'p-1'), provision: { type: 'permit' } })).toBeNull();
    expect(optOutOf({ ...optOutConsent('c', 'p-1'), scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } })).toBeNull();
  });
});

describe.each(DRIVERS)('the opted-out registrations (migration 10) on %s', (driver) => {
  let store: TestStore & { mpi: PatientIndex };
  beforeAll(async () => {
    store = await openIndexedStore(driver, { access: { mrnSystems: MRN_SYSTEMS } });
  });
  afterAll(() => store.close());

  const members = async (): Promise<string[]> => (await store.db.query<{ patient_id: string }>('SELECT patient_id FROM access_optout_member ORDER BY 1')).map((r) => r.patient_id);
  // What migration 4's view computes from scratch: the table must always agree with it.
  const fromScratch = async (): Promise<string[]> => (await store.db.query<{ patient_id: string }>('SELECT patient_id FROM access_opted_out ORDER BY 1')).map((r) => r.patient_id);

  it('holds every registration of an opted-out person as the patient index links, unlinks and merges them, and the migration finds earlier opt-outs', async () => {
    const repo = store.repo;
    const city = repo.withAccess({ facility: CITY });
    const county = repo.withAccess({ facility: COUNTY });
    const centre = repo.withAccess({ facility: CENTRE });
    const person = { name: '钱秀英', gender: 'female' as const, birthDate: '1958-11-02', idNumber: idNumber('1958-11-02', 7) };
    await city.update(facilityPatient('m10-c', person, CITY));
    await county.update(facilityPatient('m10-k', person, COUNTY));
    await centre.update(facilityPatient('m10-a', { name: '李建国', gender: 'male', birthDate: '1971-06-30' }, CENTRE));
    const golden = (await store.mpi.person(repo.executor, 'm10-k'))!.goldenId;
    expect(await members()).toEqual([]);

    await county.update(optOutConsent('m10-consent', 'm10-k'));
    expect(await members()).toEqual([golden, 'm10-c', 'm10-k'].sort());
    // A registration linked after the opt-out is held at once, without the Consent being written again.
    await repo.transaction((tx) => store.mpi.link(tx, 'm10-a', 'm10-k', 'office-1'));
    expect(await members()).toEqual([golden, 'm10-a', 'm10-c', 'm10-k'].sort());
    await repo.transaction((tx) => store.mpi.unlink(tx, 'm10-c', 'office-1'));
    expect(await members()).toEqual([golden, 'm10-a', 'm10-k'].sort());
    expect(await members()).toEqual(await fromScratch());

    // A database that had opt-outs before migration 10 gets them in its table.
    for (const sql of ['DROP TRIGGER access_optout_consent ON access_optout', 'DROP TRIGGER access_optout_link ON mpi_link', 'DROP FUNCTION access_optout_follow()', 'DROP FUNCTION access_optout_refresh(text)', 'DROP TABLE access_optout_member', 'DELETE FROM schema_migrations WHERE version = 10']) await store.db.query(sql);
    await migrate(store.db);
    expect(await members()).toEqual([golden, 'm10-a', 'm10-k'].sort());

    await county.update(optOutConsent('m10-consent', 'm10-k', 'inactive'));
    expect(await members()).toEqual([]);
  });

  if (driver === 'postgres') {
    it('a link made while another transaction records the opt-out waits for it, and is held once both commit', async () => {
      const repo = store.repo;
      const county = repo.withAccess({ facility: COUNTY });
      const centre = repo.withAccess({ facility: CENTRE });
      await county.update(facilityPatient('race-k', { name: '周敏', gender: 'female', birthDate: '1949-01-15' }, COUNTY));
      await centre.update(facilityPatient('race-a', { name: '吴刚', gender: 'male', birthDate: '1990-12-12' }, CENTRE));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let consentWritten!: () => void;
      const written = new Promise<void>((r) => (consentWritten = r));
      const optOut = repo.transaction(async (tx) => {
        await tx.withAccess({ facility: COUNTY }).update(optOutConsent('race-consent', 'race-k'));
        consentWritten();
        await gate;
      });
      await written;
      let linked = false;
      const link = repo.transaction((tx) => store.mpi.link(tx, 'race-a', 'race-k', 'office-1')).then(() => (linked = true));
      try {
        await new Promise((r) => setTimeout(r, 300));
        // Without the lock on the person, the link would have committed by now, reading no opt-out.
        expect(linked).toBe(false);
      } finally {
        release();
        await Promise.all([optOut, link]);
      }
      expect(await members()).toEqual(expect.arrayContaining(['race-a', 'race-k']));
      expect(await status(repo.withAccess({ facility: CITY }).read('Patient', 'race-a'))).toBe(404);
      expect(await members()).toEqual(await fromScratch());
    });
  }
});

describe.each(DRIVERS)('migration 4 on %s', (driver) => {
  it('labels the versions stored before it as the writer would have, and finds the opt-outs', async () => {
    const store = await openTestStore(driver);
    try {
      const tag = { meta: { tag: [{ system: AUTHOR_TAG_SYSTEM, code: CITY }] } };
      await store.repo.update({ ...facilityPatient('m-1', { name: '吴芳' }, CITY), ...tag });
      await store.repo.update(labObservation('m-o', 'm-1', '718-7', 12, 'g/dL', '2024-01-01', tag));
      await store.repo.update(labObservation('m-o', 'm-1', '718-7', 12, 'g/dL', '2024-01-01', { meta: { ...tag.meta, security: [HIV] } }));
      await store.repo.update(optOutConsent('m-consent', 'm-1'));
      const labels = (): Promise<unknown[]> =>
        store.db.query(
          `SELECT type, id, version, author, sensitive, array_to_string(ARRAY(SELECT unnest(patients) ORDER BY 1), ',') AS patients FROM resource
           UNION ALL SELECT type, id, version, author, sensitive, array_to_string(ARRAY(SELECT unnest(patients) ORDER BY 1), ',') FROM resource_history ORDER BY 1, 2, 3`,
        );
      const written = await labels();
      expect(written).toContainEqual({ type: 'Observation', id: 'm-o', version: 2, author: CITY, sensitive: true, patients: 'm-1' });
      expect(written).toContainEqual({ type: 'Observation', id: 'm-o', version: 1, author: CITY, sensitive: false, patients: 'm-1' });

      // Back to the schema before migration 4, then forward again.
      await store.db.query('DROP FUNCTION access_opted_out_ids()');
      await store.db.query('DROP VIEW access_opted_out');
      await store.db.query('DROP TABLE access_optout');
      for (const table of ['resource', 'resource_history']) await store.db.query(`ALTER TABLE ${table} DROP COLUMN author, DROP COLUMN sensitive, DROP COLUMN patients`);
      await store.db.query('DELETE FROM schema_migrations WHERE version = 4');
      await migrate(store.db);

      expect(await labels()).toEqual(written);
      expect(await store.db.query('SELECT consent_id, patient_id FROM access_optout')).toEqual([{ consent_id: 'm-consent', patient_id: 'm-1' }]);
    } finally {
      await store.close();
    }
  });
});
