import { adt } from '../../fixtures/synthetic/hl7';
import { resourceId } from '../../mappers/ids';
import { openIngestHarness, type IngestHarness } from '../support/ingest';
import { indexProblems } from '../support/mpi';
import type { PatientIndex } from '../../mpi';

// ADT^A40 from the city hospital: two of its registrations are one person.
describe('ADT^A40 through ingest merges two persons, reversibly (PGlite)', () => {
  let h: IngestHarness;
  beforeAll(async () => {
    h = await openIngestHarness('pglite');
    h.startWorker(1);
  });
  afterAll(() => h.close());
  const mpi = (): PatientIndex => h.store.mpi;
  const patientId = (mrn: string) => resourceId('city-hospital', 'patient', mrn);
  const send = async (er7: string): Promise<void> => {
    const receipt = await h.ingest.receiveHl7(Buffer.from(er7));
    expect(receipt.code).toBe('AA');
    const [done] = await h.waitForFinished([receipt.messageId!]);
    expect(done.state).toBe('done');
  };

  it('links the retired registration to the survivor, and $mpi-unmerge undoes it', async () => {
    // The same woman registered twice under different names, as front desks do: no match.
    await send(adt('A04', { mrn: '40000001', family: '何', given: '晓燕', birth: '19770304', sex: 'F' }, 'A40-1'));
    await send(adt('A04', { mrn: '40000002', family: '贺', given: '燕', birth: '19770403', sex: 'F', phone: '17000000901' }, 'A40-2'));
    const [retired, survivor] = [patientId('40000002'), patientId('40000001')];
    const before = [await mpi().person(h.store.db, retired), await mpi().person(h.store.db, survivor)];
    expect(before[0]!.goldenId).not.toBe(before[1]!.goldenId);
    const a40 = adt('A04', { mrn: '40000001', family: '何', given: '晓燕', birth: '19770304', sex: 'F' }, 'A40-3')
      .replace('ADT^A04^ADT_A01', 'ADT^A40^ADT_A39')
      .replace('EVN|A04', 'EVN|A40')
      .replace(/\rPV1\|[^\r]*/, '\rMRG|40000002^^^CITYHOSP^MR');
    await send(a40);
    const after = await mpi().person(h.store.db, retired);
    expect(after!.goldenId).toBe(before[1]!.goldenId);
    expect(after!.members.sort()).toEqual([retired, survivor].sort());
    const [merge] = await h.store.db.query<{ id: string; reason: string }>('SELECT id, reason FROM mpi_merge');
    expect(merge.reason).toBe('ADT^A40');
    await h.store.repo.transaction((tx) => mpi().unmerge(tx, merge.id, 'office-1'));
    expect((await mpi().person(h.store.db, retired))!.goldenId).toBe(before[0]!.goldenId);
    expect(await indexProblems(h.store.db)).toEqual([]);
  });
});
