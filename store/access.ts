/**
 * Who is reading or writing, as the store's access rules see it. The gateway derives one from
 * each request's token (gateway/auth) and binds a repository to it with `repo.withAccess(ctx)`;
 * every read path of that repository (read, vread, search and its includes, history,
 * $everything, conditional matches) then leaves out what the context may not see, in SQL, so
 * that counts and paging agree with what is returned. Writes through it are held to the
 * facility's own records.
 *
 * The rules (issue 5):
 * - A resource's author is the facility that wrote it (column `resource.author`, from the
 *   `AUTHOR_TAG_SYSTEM` tag the store stamps from the writing context; ingest stamps the
 *   source's facility). Golden Patients and AuditEvents have no facility author.
 * - Consortium-wide sharing by default, except: (a) a person who opted out (an active Consent
 *   denying sharing, on any of their linked registrations): their records are visible only
 *   to each record's authoring facility; (b) a resource labelled sensitive in meta.security:
 *   visible only to its author. `breakGlass` lets a clinician through both; the gateway
 *   audits it.
 * - A treatment relationship: while a Task asks one facility to act for a patient (an open
 *   referral or remote reading: status requested to in-progress, requester and owner both
 *   Organizations), both facilities read that person's records past an opt-out (never past a
 *   sensitivity label); the audit names the Task as the purpose (workers/audit.ts). Once the
 *   Task is completed, what it carried (the Task, its ServiceRequest and that one's
 *   supportingInfo, its inputs and outputs: a down-referral's discharge summary, a reading's
 *   report) stays readable by both facilities: it was handed over for the patient's care.
 * - Resources several facilities move on (a referral Task, whose owner accepts what the
 *   requester wrote) are decided by a WriteGuard (store/repository.ts) instead of the author
 *   rule; the workflows register theirs (workflows/).
 */
export interface AccessContext {
  /** Organization id of the facility the client acts for. */
  facility?: string;
  /** Break-the-glass reason, from the request; lets the reader past opt-out and sensitivity. */
  breakGlass?: string;
  /** The consortium office and the gateway's own workers: no read filter, any author. */
  unrestricted?: boolean;
}

/** meta.tag system whose code names a resource's authoring facility (an Organization id). */
export const AUTHOR_TAG_SYSTEM = 'http://consortium.example/fhir/CodeSystem/author-facility';
