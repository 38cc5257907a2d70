/** zzd 转诊单: an up- or down-referral as the consortium's referral pair; a down-referral's 出院小结 travels with it. */
import type { DocumentReference, Reference } from '@medplum/fhirtypes';
import { localConcept } from '../common/local-code';
import { addReferral, consortiumFacility, REFERRAL_KIND } from '../common/referral';
import type { ResultBuilder } from '../common/result';
import { ICD10, LOINC } from '../common/systems';
import { MappingError } from '../types';
import { patientCopy, time, type ReferralRecord } from './record';

const PRIORITY = { '1': 'routine', '2': 'urgent', '3': 'stat' } as const;
const ICD10_FORM = /^[A-Z]\d{2}(?:\.\d{1,2})?$/;

export function mapReferralForm(out: ResultBuilder, r: ReferralRecord): void {
  const receiver = consortiumFacility(r.zrjg, out.ctx);
  if (!receiver) throw new MappingError(`zrjg '${r.zrjg}' is not a consortium facility`, { path: '$.zrjg' }, 'value');
  if (receiver === out.ctx.source.facility) throw new MappingError('zrjg is the sending facility itself', { path: '$.zrjg' }, 'value');
  const patient = patientCopy(out, r.brid);
  const authoredOn = time(r.zzsj);
  const supportingInfo: Reference[] = [];
  if (r.cyxj !== undefined) {
    const summary = dischargeSummary(out, r, patient, authoredOn);
    out.add(summary);
    supportingInfo.push({ reference: `DocumentReference/${summary.id}` });
  }
  addReferral(
    {
      localId: r.zzdh,
      identifier: { use: 'official', system: out.localSystem('referral'), value: r.zzdh },
      direction: r.zzlx === '上转' ? 'up' : 'down',
      cancelled: r.zt === '撤销',
      patient,
      authoredOn,
      receiver,
      ...(r.jjcd !== undefined && { priority: PRIORITY[String(r.jjcd) as keyof typeof PRIORITY] }),
      reasonCode: [
        ...(r.zzyy ? [{ text: r.zzyy }] : []),
        ...(r.zd ?? []).map((d) => {
          const icd10 = d.icd10 ?? (ICD10_FORM.test(d.zddm) ? d.zddm : undefined);
          return localConcept(out, 'diagnosis', d.zddm, d.zdmc, icd10 === undefined ? undefined : { system: ICD10, code: icd10 });
        }),
      ],
      supportingInfo,
    },
    out,
  );
}

/** LOINC 18842-5 Discharge summary, the text as sent. */
function dischargeSummary(out: ResultBuilder, r: ReferralRecord, patient: string, date: string): DocumentReference & { id: string } {
  return {
    resourceType: 'DocumentReference',
    id: out.id('discharge-summary', `${REFERRAL_KIND}:${r.zzdh}`),
    meta: out.meta(),
    status: 'current',
    type: { coding: [{ system: LOINC, code: '18842-5', display: 'Discharge summary' }], text: '出院小结' },
    subject: { reference: patient },
    date,
    author: [out.organization],
    custodian: out.organization,
    content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: Buffer.from(r.cyxj!, 'utf8').toString('base64'), title: '出院小结' } }],
  };
}
