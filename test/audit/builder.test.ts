import { auditOutcome, buildAuditEvent, type AuditInput } from '../../store/audit-event';
import { mpiAuditEvent } from '../../mpi/audit';
import { describeRequest } from '../../gateway/audit/interaction';
import { patientsOf, patientsOfSearch } from '../../gateway/audit/patients';

const base: AuditInput = {
  id: 'ae-1',
  recorded: '2026-03-05T02:15:30.123Z',
  what: { interaction: 'read' },
  status: 200,
  client: { id: 'his-county', facility: 'org-county', address: '10.1.2.3' },
  user: { fhirUser: 'Practitioner/dr-9', name: 'Dr Test' },
  resource: 'Observation/obs-1',
  patients: ['Patient/p-1'],
  observer: { name: 'consortium-fhir-gateway', url: 'http://gw.example/fhir' },
};

const coding = (system: string, code: string) => expect.objectContaining({ system, code });

describe('BALP AuditEvent builder', () => {
  it('a read by a clinician through a facility system, field by field', () => {
    const e = buildAuditEvent(base);
    expect(e.resourceType).toBe('AuditEvent');
    expect(e.id).toBe('ae-1');
    expect(e.type).toEqual(coding('http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest'));
    expect(e.subtype).toEqual([{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }]);
    expect(e.action).toBe('R');
    expect(e.recorded).toBe('2026-03-05T02:15:30.123Z');
    expect(e.outcome).toBe('0');
    expect(e.outcomeDesc).toBeUndefined();
    expect(e.source).toEqual({ observer: { display: 'consortium-fhir-gateway' }, type: [coding('http://terminology.hl7.org/CodeSystem/security-source-type', '4')] });

    const [user, client, server, facility, ...more] = e.agent!;
    expect(more).toEqual([]);
    expect(user.type!.coding).toEqual([coding('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'IRCP')]);
    expect(user.who).toEqual({ reference: 'Practitioner/dr-9', display: 'Dr Test' });
    expect(user.requestor).toBe(true);
    expect(user.purposeOfUse).toBeUndefined();
    expect(client.type!.coding).toEqual([coding('http://dicom.nema.org/resources/ontology/DCM', '110153')]);
    expect(client.who!.identifier).toEqual({ system: 'http://consortium.example/fhir/sid/client-id', value: 'his-county' });
    expect(client.requestor).toBe(false);
    expect(client.network).toEqual({ address: '10.1.2.3', type: '2' });
    expect(server.type!.coding).toEqual([coding('http://dicom.nema.org/resources/ontology/DCM', '110152')]);
    expect(server.network).toEqual({ address: 'http://gw.example/fhir', type: '5' });
    expect(facility.who).toEqual({ reference: 'Organization/org-county' });
    expect(facility.requestor).toBe(false);

    const [data, patient, ...rest] = e.entity!;
    expect(rest).toEqual([]);
    expect(data.what).toEqual({ reference: 'Observation/obs-1' });
    expect(data.type).toEqual(coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '2'));
    expect(data.role).toEqual(coding('http://terminology.hl7.org/CodeSystem/object-role', '4'));
    expect(patient.what).toEqual({ reference: 'Patient/p-1' });
    expect(patient.type).toEqual(coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '1'));
    expect(patient.role).toEqual(coding('http://terminology.hl7.org/CodeSystem/object-role', '1'));
  });

  it('a search carries its query base64 in a Query entity, and is an E', () => {
    const query = 'Observation?patient=p-1&code=http://loinc.org|2345-7';
    const e = buildAuditEvent({ ...base, what: { interaction: 'search-type' }, resource: undefined, query });
    expect(e.action).toBe('E');
    const q = e.entity!.find((x) => x.role?.code === '24')!;
    expect(q.type).toEqual(coding('http://terminology.hl7.org/CodeSystem/audit-entity-type', '2'));
    expect(Buffer.from(q.query!, 'base64').toString('utf8')).toBe(query);
  });

  it('actions and outcomes follow the interaction and the HTTP status', () => {
    const action = (interaction: 'create' | 'update' | 'delete' | 'vread' | 'history-instance' | 'operation' | 'transaction') => buildAuditEvent({ ...base, what: { interaction } }).action;
    expect([action('create'), action('update'), action('delete'), action('vread'), action('history-instance'), action('operation'), action('transaction')]).toEqual(['C', 'U', 'D', 'R', 'R', 'E', 'E']);
    expect([200, 201, 304, 400, 401, 404, 500, 503, undefined].map(auditOutcome)).toEqual(['0', '0', '0', '4', '4', '4', '8', '8', '12']);
    expect(buildAuditEvent({ ...base, status: 403 }).outcomeDesc).toBe('HTTP 403');
    const op = buildAuditEvent({ ...base, what: { interaction: 'operation', operation: '$everything' } });
    expect(op.subtype).toEqual([coding('http://hl7.org/fhir/restful-interaction', 'operation'), coding('http://consortium.example/fhir/CodeSystem/operation', '$everything')]);
  });

  it('break-glass puts BTG and the reason on the requestor', () => {
    const e = buildAuditEvent({ ...base, breakGlass: 'unconscious patient in A&E' });
    const requestor = e.agent!.filter((a) => a.requestor);
    expect(requestor).toHaveLength(1);
    expect(requestor[0].purposeOfUse).toEqual([{ coding: [coding('http://terminology.hl7.org/CodeSystem/v3-ActReason', 'BTG')], text: 'unconscious patient in A&E' }]);
    const systemOnly = buildAuditEvent({ ...base, user: undefined, breakGlass: 'flood' });
    expect(systemOnly.agent!.find((a) => a.requestor)!.purposeOfUse![0].coding![0].code).toBe('BTG');
    expect(systemOnly.agent!.find((a) => a.requestor)!.who!.identifier!.value).toBe('his-county');
  });

  it('an anonymous failed attempt still names a (anonymous) requestor and its address', () => {
    const e = buildAuditEvent({ ...base, status: 401, user: undefined, client: { address: '10.9.9.9' }, patients: [] });
    expect(e.outcome).toBe('4');
    const requestor = e.agent!.find((a) => a.requestor)!;
    expect(requestor.who).toEqual({ display: 'anonymous' });
    expect(requestor.network!.address).toBe('10.9.9.9');
    expect(e.agent!.some((a) => a.who?.reference?.startsWith('Organization/'))).toBe(false);
  });

  it('the patient index office events come from the same builder, patients with the Patient role', () => {
    const e = mpiAuditEvent('merge', 'office-zhou', ['Patient/g-1', 'Patient/g-2'], 'merged g-1 into g-2');
    expect(e.type).toEqual(coding('http://dicom.nema.org/resources/ontology/DCM', '110110'));
    expect(e.subtype!.map((s) => s.code)).toEqual(['merge', 'merge']);
    expect(e.action).toBe('U');
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.agent).toEqual([expect.objectContaining({ who: { display: 'office-zhou' }, requestor: true })]);
    expect(e.entity!.filter((x) => x.role?.code === '1').map((x) => x.what!.reference)).toEqual(['Patient/g-1', 'Patient/g-2']);
    expect(e.entity!.at(-1)).toEqual({ description: 'merged g-1 into g-2' });
  });
});

describe('interaction of a request', () => {
  it.each([
    ['GET', '/fhir/Patient/p-1', 'read', 'Patient/p-1'],
    ['GET', '/fhir/Patient/p-1/_history/2', 'vread', 'Patient/p-1/_history/2'],
    ['GET', '/fhir/Patient/p-1/_history', 'history-instance', 'Patient/p-1'],
    ['GET', '/fhir/Observation/_history', 'history-type', undefined],
    ['GET', '/fhir/_history', 'history-system', undefined],
    ['GET', '/fhir/Observation', 'search-type', undefined],
    ['POST', '/fhir/Observation/_search', 'search-type', undefined],
    ['POST', '/fhir/Observation', 'create', undefined],
    ['PUT', '/fhir/Observation', 'update', undefined],
    ['PUT', '/fhir/Observation/o-1', 'update', 'Observation/o-1'],
    ['PATCH', '/fhir/Observation/o-1', 'patch', 'Observation/o-1'],
    ['DELETE', '/fhir/Observation/o-1', 'delete', 'Observation/o-1'],
    ['GET', '/fhir/Patient/p-1/$everything', 'operation', 'Patient/p-1'],
    ['POST', '/fhir/Patient/$match', 'operation', undefined],
    ['GET', '/fhir/$mpi-reviews', 'operation', undefined],
    ['POST', '/fhir', 'transaction', undefined],
    ['POST', '/ingest/hl7v2', 'create', undefined],
    ['GET', '/ingest/messages/m-1', 'read', undefined],
    ['POST', '/ingest/messages/m-1/$replay', 'operation', undefined],
  ])('%s %s is %s', (method, path, interaction, resource) => {
    const kind = describeRequest(method, path);
    expect(kind?.interaction).toBe(interaction);
    expect(kind?.resource).toBe(resource);
  });

  it('a batch Bundle is a batch; metadata and other roots are not audited', () => {
    expect(describeRequest('POST', '/fhir/', { resourceType: 'Bundle', type: 'batch' })?.interaction).toBe('batch');
    expect(describeRequest('GET', '/fhir/Patient/%24everything')?.operation).toBe('$everything');
    expect(describeRequest('GET', '/fhir/metadata')).toBeUndefined();
    expect(describeRequest('GET', '/healthz')).toBeUndefined();
    expect(describeRequest('GET', '/admin/queues')).toBeUndefined();
  });
});

describe('patients of resources and searches', () => {
  it('Patients themselves, subject and patient references, into Bundles, once each', () => {
    const bundle = {
      resourceType: 'Bundle',
      entry: [
        { resource: { resourceType: 'Patient', id: 'p-1' } },
        { resource: { resourceType: 'Observation', id: 'o-1', subject: { reference: 'Patient/p-2' } } },
        { resource: { resourceType: 'AllergyIntolerance', id: 'a-1', patient: { reference: 'http://gw.example/fhir/Patient/p-3/_history/4' } } },
        { resource: { resourceType: 'Observation', id: 'o-2', subject: { reference: 'Group/g-1' } } },
        { resource: { resourceType: 'Observation', id: 'o-3', subject: { reference: 'Patient/p-2' } } },
      ],
    };
    expect(patientsOf([bundle, { resourceType: 'Encounter', subject: { reference: 'urn:uuid:x' } }])).toEqual(['Patient/p-1', 'Patient/p-2', 'Patient/p-3']);
  });

  it('patient, subject (as a Patient) and a Patient _id; not chains, not other subjects', () => {
    expect(patientsOfSearch('Observation', [['patient', 'p-1,Patient/p-2'], ['subject', 'Patient/p-3'], ['subject', 'g-7'], ['subject:Patient', 'p-4'], ['patient.name', 'x'], ['code', 'p-5']])).toEqual(['Patient/p-1', 'Patient/p-2', 'Patient/p-3', 'Patient/p-4']);
    expect(patientsOfSearch('Patient', [['_id', 'p-9']])).toEqual(['Patient/p-9']);
    expect(patientsOfSearch('Observation', [['_id', 'o-1']])).toEqual([]);
  });
});
