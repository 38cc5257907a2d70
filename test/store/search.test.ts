import { DRIVERS, openTestStore, type TestStore } from '../support/stores';
import { ID_SYSTEM, LOINC, MRN_CITY, observations, patients, transaction } from '../support/fixtures';
import { processBundle } from '../../store/bundle';
import type { Repository } from '../../store/repository';
import { FhirError } from '../../store/errors';

describe.each(DRIVERS)('search on %s', (driver) => {
  let store: TestStore;
  let repo: Repository;

  beforeAll(async () => {
    store = await openTestStore(driver);
    repo = store.repo;
    await processBundle(repo, transaction([...patients, ...observations]));
    await processBundle(
      repo,
      transaction([
        { resourceType: 'Organization', id: 'org-city', name: '市第一人民医院' },
        {
          resourceType: 'DiagnosticReport',
          id: 'dr1',
          status: 'final',
          code: { coding: [{ system: LOINC, code: '58410-2', display: 'CBC panel' }] },
          subject: { reference: 'Patient/p-wang' },
          performer: [{ reference: 'Organization/org-city' }],
          result: [{ reference: 'Observation/o1' }, { reference: 'Observation/o2' }],
          effectiveDateTime: '2024-03-01',
        },
        { resourceType: 'Provenance', id: 'prov1', target: [{ reference: 'DiagnosticReport/dr1' }], recorded: '2024-03-01T12:00:00Z', agent: [{ who: { reference: 'Organization/org-city' } }] },
        { resourceType: 'RiskAssessment', id: 'ra1', status: 'final', subject: { reference: 'Patient/p-wang' }, prediction: [{ probabilityDecimal: 0.25 }] },
        { resourceType: 'RiskAssessment', id: 'ra2', status: 'final', subject: { reference: 'Patient/p-li' }, prediction: [{ probabilityDecimal: 0.8 }] },
      ]),
    );
  });
  afterAll(() => store.close());

  const ids = async (type: string, params: [string, string][]): Promise<string[]> =>
    (await repo.search(type, params)).matches.map((m) => m.id).sort();

  describe('token', () => {
    it('matches system|code, code, |code and system|', async () => {
      expect(await ids('Patient', [['identifier', `${ID_SYSTEM}|110101199003074514`]])).toEqual(['p-wang']);
      expect(await ids('Patient', [['identifier', 'MRN002']])).toEqual(['p-li']);
      expect(await ids('Patient', [['identifier', '|NOSYS-1']])).toEqual(['p-jose']);
      expect(await ids('Patient', [['identifier', '|MRN002']])).toEqual([]);
      expect(await ids('Patient', [['identifier', `${MRN_CITY}|`]])).toEqual(['p-li', 'p-wang', 'p-wide']);
      expect(await ids('Observation', [['code', `${LOINC}|2345-7`]])).toEqual(['o3', 'o5']);
      expect(await ids('Observation', [['code', 'urn:local:lis|L718-7']])).toEqual(['o1', 'o2', 'o4']);
    });

    it('ORs comma-separated values and ANDs repeated parameters', async () => {
      expect(await ids('Observation', [['status', 'final,preliminary']])).toHaveLength(5);
      expect(await ids('Observation', [['code', '2345-7'], ['status', 'preliminary']])).toEqual(['o5']);
    });

    it(':not excludes matches, including resources with no value', async () => {
      expect(await ids('Observation', [['status:not', 'final']])).toEqual(['o5']);
      expect(await ids('Patient', [['gender:not', 'male']])).toEqual(['p-li', 'p-wide']);
    });

    it(':text searches display and text, accent- and case-insensitively', async () => {
      expect(await ids('Observation', [['code:text', 'hemo']])).toEqual(['o1', 'o2', 'o4']);
      expect(await ids('Observation', [['code:text', '葡萄']])).toEqual(['o3', 'o5']);
    });

    it('codes are case-sensitive', async () => {
      expect(await ids('Patient', [['identifier', 'mrn002']])).toEqual([]);
    });
  });

  describe('string', () => {
    it('defaults to starts-with on every name part, and works for Chinese', async () => {
      expect(await ids('Patient', [['name', '王']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['name', '王小明']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['given', '小']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['family', '李']])).toEqual(['p-li']);
      expect(await ids('Patient', [['name', '明']])).toEqual([]);
    });

    it('ignores case, accents and full/half width', async () => {
      expect(await ids('Patient', [['family', 'nunez']])).toEqual(['p-jose']);
      expect(await ids('Patient', [['given', 'JOSE']])).toEqual(['p-jose']);
      expect(await ids('Patient', [['family', 'wang']])).toEqual(['p-wide']);
      expect(await ids('Patient', [['name', 'ｗａｎ']])).toEqual(['p-wide']);
    });

    it(':exact matches the whole value as written', async () => {
      expect(await ids('Patient', [['family:exact', 'Núñez']])).toEqual(['p-jose']);
      expect(await ids('Patient', [['family:exact', 'Nunez']])).toEqual([]);
      expect(await ids('Patient', [['family:exact', 'Núñ']])).toEqual([]);
    });

    it(':contains matches anywhere', async () => {
      expect(await ids('Patient', [['name:contains', '明']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['address:contains', '西湖']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['name:contains', 'ñe']])).toEqual(['p-jose']);
    });

    it('treats LIKE wildcards in values literally', async () => {
      expect(await ids('Patient', [['name:contains', '%']])).toEqual([]);
      expect(await ids('Patient', [['name', '_']])).toEqual([]);
    });
  });

  describe('date', () => {
    it('supports partial dates at year, month and day precision', async () => {
      expect(await ids('Observation', [['date', '2024']])).toEqual(['o1', 'o2', 'o4']);
      expect(await ids('Observation', [['date', '2024-03']])).toEqual(['o1', 'o4']);
      expect(await ids('Observation', [['date', '2024-03-01']])).toEqual(['o1']);
      expect(await ids('Patient', [['birthdate', '1985']])).toEqual(['p-li']);
      expect(await ids('Patient', [['birthdate', '1985-11-20']])).toEqual([]);
    });

    it('supports every prefix', async () => {
      expect(await ids('Observation', [['date', 'gt2024-05-20']])).toEqual(['o5']);
      expect(await ids('Observation', [['date', 'ge2024-05-20']])).toEqual(['o2', 'o5']);
      expect(await ids('Observation', [['date', 'lt2024-03-01']])).toEqual(['o3']);
      expect(await ids('Observation', [['date', 'le2024-03-01']])).toEqual(['o1', 'o3']);
      expect(await ids('Observation', [['date', 'ne2024']])).toEqual(['o3', 'o5']);
      expect(await ids('Observation', [['date', 'sa2024-12-31']])).toEqual(['o5']);
      expect(await ids('Observation', [['date', 'eb2024-01-01']])).toEqual(['o3']);
      expect(await ids('Observation', [['date', 'ap2024-03-10']])).toEqual(expect.arrayContaining(['o1', 'o4']));
      expect(await ids('Observation', [['date', 'ge2024-03-01'], ['date', 'lt2024-04']])).toEqual(['o1', 'o4']);
    });

    it('ap at the ends of the calendar widens to an open range instead of failing in SQL', async () => {
      // The 10% margin reaches before year 1 (or past 9999), which PostgreSQL cannot read as an ISO date.
      expect(await ids('Patient', [['birthdate', 'ap0001']])).toEqual([]);
      expect(await ids('Observation', [['date', 'ap0001-01-01T00:00:00+14:00']])).toEqual([]);
      expect(await ids('Observation', [['date', 'ap9999-12-31']])).toEqual([]);
      expect(await ids('Observation', [['_lastUpdated', 'ap9999-12-31']])).toEqual([]);
    });

    it('compares instants across time zones', async () => {
      // o3 is 2023-12-31T23:30+08:00 = 15:30Z on the 31st.
      expect(await ids('Observation', [['date', 'lt2023-12-31T16:00:00Z']])).toEqual(['o3']);
      expect(await ids('Observation', [['date', 'gt2023-12-31T16:00:00Z'], ['code', '2345-7']])).toEqual(['o5']);
    });

    it('_lastUpdated uses the store timestamp', async () => {
      expect(await ids('Observation', [['_lastUpdated', 'gt2000-01-01']])).toHaveLength(5);
      expect(await ids('Observation', [['_lastUpdated', 'lt2000-01-01']])).toEqual([]);
    });
  });

  describe('reference', () => {
    it('accepts id, Type/id and absolute URLs', async () => {
      expect(await ids('Observation', [['patient', 'p-li']])).toEqual(['o4', 'o5']);
      expect(await ids('Observation', [['subject', 'Patient/p-li']])).toEqual(['o4', 'o5']);
      expect(await ids('Observation', [['subject:Patient', 'p-li']])).toEqual(['o4', 'o5']);
      expect(await ids('Observation', [['subject', 'http://example.org/fhir/Patient/p-li']])).toEqual(['o4', 'o5']);
    });

    it('follows chains', async () => {
      expect(await ids('Observation', [['subject:Patient.identifier', `${ID_SYSTEM}|110101199003074514`]])).toEqual(['o1', 'o2', 'o3']);
      expect(await ids('Observation', [['patient.name', '李']])).toEqual(['o4', 'o5']);
      expect(await ids('DiagnosticReport', [['result.code', '718-7']])).toEqual(['dr1']);
    });

    it(':missing finds resources with and without a value', async () => {
      expect(await ids('Patient', [['address:missing', 'false']])).toEqual(['p-wang']);
      expect(await ids('Patient', [['telecom:missing', 'true']])).toEqual(['p-jose', 'p-li', 'p-wide']);
    });
  });

  describe('quantity and number', () => {
    it('quantity with prefixes, precision and units', async () => {
      expect(await ids('Observation', [['value-quantity', 'gt12']])).toEqual(['o1', 'o4']);
      expect(await ids('Observation', [['value-quantity', 'le11']])).toEqual(['o2', 'o3', 'o5']);
      expect(await ids('Observation', [['value-quantity', '13.2|http://unitsofmeasure.org|g/dL']])).toEqual(['o1']);
      // 13 means [12.5, 13.5): the precision written is the precision searched.
      expect(await ids('Observation', [['value-quantity', '13|http://unitsofmeasure.org|g/dL']])).toEqual(['o1', 'o4']);
      expect(await ids('Observation', [['value-quantity', '13.0|http://unitsofmeasure.org|g/dL']])).toEqual([]);
      expect(await ids('Observation', [['value-quantity', 'ge6||mmol/L']])).toEqual(['o3', 'o5']);
      expect(await ids('Observation', [['value-quantity', 'ap12']])).toEqual(['o1', 'o2', 'o4']);
    });

    it('number with prefixes', async () => {
      expect(await ids('RiskAssessment', [['probability', 'gt0.5']])).toEqual(['ra2']);
      expect(await ids('RiskAssessment', [['probability', '0.25']])).toEqual(['ra1']);
      expect(await ids('RiskAssessment', [['probability', 'ne0.25']])).toEqual(['ra2']);
    });
  });

  describe('result shaping', () => {
    it('_id', async () => {
      expect(await ids('Patient', [['_id', 'p-li,p-jose']])).toEqual(['p-jose', 'p-li']);
    });

    it('_sort ascending and descending, by value and by missing value', async () => {
      const sorted = async (s: string): Promise<string[]> => (await repo.search('Observation', [['_sort', s]])).matches.map((m) => m.id);
      expect(await sorted('date')).toEqual(['o3', 'o1', 'o4', 'o2', 'o5']);
      expect(await sorted('-date')).toEqual(['o5', 'o2', 'o4', 'o1', 'o3']);
      const byBirth = (await repo.search('Patient', [['_sort', '-birthdate']])).matches.map((m) => m.id);
      expect(byBirth).toEqual(['p-wide', 'p-wang', 'p-li', 'p-jose']);
      const byName = (await repo.search('Patient', [['_sort', 'family']])).matches.map((m) => m.id);
      expect(byName).toEqual(['p-jose', 'p-wide', 'p-li', 'p-wang']);
    });

    it('_include and _revinclude', async () => {
      const inc = await repo.search('DiagnosticReport', [['_id', 'dr1'], ['_include', 'DiagnosticReport:result'], ['_include', 'DiagnosticReport:subject']]);
      expect(inc.matches.map((m) => m.id)).toEqual(['dr1']);
      expect(inc.included.map((m) => m.reference).sort()).toEqual(['Observation/o1', 'Observation/o2', 'Patient/p-wang']);
      const rev = await repo.search('DiagnosticReport', [['_revinclude', 'Provenance:target']]);
      expect(rev.included.map((m) => m.reference)).toEqual(['Provenance/prov1']);
      const iter = await repo.search('Observation', [['_id', 'o1'], ['_revinclude', 'DiagnosticReport:result'], ['_include:iterate', 'DiagnosticReport:performer']]);
      expect(iter.included.map((m) => m.reference).sort()).toEqual(['DiagnosticReport/dr1', 'Organization/org-city']);
    });

    it('_total=accurate and _summary=count', async () => {
      const r = await repo.search('Observation', [['_count', '2'], ['_total', 'accurate']]);
      expect(r.matches).toHaveLength(2);
      expect(r.total).toBe(5);
      const c = await repo.search('Observation', [['patient', 'p-wang'], ['_summary', 'count']]);
      expect(c.total).toBe(3);
      expect(c.matches).toEqual([]);
    });

    it('pages forward and back with cursors, for any sort', async () => {
      for (const sort of [[], [['_sort', '-date']], [['_sort', 'status,-date']]] as [string, string][][]) {
        const all = (await repo.search('Observation', [...sort, ['_count', '100']])).matches.map((m) => m.id);
        const { query, ...firstPage } = await repo.search('Observation', [...sort, ['_count', '2']]);
        let page = firstPage;
        const pages = [page];
        const seen = page.matches.map((m) => m.id);
        while (page.next) {
          page = await repo.runSearch({ ...query, cursor: page.next });
          pages.push(page);
          seen.push(...page.matches.map((m) => m.id));
        }
        expect(seen).toEqual(all);
        expect(pages).toHaveLength(3);
        // From the last page, previous gives back the middle page.
        const back = await repo.runSearch({ ...query, cursor: pages[2].previous });
        expect(back.matches.map((m) => m.id)).toEqual(pages[1].matches.map((m) => m.id));
        const first = await repo.runSearch({ ...query, cursor: back.previous });
        expect(first.matches.map((m) => m.id)).toEqual(pages[0].matches.map((m) => m.id));
        expect(first.previous).toBeUndefined();
      }
    });
  });

  describe('errors', () => {
    const fails = async (type: string, params: [string, string][], strict = false): Promise<FhirError> => {
      try {
        await repo.search(type, params, { strict });
      } catch (e) {
        if (e instanceof FhirError) return e;
        throw e;
      }
      throw new Error('expected a FhirError');
    };

    it('lenient mode reports unknown parameters; strict mode refuses them', async () => {
      const r = await repo.search('Patient', [['bogus', 'x'], ['gender', 'female']]);
      expect(r.query.ignored).toEqual(['bogus']);
      expect(r.matches.map((m) => m.id).sort()).toEqual(['p-li', 'p-wide']);
      const e = await fails('Patient', [['bogus', 'x']], true);
      expect(e.status).toBe(400);
      expect(e.message).toContain('bogus');
    });

    it('refuses a NUL character with a 400 naming the parameter, in any kind of value', async () => {
      for (const [type, name] of [['Patient', 'name'], ['Patient', 'identifier'], ['Organization', '_profile'], ['Observation', 'subject:Patient.name'], ['Patient', 'name:exact']]) {
        const e = await fails(type, [[name, 'a\u0000b']]);
        expect(e.status).toBe(400);
        expect(e.outcome.issue[0].expression).toEqual([name]);
        expect(e.message).toContain('NUL');
      }
    });

    it('refuses a _cursor whose values do not fit the _sort, naming _cursor', async () => {
      const cursor = (values: unknown[]): string => Buffer.from(JSON.stringify([values, 1, 0])).toString('base64url');
      for (const [type, sort, values] of [
        ['Patient', 'birthdate', ['x']],
        ['Patient', '-_lastUpdated', [{}]],
        ['Observation', 'value-quantity', ['x']],
        ['Observation', 'value-quantity', [true]],
        ['Patient', 'name', [[]]],
        ['Patient', 'name', ['a\u0000']],
        ['Patient', '_id', [5]],
      ] as [string, string, unknown[]][]) {
        const e = await fails(type, [['_cursor', cursor(values)], ['_sort', sort]]);
        expect(e.status).toBe(400);
        expect(e.outcome.issue[0].expression).toEqual(['_cursor']);
      }
      // The values a page link carries still page.
      expect((await repo.search('Observation', [['_sort', '-value-quantity'], ['_cursor', cursor(['infinity'])]])).matches).toHaveLength(5);
    });

    it('rejects malformed values with a 400 naming the parameter', async () => {
      for (const [name, value] of [
        ['birthdate', '1990-13-01'],
        ['value-quantity', 'gtabc'],
        ['_count', '-1'],
        ['_cursor', 'garbage'],
        ['subject', 'Practitioner/x y'],
        ['gender:below', 'x'],
      ] as [string, string][]) {
        const e = await fails(name === 'birthdate' || name === 'gender:below' ? 'Patient' : 'Observation', [[name, value]]);
        expect(e.status).toBe(400);
        expect(e.outcome.issue[0].expression?.[0] ?? e.message).toContain(name.split(':')[0]);
      }
    });
  });
});
