/** Code and identifier systems the mappers (and the synthetic generator) write. */
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const ICD10 = 'http://hl7.org/fhir/sid/icd-10';
export const SNOMED = 'http://snomed.info/sct';
export const ATC = 'http://www.whocc.no/atc';
export const DICOM_DCM = 'http://dicom.nema.org/resources/ontology/DCM';
export const DICOM_UID = 'urn:dicom:uid';
/** HL7 v2 table nnnn as a FHIR CodeSystem. */
export const v2Table = (table: string): string => `http://terminology.hl7.org/CodeSystem/v2-${table}`;
export const V2_0074 = v2Table('0074');
export const V2_0162 = v2Table('0162');
export const V2_0203 = v2Table('0203');
export const V3_ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const V3_INTERPRETATION = 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation';
export const V3_PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
export const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
export const DIAGNOSIS_ROLE = 'http://terminology.hl7.org/CodeSystem/diagnosis-role';

/** An Identifier.type from v2 table 0203 (MR, VN, FILL, HC ...), with the local name as text. */
export const v2IdentifierType = (code: string, text?: string): { coding: { system: string; code: string }[]; text?: string } => ({
  coding: [{ system: V2_0203, code }],
  ...(text && { text }),
});
