import type { Resource } from '@medplum/fhirtypes';
import { sharedValidator } from '../support/stores';
import { FhirError } from '../../store/errors';

const validate = (r: unknown): void => sharedValidator()(r as Resource);
const refusal = (r: unknown): string[] | undefined => {
  try {
    validate(r);
    return undefined;
  } catch (e) {
    if (e instanceof FhirError) return e.expression;
    throw e;
  }
};

describe('structural validation reads the R4 patterns as XML Schema does', () => {
  it('accepts an ideographic space inside a string (李　凯成)', () => {
    expect(refusal({ resourceType: 'Patient', name: [{ text: '李\u3000凯成' }], address: [{ text: '云溪市\u3000东港区' }] })).toBeUndefined();
  });

  it('still refuses empty strings and spaces inside URIs', () => {
    expect(refusal({ resourceType: 'Patient', name: [{ text: '' }] })).toEqual(['Patient.name[0].text']);
    expect(refusal({ resourceType: 'Patient', implicitRules: 'http://example.org/a b' })).toEqual(['Patient.implicitRules']);
  });
});

describe('structural validation refuses what the schema alone lets through', () => {
  it('refuses a primitive or an array where a complex type belongs, naming the element', () => {
    // The schema's complex types lack `type: object`, so JSON Schema alone would take these.
    expect(refusal({ resourceType: 'Observation', status: 'final', code: 5 })).toEqual(['Observation.code']);
    expect(refusal({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: [] })).toEqual(['Observation.subject']);
    expect(refusal({ resourceType: 'Patient', extension: [[[]]] })).toEqual(['Patient.extension[0]']);
    expect(refusal({ resourceType: 'Patient', name: ['王小明'] })).toEqual(['Patient.name[0]']);
  });

  it('refuses NUL and unpaired surrogates, which PostgreSQL cannot store, naming the element', () => {
    expect(refusal({ resourceType: 'Patient', name: [{ text: '王\u0000小明' }] })).toEqual(['Patient.name[0].text']);
    expect(refusal({ resourceType: 'Patient', identifier: [{ system: 'urn:x', value: 'a\ud800' }] })).toEqual(['Patient.identifier[0].value']);
    expect(refusal({ resourceType: 'Patient', name: [{ text: '\udc00李' }] })).toEqual(['Patient.name[0].text']);
    // In a property's name too (JSON text can carry it as \u0000): refused as unstorable, not just as unknown.
    expect(() => validate({ resourceType: 'Patient', contact: [{ ['na\u0000me']: { text: 'x' } }] })).toThrow("Invalid value at 'Patient.contact[0].na\u0000me': a NUL");
    // A paired surrogate is an ordinary character outside the BMP.
    expect(refusal({ resourceType: 'Patient', name: [{ text: '𠀀𪚥' }] })).toBeUndefined();
  });
});
