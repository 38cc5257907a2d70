import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Observation, Resource } from '@medplum/fhirtypes';
import { consortiumProfiles, loadProfiles, profileFor, stampProfiles, validateMappedBundle } from '../../profiles/conformance';
import { FhirError } from '../../store/errors';
import { sharedValidator } from '../support/stores';

const observation = (): Observation => ({
  resourceType: 'Observation',
  id: 'o1',
  meta: { source: 'urn:consortium:source:city-hospital#M1' },
  status: 'final',
  code: { coding: [{ system: 'http://example.org/lis', code: 'GLU' }] },
  subject: { reference: 'Patient/p1' },
  effectiveDateTime: '2026-11-20T09:00:00+08:00',
  performer: [{ reference: 'Organization/city-hospital' }],
});

const bundle = (...resources: Resource[]): Bundle => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: resources.map((r) => ({ fullUrl: `urn:uuid:${r.id}`, resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })),
});

function failure(b: Bundle): FhirError {
  try {
    validateMappedBundle(b);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected the bundle to fail validation');
}

describe('consortium profiles', () => {
  it('accepts a conforming resource and stamps its profile', () => {
    const b = bundle(observation());
    expect(() => validateMappedBundle(b)).not.toThrow();
    stampProfiles(b);
    expect(b.entry![0].resource!.meta!.profile).toEqual(['http://consortium.example/fhir/StructureDefinition/consortium-observation']);
  });

  it.each([
    ['subject', (o: Observation) => delete o.subject, 'Bundle.entry[1].resource.subject', 'required'],
    ['meta.source', (o: Observation) => delete o.meta!.source, 'Bundle.entry[1].resource.meta.source', 'required'],
    ['effective[x]', (o: Observation) => delete o.effectiveDateTime, 'Bundle.entry[1].resource.effective[x]', 'required'],
    ['code.coding', (o: Observation) => (o.code = { text: 'glucose' }), 'Bundle.entry[1].resource.code.coding', 'required'],
    ['performer target', (o: Observation) => (o.performer = [{ reference: 'Patient/p1' }]), 'Bundle.entry[1].resource.performer', 'invalid'],
  ])('names the broken element when %s is wrong', (_name, breakIt, expression, code) => {
    const o = observation();
    breakIt(o);
    const err = failure(bundle({ ...observation(), id: 'ok' }, o));
    expect(err.status).toBe(422);
    expect(err.code).toBe(code);
    expect(err.expression).toEqual([expression]);
    expect(err.message).toContain('consortium-observation');
  });

  it('reports every broken element, not only the first', () => {
    const o = observation();
    delete o.subject;
    delete o.effectiveDateTime;
    const err = failure(bundle(o));
    expect(err.outcome.issue.map((i) => i.expression![0])).toEqual(['Bundle.entry[0].resource.subject', 'Bundle.entry[0].resource.effective[x]']);
  });

  it('refuses to load a profile using a rule it cannot enforce', () => {
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    const sd = { ...consortiumProfiles()[0] };
    sd.differential = { element: [...sd.differential!.element, { id: `${sd.type}.name`, path: `${sd.type}.name`, min: 1, patternString: 'x' } as never] };
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(sd));
    expect(() => loadProfiles(dir)).toThrow(/patternString, which the profile compiler does not enforce/);
  });

  it('publishes one valid StructureDefinition per profiled type', () => {
    const sds = consortiumProfiles();
    expect(sds.map((s) => s.type).sort()).toEqual(['Condition', 'DiagnosticReport', 'Encounter', 'ImagingStudy', 'MedicationRequest', 'Observation', 'Patient', 'ServiceRequest']);
    for (const sd of sds) {
      expect(() => sharedValidator()(sd)).not.toThrow();
      expect(profileFor(sd.type!)).toBe(sd.url);
    }
  });
});
