import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueCode = OperationOutcomeIssue['code'];

/**
 * An error a client caused or must hear about. Every layer throws this; the HTTP edge turns it
 * into an OperationOutcome with `status`, so no path needs its own error shape.
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    message: string,
    readonly expression?: string[],
    readonly extraIssues: OperationOutcomeIssue[] = [],
  ) {
    super(message);
    this.name = 'FhirError';
  }

  get outcome(): OperationOutcome {
    return outcome([
      { severity: 'error', code: this.code, diagnostics: this.message, ...(this.expression ? { expression: this.expression } : {}) },
      ...this.extraIssues,
    ]);
  }
}

export function outcome(issue: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue };
}

export const badRequest = (msg: string, expression?: string[]): FhirError => new FhirError(400, 'invalid', msg, expression);
export const notFound = (msg: string): FhirError => new FhirError(404, 'not-found', msg);
export const gone = (msg: string): FhirError => new FhirError(410, 'deleted', msg);
export const conflict = (msg: string, expression?: string[]): FhirError => new FhirError(409, 'conflict', msg, expression);
export const preconditionFailed = (msg: string): FhirError => new FhirError(412, 'conflict', msg);
export const unprocessable = (msg: string, expression?: string[]): FhirError =>
  new FhirError(422, 'business-rule', msg, expression);
export const notSupported = (msg: string): FhirError => new FhirError(400, 'not-supported', msg);
export const forbidden = (msg: string, expression?: string[]): FhirError => new FhirError(403, 'forbidden', msg, expression);
