/**
 * Cross-facility search through the patient index: a reference to a golden Patient in a
 * search (`Observation?patient=<golden id>`) stands for every registration linked to it, and
 * `:mdm` on a facility Patient (`subject:mdm=Patient/x`) asks for the whole person too. The
 * parameter is rewritten to the OR of the linked ids before the store sees it.
 */
import type { PatientIndex } from './index';
import type { SqlExecutor } from '../store/db/database';
import { getParam } from '../store/search-params';
import { splitValues } from '../store/search/parse';

export async function expandPersons(mpi: PatientIndex, ex: SqlExecutor, type: string, params: [string, string][]): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const [name, value] of params) {
    const [code, modifier] = name.split(':', 2);
    const def = getParam(type, code);
    const patientRef = def?.type === 'reference' && def.targets.includes('Patient') && (modifier === undefined || modifier === 'mdm' || modifier === 'Patient');
    if (!patientRef) {
      out.push([name, value]);
      continue;
    }
    const values: string[] = [];
    let expanded = false;
    for (const v of splitValues(value)) {
      const id = v.replace(/^.*Patient\//, '');
      const person = /^[A-Za-z0-9\-.]{1,64}$/.test(id) ? await mpi.person(ex, id) : undefined;
      if (person && (modifier === 'mdm' || person.goldenId === id)) {
        values.push(...[person.goldenId, ...person.members].map((i) => `Patient/${i}`));
        expanded = true;
      } else values.push(v);
    }
    // Unexpanded values stay as written: a bare id may name a Group or a Device as well.
    out.push(expanded ? [modifier === 'mdm' ? code : name, [...new Set(values)].join(',')] : [modifier === 'mdm' ? code : name, value]);
  }
  return out;
}
