import { MappingError } from '../../mappers/types';

/** The MappingError `fn` throws; fails the test if it throws nothing or something else. */
export function thrown(fn: () => unknown): MappingError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MappingError) return e;
    throw e;
  }
  throw new Error('expected a MappingError');
}
