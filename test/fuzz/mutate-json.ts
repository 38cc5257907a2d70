/**
 * Mutations of valid FHIR JSON, each a request body with what was done to it. `path` is set
 * when the damage sits at one element, so the answer can be expected to name it.
 */
import type { Rng } from '../../fixtures/synthetic/random';
import { hostileString } from '../support/fuzz';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface Mutant {
  /** A value to send as JSON, or raw text. */
  body: Json | { text: string };
  mutation: string;
  path?: string;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Every element below the root, with its FHIRPath-like path (Patient.name[0].given[1]). */
function elements(root: Obj, type: string): { holder: Obj | Json[]; key: string | number; path: string }[] {
  const out: { holder: Obj | Json[]; key: string | number; path: string }[] = [];
  const walk = (node: Json, path: string): void => {
    if (Array.isArray(node)) node.forEach((v, i) => (out.push({ holder: node, key: i, path: `${path}[${i}]` }), walk(v, `${path}[${i}]`)));
    else if (node && typeof node === 'object') {
      for (const k of Object.keys(node)) {
        if (path === type && k === 'resourceType') continue;
        out.push({ holder: node, key: k, path: `${path}.${k}` });
        walk(node[k], `${path}.${k}`);
      }
    }
  };
  walk(root, type);
  return out;
}

function otherValue(rng: Rng, depth = 0): Json {
  switch (rng.int(0, depth > 1 ? 4 : 6)) {
    case 0:
      return rng.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1]);
    case 1:
      return hostileString(rng);
    case 2:
      return rng.chance(0.5);
    case 3:
      return null;
    case 4:
      return '';
    case 5:
      return [otherValue(rng, depth + 1)];
    default:
      return { [rng.pick(['value', 'x', 'reference', 'extension', 'resourceType'])]: otherValue(rng, depth + 1) };
  }
}

/**
 * `depth` levels of extension-in-extension, or of bare arrays, as JSON text (JSON.stringify
 * itself overflows the stack on such a value): recursion for every walker of the tree.
 */
function deep(rng: Rng, depth: number): string {
  if (rng.chance(0.5)) return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  return `[${'{"url":"http://example.org/x","extension":['.repeat(depth)}{"url":"http://example.org/x","valueString":"leaf"}${']}'.repeat(depth)}]`;
}

const BAD_IDS = ['', 'a b', 'a/b', '../etc/passwd', 'x'.repeat(65), '王', '%00', 'id\u0000', '?', '#', ' ', 'Patient/1'];
const BAD_REFERENCES = ['', 'Patient/', '/Patient/1', 'Patient/../../x', 'urn:uuid:', 'urn:uuid:not-in-bundle', '#', '#missing', 'Nonsense/1', 'Patient/a b', 'http://', 'Patient?identifier=', 'Patient?nonsense=1', 'Patient/1/_history/x'];
const BAD_DATES = ['2024-13-45', '2024-02-30', '24-01-01', '2024-01-01T25:00:00Z', '2024-01-01T10:00', '0000-01-01', '1e999', 'now', '2024-01-01T10:00:00+15:00'];

/** One mutation of a valid resource. */
export function mutateResource(rng: Rng, resource: Obj): Mutant {
  const r = clone(resource);
  const type = String(r.resourceType);
  const els = elements(r, type);
  const at = els.length > 0 ? rng.pick(els) : undefined;
  const set = (v: Json): void => {
    (at!.holder as Record<string | number, Json>)[at!.key] = v;
  };
  switch (rng.int(0, 13)) {
    case 0:
      delete r.resourceType;
      return { body: r, mutation: 'no resourceType' };
    case 1:
      r.resourceType = rng.pick<Json>(['Nonsense', 'patient', '', 42, null, ['Patient'], 'Bundle', '__proto__']);
      return { body: r, mutation: `resourceType ${JSON.stringify(r.resourceType)}` };
    case 2:
      r.id = rng.pick(BAD_IDS);
      return { body: r, mutation: `id ${JSON.stringify(r.id)}`, path: `${type}.id` };
    case 3: {
      const depth = rng.pick([30, 200, 2000, 20000]);
      return { body: { text: JSON.stringify(r).replace(/^\{/, `{"extension":${deep(rng, depth)},`) }, mutation: `nesting ${depth} deep` };
    }
    case 4: {
      // 50,000 takes about 7 s to index on PGlite: see the note on per-resource index limits in the fuzz report.
      const n = rng.pick([1000, 1000, 1000, 10000]);
      r.identifier = Array.from({ length: n }, (_, i) => ({ system: 'urn:fuzz', value: `v${i}` }));
      return { body: r, mutation: `${n} identifiers` };
    }
    case 5:
      r.subject = { reference: rng.pick(BAD_REFERENCES) };
      return { body: r, mutation: `subject ${JSON.stringify(r.subject)}` };
    case 6: {
      const dates = els.filter((e) => /date|Date|period|issued|recorded|effective/.test(String(e.key)) && typeof (e.holder as Record<string | number, Json>)[e.key] === 'string');
      const d = dates.length > 0 ? rng.pick(dates) : undefined;
      if (!d) break;
      (d.holder as Record<string | number, Json>)[d.key] = rng.pick(BAD_DATES);
      return { body: r, mutation: `invalid date at ${d.path}`, path: d.path };
    }
    case 7: {
      // JSON.parse keeps these as own keys, which is how a hostile client sends them.
      const key = rng.pick(['__proto__', 'constructor', 'prototype']);
      const text = JSON.stringify(r).replace(/^\{/, `{"${key}":{"polluted":true,"toString":1},`);
      return { body: { text }, mutation: `${key} key`, path: `${type}.${key}` };
    }
    case 8: {
      const text = JSON.stringify(r);
      const cut = rng.pick(['truncate', 'trailing', 'nan', 'quotes', 'bom', 'empty', 'array', 'bare']);
      const broken: Record<string, string> = {
        truncate: text.slice(0, rng.int(0, text.length - 1)),
        trailing: `${text}}`,
        nan: text.replace(/:\s*[-\d.]+/, ':NaN'),
        quotes: text.replace(/"/g, "'"),
        bom: `\ufeff${text}`,
        empty: '',
        array: `[${text}]`,
        bare: rng.pick(['null', '42', '"Patient"', 'true']),
      };
      return { body: { text: broken[cut] }, mutation: `JSON text: ${cut}` };
    }
    case 9:
      if (at) {
        set(hostileString(rng));
        return { body: r, mutation: `hostile string at ${at.path}`, path: at.path };
      }
      break;
    case 10:
      if (at) {
        delete (at.holder as Record<string | number, Json>)[at.key];
        return { body: r, mutation: `removed ${at.path}` };
      }
      break;
  }
  if (!at) return { body: r, mutation: 'unchanged' };
  set(otherValue(rng));
  return { body: r, mutation: `wrong type at ${at.path}`, path: at.path };
}

/** A transaction or batch of mutated (and some valid) resources, with broken bundle structure. */
export function mutateBundle(rng: Rng, resources: Obj[]): Mutant {
  const picked = Array.from({ length: rng.int(1, 5) }, () => clone(rng.pick(resources)));
  const entry: Json[] = picked.map((res) => {
    const resource = rng.chance(0.3) ? (mutateResource(rng, res).body as Json) : res;
    const method = rng.pick(['POST', 'PUT', 'PUT', 'GET', 'DELETE']);
    const url = method === 'POST' ? String(res.resourceType) : `${String(res.resourceType)}/${String(res.id)}`;
    return { fullUrl: `urn:uuid:${uuid(rng)}`, resource, request: { method, url } };
  });
  const bundle: Obj = { resourceType: 'Bundle', type: rng.pick(['transaction', 'transaction', 'batch', 'searchset', 'document', '', 7]), entry };
  let mutation = `bundle ${JSON.stringify(bundle.type)}`;
  const e = rng.int(0, entry.length - 1);
  const target = entry[e] as Obj;
  switch (rng.int(0, 9)) {
    case 0:
      entry[e] = rng.pick<Json>([null, 'entry', 5, [], {}]);
      mutation += `, entry[${e}] is ${JSON.stringify(entry[e])}`;
      break;
    case 1:
      target.request = rng.pick<Json>([null, {}, { method: 'PATCH', url: 'Patient/1' }, { method: 'GET' }, { method: 5, url: [] }, { method: 'POST', url: hostileString(rng) }, { method: 'PUT', url: 'Patient' }, { method: 'GET', url: 'Patient/1/_history/x' }]);
      mutation += `, entry[${e}].request ${JSON.stringify(target.request).slice(0, 80)}`;
      break;
    case 2: {
      // A cycle of urn:uuid references between two creates: legal FHIR, resolved in one pass.
      const [a, b] = [uuid(rng), uuid(rng)];
      entry.push(
        { fullUrl: `urn:uuid:${a}`, resource: { resourceType: 'Patient', link: [{ other: { reference: `urn:uuid:${b}` }, type: 'seealso' }] }, request: { method: 'POST', url: 'Patient' } },
        { fullUrl: `urn:uuid:${b}`, resource: { resourceType: 'Patient', link: [{ other: { reference: `urn:uuid:${a}` }, type: 'seealso' }] }, request: { method: 'POST', url: 'Patient' } },
      );
      mutation += ', urn:uuid cycle';
      break;
    }
    case 3:
      for (const x of entry) if (x && typeof x === 'object' && !Array.isArray(x)) x.fullUrl = 'urn:uuid:00000000-0000-4000-8000-000000000000';
      mutation += ', duplicate fullUrls';
      break;
    case 4:
      bundle.entry = rng.pick<Json>([{}, 'entries', 3, null, [[]]]);
      mutation += `, entry is ${JSON.stringify(bundle.entry)}`;
      break;
    case 5:
      target.fullUrl = rng.pick<Json>([5, null, '', hostileString(rng), ['urn:uuid:x']]);
      mutation += `, entry[${e}].fullUrl ${JSON.stringify(target.fullUrl).slice(0, 80)}`;
      break;
    case 6:
      target.request = { method: 'PUT', url: `${rng.pick(['Patient', 'Observation'])}?${rng.pick(['identifier=', 'nonsense=1', '_id=a%00', 'name:exact=王', ''])}` };
      mutation += `, conditional ${JSON.stringify(target.request)}`;
      break;
    case 7:
      target.resource = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: rng.pick(['Patient?identifier=none', 'Patient?nonsense=1', 'Nonsense?x=1', `urn:uuid:${uuid(rng)}`, 'Patient?name=%00']) } };
      target.request = { method: 'POST', url: 'Observation' };
      mutation += `, reference ${JSON.stringify(target.resource.subject)}`;
      break;
  }
  return { body: bundle, mutation };
}

function uuid(rng: Rng): string {
  const h = (n: number): string => Array.from({ length: n }, () => rng.int(0, 15).toString(16)).join('');
  return `${h(8)}-${h(4)}-4${h(3)}-8${h(3)}-${h(12)}`;
}
