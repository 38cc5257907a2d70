import type { Patient } from '@medplum/fhirtypes';
import { EMPI_SYSTEM, isGolden } from '../../mpi/golden';
import { labObservation } from '../support/fixtures';
import { indexProblems, openIndexedStore } from '../support/mpi';
import { DRIVERS, type TestStore } from '../support/stores';
import { facilityPatient, idNumber } from '../support/people';
import type { PatientIndex } from '../../mpi';
import type { Repository } from '../../store/repository';
import { rejection } from '../support/thrown';

describe.each(DRIVERS)('patient index on %s', (driver) => {
  let store: TestStore & { mpi: PatientIndex };
  let repo: Repository;
  beforeAll(async () => {
    store = await openIndexedStore(driver);
    repo = store.repo;
  });
  afterAll(() => store.close());
  afterEach(async () => expect(await indexProblems(repo.executor)).toEqual([]));

  const goldenOf = async (id: string): Promise<string> => (await store.mpi.person(repo.executor, id))!.goldenId;
  const readGolden = async (id: string): Promise<Patient> => (await repo.read('Patient', await goldenOf(id))).resource as Patient;

  it('links one person registered at a hospital and a community centre to one golden record', async () => {
    const id = idNumber('1958-04-09', 21);
    await repo.update(facilityPatient('a-1', { name: '陈建国', gender: 'male', birthDate: '1958-04-09', phone: '13700000001' }, 'city-hospital'));
    await repo.update(facilityPatient('a-2', { name: '陳建國', gender: 'male', birthDate: '1958-09-04', idNumber: id, address: '江城市青山区和平大道8号' }, 'community-centre-a'));
    const golden = await goldenOf('a-1');
    expect(await goldenOf('a-2')).toBe(golden);
    const g = await readGolden('a-1');
    expect(isGolden(g)).toBe(true);
    expect(g.identifier).toEqual(expect.arrayContaining([{ use: 'official', system: EMPI_SYSTEM, value: golden }, expect.objectContaining({ value: id })]));
    // The ID number carries the birth date, and wins over the day-first entry.
    expect(g.birthDate).toBe('1958-04-09');
    expect(g.link?.map((l) => l.other.reference).sort()).toEqual(['Patient/a-1', 'Patient/a-2']);
    const [link] = (await store.mpi.linksOf(repo.executor, golden)).filter((l) => l.patientId === 'a-2');
    expect(link).toMatchObject({ linkSource: 'AUTO', rule: 'name-birth-date' });
    expect(link.score).toBeGreaterThan(16);
  });

  it('keeps namesakes apart and sends a near miss to review, not to a link', async () => {
    await repo.update(facilityPatient('b-1', { name: '王伟', gender: 'male', birthDate: '1975-02-11', phone: '13700000002', address: '江城市江岸区沿江大道1号' }));
    await repo.update(facilityPatient('b-2', { name: '王伟', gender: 'male', birthDate: '1975-10-30', phone: '13900000002' }, 'county-hospital'));
    expect(await goldenOf('b-1')).not.toBe(await goldenOf('b-2'));
    // Same name and household, birth date a generation apart: father and son.
    await repo.update(facilityPatient('b-3', { name: '王伟', gender: 'male', birthDate: '1950-06-01', phone: '13700000002', address: '江城市江岸区沿江大道1号' }, 'county-hospital'));
    expect(await goldenOf('b-3')).not.toBe(await goldenOf('b-1'));
    const open = await store.mpi.reviews(repo.executor, 'open', 100);
    expect(open).toContainEqual(expect.objectContaining({ patientId: 'b-3', goldenId: await goldenOf('b-1'), state: 'open' }));
  });

  it('accepting a review links manually, and the matcher never undoes it', async () => {
    const [review] = (await store.mpi.reviews(repo.executor, 'open', 100)).filter((r) => r.patientId === 'b-3');
    await repo.transaction((tx) => store.mpi.link(tx, 'b-3', review.goldenId, 'office-1', 'review-accept'));
    expect(await goldenOf('b-3')).toBe(review.goldenId);
    expect((await store.mpi.reviews(repo.executor, 'open', 100)).some((r) => r.patientId === 'b-3' && r.goldenId === review.goldenId)).toBe(false);
    // A later update of the registration re-evaluates nothing: the decision was a person's.
    await repo.update(facilityPatient('b-3', { name: '王伟', gender: 'male', birthDate: '1950-06-01', phone: '13800000003' }, 'county-hospital'));
    expect(await goldenOf('b-3')).toBe(review.goldenId);
    const audits = await repo.search('AuditEvent', [['entity', 'Patient/b-3']]);
    expect(audits.matches.length).toBeGreaterThan(0);
  });

  it('moves an automatic link out when an update no longer matches', async () => {
    await repo.update(facilityPatient('c-1', { name: '李娜', gender: 'female', birthDate: '1990-07-15', phone: '13600000004' }));
    await repo.update(facilityPatient('c-2', { name: '李娜', gender: 'female', birthDate: '1990-07-15', phone: '13600000004' }, 'county-hospital'));
    const shared = await goldenOf('c-1');
    expect(await goldenOf('c-2')).toBe(shared);
    // The county hospital corrects the registration: another person entirely.
    await repo.update(facilityPatient('c-2', { name: '李静', gender: 'female', birthDate: '1988-01-30', phone: '13600000005' }, 'county-hospital'));
    expect(await goldenOf('c-2')).not.toBe(shared);
    expect(await goldenOf('c-1')).toBe(shared);
    expect((await readGolden('c-1')).link).toHaveLength(1);
  });

  it('unlinks without losing a record, and never re-links automatically to that record', async () => {
    await repo.update(facilityPatient('d-1', { name: '赵敏', gender: 'female', birthDate: '1985-12-01', idNumber: idNumber('1985-12-01', 42) }));
    await repo.update(facilityPatient('d-2', { name: '赵敏', gender: 'female', birthDate: '1985-12-01' }, 'community-centre-a'));
    await repo.update(labObservation('d-obs-1', 'd-1', '718-7', 13.1, 'g/dL', '2026-01-01'));
    await repo.update(labObservation('d-obs-2', 'd-2', '718-7', 12.9, 'g/dL', '2026-02-01'));
    const golden = await goldenOf('d-1');
    expect(await goldenOf('d-2')).toBe(golden);
    await repo.transaction((tx) => store.mpi.unlink(tx, 'd-2', 'office-1'));
    const apart = await goldenOf('d-2');
    expect(apart).not.toBe(golden);
    const person = await store.mpi.person(repo.executor, apart);
    const records = (await repo.everything([person!.goldenId, ...person!.members], { count: 100 })).entries.map((e) => e.reference);
    expect(records).toContain('Observation/d-obs-2');
    expect(records).not.toContain('Observation/d-obs-1');
    await repo.update(facilityPatient('d-2', { name: '赵敏', gender: 'female', birthDate: '1985-12-01', phone: '13500000006' }, 'community-centre-a'));
    expect(await goldenOf('d-2')).toBe(apart);
  });

  it('merges two persons and undoes the merge', async () => {
    await repo.update(facilityPatient('e-1', { name: '孙丽', gender: 'female', birthDate: '1970-03-03' }));
    await repo.update(facilityPatient('e-2', { name: '孙莉莉', gender: 'female', birthDate: '1971-08-08' }, 'county-hospital'));
    const [g1, g2] = [await goldenOf('e-1'), await goldenOf('e-2')];
    expect(g1).not.toBe(g2);
    const merge = await repo.transaction((tx) => store.mpi.merge(tx, 'Patient/e-2', g1, 'office', 'office-1'));
    expect(await goldenOf('e-2')).toBe(g1);
    const retired = (await repo.read('Patient', g2)).resource as Patient;
    expect(retired).toMatchObject({ active: false, link: [{ other: { reference: `Patient/${g1}` }, type: 'replaced-by' }] });
    expect((await store.mpi.person(repo.executor, g2))?.goldenId).toBe(g1);
    await repo.transaction((tx) => store.mpi.unmerge(tx, merge!.id, 'office-1'));
    expect(await goldenOf('e-2')).toBe(g2);
    expect(((await repo.read('Patient', g2)).resource as Patient).active).toBe(true);
    const again = await rejection(() => repo.transaction((tx) => store.mpi.unmerge(tx, merge!.id, 'office-1')));
    expect(again).toMatchObject({ status: 422 });
  });

  it('keeps golden records read-only to clients', async () => {
    const golden = await goldenOf('e-1');
    const g = (await repo.read('Patient', golden)).resource as Patient;
    expect(await rejection(() => repo.update({ ...g, gender: 'male' }))).toMatchObject({ status: 403 });
    expect(await rejection(() => repo.delete('Patient', golden))).toMatchObject({ status: 403 });
    expect(await rejection(() => repo.create({ ...g, id: undefined }))).toMatchObject({ status: 403 });
  });

  it('drops the golden record of a deleted registration that was alone', async () => {
    await repo.update(facilityPatient('f-1', { name: '周杰', gender: 'male', birthDate: '2001-01-09' }));
    const golden = await goldenOf('f-1');
    await repo.delete('Patient', 'f-1');
    expect(await store.mpi.person(repo.executor, 'f-1')).toBeUndefined();
    expect(await rejection(() => repo.read('Patient', golden))).toMatchObject({ status: 410 });
  });

  it('decides the registrations of one write (a Bundle, an import chunk) as it would one by one', async () => {
    const fang = { name: '林芳', gender: 'female' as const, birthDate: '1990-03-05' };
    await repo.update(facilityPatient('h-1', { ...fang, idNumber: idNumber('1990-03-05', 55) }));
    await repo.update(facilityPatient('h-2', fang, 'community-centre-a'));
    await repo.transaction((tx) => store.mpi.unlink(tx, 'h-2', 'office-1'));
    const apart = await goldenOf('h-2');
    const newcomer = { name: '黄磊', gender: 'male' as const, birthDate: '1972-08-19', idNumber: idNumber('1972-08-19', 56) };
    const write = (p: Patient & { id: string }) => ({ method: 'update' as const, type: 'Patient', id: p.id, resource: p });
    await repo.applyWrites([
      write(facilityPatient('h-3', newcomer)),
      // The same new person from another facility, later in the same write: it sees h-3.
      write(facilityPatient('h-4', newcomer, 'county-hospital')),
      // Unlinked by hand before: the batch keeps it apart.
      write(facilityPatient('h-2', { ...fang, phone: '13500000009' }, 'community-centre-a')),
      // A namesake a generation older.
      write(facilityPatient('h-5', { name: '黄磊', gender: 'male', birthDate: '1948-02-01' }, 'county-hospital')),
    ]);
    expect(await goldenOf('h-4')).toBe(await goldenOf('h-3'));
    expect(await goldenOf('h-5')).not.toBe(await goldenOf('h-3'));
    expect(await goldenOf('h-2')).toBe(apart);
    expect((await readGolden('h-3')).link?.map((l) => l.other.reference).sort()).toEqual(['Patient/h-3', 'Patient/h-4']);
    expect((await readGolden('h-2')).telecom?.map((t) => t.value)).toContain('13500000009');
  });

  if (driver === 'postgres') {
    it('gives two registrations of one new person arriving at once one golden record', async () => {
      for (let i = 0; i < 15; i++) {
        const birth = `1960-01-${String(10 + i).padStart(2, '0')}`;
        const p = { name: `郭${'志强明华'[i % 4]}国`, gender: 'male' as const, birthDate: birth, idNumber: idNumber(birth, 77) };
        await Promise.all([repo.update(facilityPatient(`g-${i}-a`, p)), repo.update(facilityPatient(`g-${i}-b`, p, 'county-hospital'))]);
        expect(await goldenOf(`g-${i}-a`)).toBe(await goldenOf(`g-${i}-b`));
      }
    });
  }
});
