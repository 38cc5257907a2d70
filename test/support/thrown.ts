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

/** What `fn` rejects with; fails the test if it resolves. */
export async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
