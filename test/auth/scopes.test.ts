import { breakGlassReason } from '../../gateway/auth/authenticate';
import { allows, covers, formatScope, parseScope } from '../../gateway/auth/scopes';

const scopes = (...s: string[]) => s.map((x) => parseScope(x)!);

describe('SMART scopes', () => {
  it.each([
    ['system/Observation.rs', 'system/Observation.rs'],
    ['system/*.cruds', 'system/*.cruds'],
    ['user/Patient.r', 'user/Patient.r'],
    ['system/Observation.read', 'system/Observation.rs'],
    ['system/Observation.write', 'system/Observation.cud'],
    ['user/*.*', 'user/*.cruds'],
  ])('parses %s as %s', (text, v2) => {
    expect(formatScope(parseScope(text)!)).toBe(v2);
  });

  it.each(['openid', 'launch/patient', 'system/Observation.sr', 'system/Observation.rr', 'system/observation.rs', 'system/Observation.rs?category=laboratory', 'admin/Patient.r', 'system/Patient.'])(
    'rejects %s',
    (text) => {
      expect(parseScope(text)).toBeNull();
    },
  );

  it('allows an interaction by type or wildcard, and never for patient/ scopes', () => {
    const granted = scopes('system/Observation.rs', 'system/*.r', 'patient/*.cruds');
    expect(allows(granted, 'Observation', 's')).toBe(true);
    expect(allows(granted, 'Condition', 'r')).toBe(true);
    expect(allows(granted, 'Condition', 's')).toBe(false);
    expect(allows(granted, 'Observation', 'c')).toBe(false);
    expect(allows(granted, '*', 'r')).toBe(true);
    expect(allows(granted, '*', 's')).toBe(false);
  });

  it('a request is covered only by a grant of the same context with at least its letters', () => {
    const allowed = scopes('system/*.rs', 'system/Observation.cu');
    expect(covers(allowed, parseScope('system/Patient.r')!)).toBe(true);
    expect(covers(allowed, parseScope('system/Observation.cu')!)).toBe(true);
    expect(covers(allowed, parseScope('system/Observation.crus')!)).toBe(false);
    expect(covers(allowed, parseScope('user/Patient.r')!)).toBe(false);
    expect(covers(allowed, parseScope('system/*.cruds')!)).toBe(false);
  });
});

describe('X-Break-Glass', () => {
  it('reads a percent-encoded reason, and refuses an empty or overlong one', () => {
    expect(breakGlassReason(encodeURIComponent(' 急诊抢救 '))).toBe('急诊抢救');
    expect(breakGlassReason('unconscious patient')).toBe('unconscious patient');
    expect(breakGlassReason('100% sure')).toBe('100% sure');
    expect(breakGlassReason('   ')).toBeUndefined();
    expect(breakGlassReason('x'.repeat(501))).toBeUndefined();
  });
});
