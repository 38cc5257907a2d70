import { blockingKeys, lookupKeys } from '../../mpi/blocking';
import { scorePair, verdict } from '../../mpi/compare';
import { featuresOf } from '../../mpi/features';
import { fuzzySyllables, nameSyllables, normalizeIdNumber, normalizeName, normalizePhone, swappedDate } from '../../mpi/normalize';
import { compileRules, loadRules, type RulesFile } from '../../mpi/rules';
import { facilityPatient, idNumber, type Person } from '../support/people';

const rules = loadRules();
const f = (p: Person) => featuresOf(facilityPatient('x', p));
const score = (a: Person, b: Person) => scorePair(f(a), f(b), rules);

describe('normalisers', () => {
  it('brings traditional, full-width and spaced names to one form', () => {
    expect(normalizeName('張偉')).toBe('张伟');
    expect(normalizeName('王　小明')).toBe('王小明');
    expect(normalizeName('王 小明')).toBe('王小明');
    expect(normalizeName('阿依古丽·买买提')).toBe('阿依古丽买买提');
    expect(normalizeName('ＺＨＡＮＧ Wei')).toBe('zhangwei');
  });

  it('reads names as pinyin, surnames as surnames, and folds regional confusions', () => {
    expect(nameSyllables('王晓明')).toEqual(nameSyllables('王小明'));
    expect(nameSyllables('曾小明')[0]).toBe('zeng');
    expect(nameSyllables('单田芳')[0]).toBe('shan');
    expect(fuzzySyllables(['zhang', 'ning'])).toEqual(['zan', 'nin']);
    expect(fuzzySyllables(['lin'])).toEqual(fuzzySyllables(['ning']));
  });

  it('checks ID numbers and upgrades the 15-digit form', () => {
    const id = idNumber('1965-03-12', 123);
    expect(normalizeIdNumber(id)).toMatchObject({ valid: true, value: id, birthDate: '1965-03-12', sex: 'male' });
    const legacy = `${id.slice(0, 6)}${id.slice(8, 17)}`;
    expect(normalizeIdNumber(legacy)).toMatchObject({ valid: true, value: id });
    const typo = id.slice(0, 10) + ((Number(id[10]) + 1) % 10) + id.slice(11);
    expect(normalizeIdNumber(typo).valid).toBe(false);
  });

  it('brings phones to their national digits', () => {
    expect(normalizePhone('+86 138-0013-8000')).toBe('13800138000');
    expect(normalizePhone('0086 13800138000')).toBe('13800138000');
    expect(normalizePhone('(027) 8765 4321')).toBe('02787654321');
    expect(normalizePhone('12')).toBeUndefined();
  });

  it('swaps day and month only when that is another date', () => {
    expect(swappedDate('1980-03-05')).toBe('1980-05-03');
    expect(swappedDate('1980-03-25')).toBeUndefined();
    expect(swappedDate('1980-04-04')).toBeUndefined();
  });
});

describe('comparators and link rules', () => {
  const base: Person = { name: '王晓明', gender: 'male', birthDate: '1980-03-05', phone: '13800138000', address: '江城市东湖区解放路12号' };

  it('links on a valid ID number alone', () => {
    const id = idNumber('1980-03-05', 11);
    const s = score({ idNumber: id, name: '王晓明' }, { idNumber: id, name: '王小明', birthDate: '1980-03-05' });
    expect(s.levels.idNumber).toBe('exact');
    expect(s.rule).toBe('id-number');
    expect(verdict(s, rules)).toBe('MATCH');
  });

  it('treats a different valid ID number as two people, a failed one as no evidence', () => {
    const a = idNumber('1980-03-05', 11);
    const b = idNumber('1980-03-05', 13);
    const two = score({ ...base, idNumber: a }, { ...base, idNumber: b });
    expect(two.veto).toBe('different-id-numbers');
    expect(verdict(two, rules)).toBe('POSSIBLE_MATCH');
    expect(verdict(score({ ...base, name: '王伟', idNumber: a }, { ...base, name: '王伟', birthDate: '1975-08-21', idNumber: b }), rules)).toBe('NO_MATCH');
    const typo = a.slice(0, 15) + ((Number(a[15]) + 1) % 10) + a.slice(16);
    const withTypo = score({ ...base, idNumber: a }, { ...base, idNumber: typo });
    expect(withTypo.levels.idNumber).toBeUndefined();
    expect(withTypo.score).toBe(score(base, base).score);
  });

  it('links homophones and traditional characters with the same birth date', () => {
    expect(score(base, { ...base, name: '王小明', phone: '13900000000' }).levels.name).toBe('phonetic');
    expect(verdict(score(base, { ...base, name: '王小明', phone: '13900000000' }), rules)).toBe('MATCH');
    expect(score(base, { ...base, name: '王曉明' }).levels.name).toBe('exact');
  });

  it('tolerates a day/month swap', () => {
    const s = score(base, { ...base, birthDate: '1980-05-03' });
    expect(s.levels.birthDate).toBe('transposed');
    expect(verdict(s, rules)).toBe('MATCH');
  });

  it('never auto-links twins: same birth date, phone and address, another given name', () => {
    const twin = score({ ...base, name: '王子涵' }, { ...base, name: '王子轩' });
    expect(twin.levels.name).toBe('different');
    expect(twin.rule).toBeUndefined();
    expect(verdict(twin, rules)).not.toBe('MATCH');
  });

  it('never auto-links a father and son of the same name and address', () => {
    const s = score({ ...base, birthDate: '1955-07-20' }, { ...base, birthDate: '1982-11-02' });
    expect(s.levels.birthDate).toBe('different');
    expect(verdict(s, rules)).not.toBe('MATCH');
  });

  it('counts a shared phone and address once (household)', () => {
    const both = score(base, base).score;
    const phoneOnly = score(base, { ...base, address: undefined }).score;
    expect(both - phoneOnly).toBeLessThan(1e-9 + Math.max(0, rules.weights.address.exact - rules.weights.phone.exact));
  });

  it('compares Latin and long transliterated names by Jaro-Winkler', () => {
    expect(score({ ...base, name: 'Jonathon Smith' }, { ...base, name: 'Jonathan Smith' }).levels.name).toBe('close');
    expect(score({ ...base, name: '阿依古丽买买提' }, { ...base, name: '阿依古丽买买江' }).levels.name).toBe('close');
  });

  it('files registrations under keys that survive homophones and swaps', () => {
    const a = f(base);
    const b = f({ ...base, name: '王小明', birthDate: '1980-05-03', phone: undefined });
    const filed = blockingKeys(b, rules.blocking.keys);
    expect(lookupKeys(a, rules.blocking.keys).some((k) => filed.includes(k))).toBe(true);
    expect(blockingKeys(a, rules.blocking.keys)).toContain('ph:13800138000');
  });
});

describe('rules file', () => {
  const raw = (): RulesFile => JSON.parse(JSON.stringify(rules)) as RulesFile;
  it('refuses unknown fields, levels, keys and inverted thresholds', () => {
    expect(() => compileRules({ ...raw(), blocking: { keys: ['shoeSize' as never], maxBlockSize: 10 } })).toThrow(/unknown blocking key 'shoeSize'/);
    const r = raw();
    (r.fields.name as Record<string, unknown>).nickname = { m: 0.1, u: 0.1 };
    expect(() => compileRules(r)).toThrow(/fields.name.nickname is not a level/);
    expect(() => compileRules({ ...raw(), thresholds: { autoLink: 5, review: 10 } })).toThrow(/autoLink must be above/);
    expect(() => compileRules({ ...raw(), autoLinkRequires: [{ rule: 'x', all: { name: ['identical'] } }] })).toThrow(/'identical' is not a level of name/);
  });

  it('turns m and u into log2 weights', () => {
    expect(rules.weights.idNumber.exact).toBeCloseTo(Math.log2(0.999 / 1e-7), 6);
    expect(rules.weights.name.different).toBeLessThan(0);
  });
});
