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
