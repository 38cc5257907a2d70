import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { getParams, resourceTypes } from '../../store/search-params';

type RestResource = CapabilityStatementRestResource;

const INTERACTIONS = ['read', 'vread', 'update', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;
const RECOGNITION = { name: 'recognition', definition: 'urn:consortium:OperationDefinition/ServiceRequest-recognition', documentation: 'Results the consortium already holds that stand in for the given orders (检查结果互认); also as CDS Hooks at /cds-services.' };
const EVERYTHING = { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' };
const BULK = 'http://hl7.org/fhir/uv/bulkdata';
const EXPORT_DOC =
  'Bulk Data $export (IG v2): Prefer: respond-async required; _type, _since and _outputFormat (application/fhir+ndjson) supported, other parameters ignored (400 with Prefer: handling=strict). Only current versions changed up to transactionTime; Patient and Group exports hold the patient compartments, without referenced resources outside them. Status, files and cancel under $export-status/<id>, for the client that started the export.';
const EXPORT = {
  system: { name: 'export', definition: `${BULK}/OperationDefinition/export`, documentation: EXPORT_DOC },
  Patient: { name: 'export', definition: `${BULK}/OperationDefinition/patient-export` },
  Group: { name: 'export', definition: `${BULK}/OperationDefinition/group-export` },
};

export interface CapabilityOptions {
  patientIndex: boolean;
  tokenUrl?: string;
  /** The Bulk Data $export operations are mounted. */
  bulkExport?: boolean;
  /** The R4 websocket channel is served at `<base>/websocket` (gateway/notify/websocket.ts). */
  websocket?: boolean;
}

let resources: RestResource[] | undefined;

/**
 * Lists exactly what this server does: every resource type with the interactions the generic
 * store supports for all of them, and each type's indexed search parameters (composite and
 * special parameters are not indexed, so they are not listed).
 */
export function capabilityStatement(baseUrl: string, opts: CapabilityOptions = { patientIndex: false }): CapabilityStatement {
  resources ??= buildResources();
  const patientOps = [EVERYTHING, ...(opts.patientIndex ? PATIENT_INDEX_OPERATIONS : []), ...(opts.bulkExport ? [EXPORT.Patient] : [])];
  const systemOps = [EVERYTHING, ...(opts.patientIndex ? [{ name: 'mpi-reviews', definition: `${OPERATION_BASE}/mpi-reviews` }] : []), ...(opts.bulkExport ? [EXPORT.system] : [])];
  const resource = resources.map((r): RestResource => {
    if (r.type === 'Patient') return { ...r, operation: patientOps, ...(opts.patientIndex ? { documentation: PATIENT_INDEX_DOC } : {}) };
    if (r.type === 'ServiceRequest') return { ...r, operation: [RECOGNITION] };
    if (r.type === 'Group' && opts.bulkExport) return { ...r, operation: [EXPORT.Group] };
    if (r.type === 'MeasureReport') return { ...r, operation: [{ name: 'referral-flows', definition: `${OPERATION_BASE}/referral-flows` }] };
    if (r.type === 'Task') return { ...r, documentation: TASK_DOC };
    if (r.type === 'Subscription') return { ...r, documentation: SUBSCRIPTION_DOC };
    return r;
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-22',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    software: { name: 'consortium-fhir-gateway', version: '0.1.0' },
    ...(opts.bulkExport ? { instantiates: [`${BULK}/CapabilityStatement/bulk-data`] } : {}),
    implementation: { description: 'Consortium FHIR gateway: the shared record', url: baseUrl },
    rest: [
      {
        mode: 'server',
        ...(opts.websocket ? { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket', valueUri: `${baseUrl.replace(/^http/, 'ws')}/websocket` }] } : {}),
        ...(opts.tokenUrl ? { security: smartSecurity(opts.tokenUrl) } : {}),
        documentation:
          'Search: token (system|code, code, |code, system|, :not, :text), string (starts-with by default, :exact, :contains; case-, accent- and width-insensitive), date (eq ne gt lt ge le sa eb ap, partial dates), reference (id, Type/id, :Type, chained param:Type.param), number and quantity (prefixes, value|system|code), :missing; _count with keyset next/previous links, _sort, _include/_revinclude (:iterate), _total=accurate, _summary=count|data|text, _elements. Prefer: handling=strict rejects unknown parameters; lenient (default) reports them in an OperationOutcome entry.',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        operation: systemOps,
      },
    ],
  };
}

/** SMART on FHIR discovery in the CapabilityStatement, beside /.well-known/smart-configuration. */
function smartSecurity(tokenUrl: string): NonNullable<CapabilityStatement['rest']>[number]['security'] {
  return {
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
    description: 'Bearer tokens from the token endpoint (SMART Backend Services: client_credentials) or from the consortium OpenID Connect provider',
    extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: tokenUrl }] }],
  };
}

const OPERATION_BASE = 'http://consortium.example/fhir/OperationDefinition';
const PATIENT_INDEX_OPERATIONS = [
  { name: 'ihe-pix', definition: 'https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix' },
  { name: 'match', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-match' },
  ...['mpi-links', 'mpi-review', 'mpi-link', 'mpi-unlink', 'mpi-merge', 'mpi-unmerge'].map((name) => ({ name, definition: `${OPERATION_BASE}/${name}` })),
];
const PATIENT_INDEX_DOC =
  'Patient index: each facility Patient is linked to one golden Patient (meta.tag GOLDEN_RECORD, read-only: writes get 403). A golden Patient id in any Patient reference search parameter (Observation?patient=<golden id>) is expanded to every linked registration; :mdm on a facility Patient id (subject:mdm=Patient/x) expands it the same way. Patient/$everything on a golden or a linked registration returns the whole person across facilities. PDQm is the Patient search itself (name, birthdate, gender, identifier, telecom, address).';

const TASK_DOC =
  'Referral and remote-reading Tasks (code task-code|fulfill, focus a ServiceRequest): created requested or draft by the requester; the owner moves requested -> accepted | rejected (statusReason), accepted -> in-progress, in-progress -> completed | failed; the requester cancels while requested or accepted. Other moves: 403 (the other end\'s move) or 409 (not from this state). for, focus, requester, owner and code are fixed. While open, both Organizations read the patient\'s records past an opt-out.';

const SUBSCRIPTION_DOC =
  'R4 Subscriptions: criteria a search on one type (no _include, _sort, _count...), evaluated by the store\'s search as the subscribing facility reads the record; channel rest-hook (no payload: POST to the endpoint with no body; payload application/fhir+json: PUT [endpoint]/[Type]/[id] with the matched version; channel.header sent as given) or websocket (bind <id> / bound <id> / ping <id>, with a bearer token on the upgrade). Create or update with status requested (or off); the gateway sets active once it captures the type, error with the reason while delivery fails (retried with exponential backoff), and after the last attempt keeps a dead letter, sent again when the status is set back to requested. Delivery is at least once.';

function buildResources(): RestResource[] {
  const types = resourceTypes();
  // _revinclude works for any reference parameter that can point at the type.
  const revIncludes = new Map<string, string[]>();
  for (const source of types) {
    for (const p of getParams(source)) {
      if (p.type !== 'reference') continue;
      for (const target of p.targets) revIncludes.set(target, [...(revIncludes.get(target) ?? []), `${source}:${p.code}`]);
    }
  }
  return types.map((type) => {
    const params = getParams(type);
    return {
      type: type as RestResource['type'],
      interaction: INTERACTIONS.map((code) => ({ code })),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      searchInclude: params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
      searchRevInclude: revIncludes.get(type) ?? [],
      searchParam: [
        { name: '_id', type: 'token', documentation: 'Logical id' },
        { name: '_lastUpdated', type: 'date', documentation: 'meta.lastUpdated; all prefixes' },
        ...params.map((p) => ({ name: p.code, type: p.type, documentation: modifierDoc(p.type) })),
      ],
      ...(type === 'Patient' ? { operation: [EVERYTHING] } : {}),
    } as RestResource;
  });
}

function modifierDoc(type: string): string {
  switch (type) {
    case 'token':
      return 'system|code, code, |code, system|; :not, :text, :missing';
    case 'string':
      return 'starts-with; :exact, :contains, :missing';
    case 'reference':
      return 'id, Type/id, :Type, chained, :missing';
    case 'uri':
      return 'exact match; :missing';
    default:
      return 'prefixes eq ne gt lt ge le sa eb ap; :missing';
  }
}
