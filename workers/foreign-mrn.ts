import type { SourceConfig } from '../mappers/context';
import { authoritySystem } from '../mappers/hl7v2/datatypes';
import { parseEr7 } from '../mappers/hl7v2/er7';
import { mrnOf } from '../mappers/hl7v2/patient';

/**
 * The facility whose MRN a message's patient is filed under, when that is not the sending
 * source's own: the repetition of PID-3 the mapper would take as the MRN (or, failing one,
 * the first typed MR) names another facility's source in its assigning authority, by OID
 * (CX.4.2) or by namespace (CX.4.1, an MSH-4 value). A facility files its own patients only.
 */
export function foreignMrnFacility(text: string, own: SourceConfig, sources: SourceConfig[]): string | undefined {
  let reps;
  try {
    reps = parseEr7(text).first('PID')?.reps(3) ?? [];
  } catch {
    return undefined; // the mapper reports what is unreadable, where
  }
  const mrn = mrnOf(reps, own.mrnSystem) ?? reps.find((r) => r.get(5)?.toUpperCase() === 'MR');
  if (!mrn) return undefined;
  const system = authoritySystem(mrn.get(4, 2), mrn.get(4, 3));
  const namespace = mrn.get(4, 1);
  const owner = sources.find((s) => (system !== undefined && s.mrnSystem === system) || (namespace !== undefined && s.sendingFacility?.includes(namespace)));
  return owner && owner.facility !== own.facility ? owner.facility : undefined;
}
