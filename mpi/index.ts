/**
 * The shared patient index (主索引): links every facility Patient to one golden record per
 * person. It watches the store's writes (see Repository.observeWrites), so every road a
 * Patient takes into the store (ingest, imports, the FHIR API) is linked in the same
 * transaction as the write.
 */
import { randomUUID } from 'node:crypto';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { FhirError, notFound, unprocessable } from '../store/errors';
import type { SqlExecutor } from '../store/db/database';
import type { Repository, WriteIntent, Written } from '../store/repository';
import { blockingKeys, lookupKeys } from './blocking';
import { scorePair, verdict, type PairScore, type Verdict } from './compare';
import { featuresOf, sameFeatures, type PersonFeatures } from './features';
import { goldenPatient, isGolden, retiredGolden } from './golden';
import { links, type Link, type Review } from './links';
import { merges, type Merge } from './merges';
import { mpiAuditEvent, type MpiAction } from './audit';
import type { MatchRules } from './rules';

const goldenReadOnly = (id: string): FhirError => new FhirError(403, 'forbidden', `Patient/${id} is a golden record of the patient index: it is maintained by the index and read-only`);

/** The origin the index writes its own records with; its observer ignores them. */
const ORIGIN = 'mpi';
/** Who the matcher's automatic decisions are recorded as. */
const MATCHER = 'matcher';

export interface GoldenScore extends PairScore {
  goldenId: string;
  /** The linked registration that scored best against the record. */
  patientId: string;
  verdict: Verdict;
}

export interface LinkDecision {
  goldenId: string;
  verdict: 'MATCH' | 'NEW' | 'MANUAL' | 'UNCHANGED';
  score?: number;
  rule?: string;
  reviews: number;
}

/** What deciding about a registration needs of it, read under its locks (PatientIndex.lockAndRead). */
interface Prior {
  features: PersonFeatures;
  /** The blocking keys its candidates are looked up by. */
  lookup: string[];
  /** The id is a golden record's: read-only. */
  golden: boolean;
  current?: Link;
  /** Golden records a person decided it is not. */
  rejected: Set<string>;
}

export interface Person {
  goldenId: string;
  /** The facility Patients linked to the golden record. */
  members: string[];
}

export class PatientIndex {
  constructor(readonly rules: MatchRules) {}

  /** Links every Patient the store writes from now on. */
  attach(repo: Repository): void {
    repo.observeWrites((tx, written) => this.observe(tx, written));
  }

  /**
   * A batch of written Patients (a Bundle, an import chunk) is linked one by one, but what each
   * decision reads of the registration itself (its link, whether it is a golden id, its rejected
   * records) is read for the batch at once, after locking every key of the batch, and the golden
   * records they touch are rebuilt once, together, at the end: matching reads the links, not the
   * golden Patients, so a later registration of the batch decides the same either way. An import
   * chunk of new residents took about ten queries a registration one by one; now two.
   */
  private async observe(repo: Repository, written: Written[]): Promise<void> {
    const touched = new Set<string>();
    const mine = written.filter((w) => w.type === 'Patient' && w.origin !== ORIGIN).map((w) => ({ id: w.id, patient: w.json === undefined ? undefined : (JSON.parse(w.json) as Patient & { id: string }) }));
    const seen = new Map<string, number>();
    for (const w of mine) seen.set(w.id, (seen.get(w.id) ?? 0) + 1);
    // A registration written twice in the batch reads its own state again, after its first decision.
    const once = mine.flatMap((w) => (w.patient && seen.get(w.id) === 1 ? [w.patient] : []));
    const priors = once.length > 1 ? await this.lockAndRead(repo.executor, once) : undefined;
    for (const w of mine) {
      if (w.patient === undefined) await this.forget(repo, w.id, touched);
      else await this.register(repo, w.patient, touched, priors?.get(w.id));
    }
    await this.refreshGoldens(repo, [...touched]);
  }

  /**
   * Links a created or updated facility Patient: the golden record it matches, else a new one;
   * the possible matches go to review. A manual link is kept (only its features refresh); an
   * automatic one is re-evaluated and leaves its golden record when it no longer matches it.
   * `touched`: collects the golden records to rebuild instead of rebuilding them now.
   * `prior`: the registration's state, read under its locks by the caller (observe).
   */
  async register(repo: Repository, patient: Patient & { id: string }, touched?: Set<string>, prior?: Prior): Promise<LinkDecision> {
    const ex = repo.executor;
    if (isGolden(patient)) throw goldenReadOnly(patient.id);
    const { features, lookup, golden, current, rejected } = prior ?? (await this.lockAndRead(ex, [patient])).get(patient.id)!;
    if (golden) throw goldenReadOnly(patient.id);
    const keys = blockingKeys(features, this.rules.blocking.keys);
    if (current && sameFeatures(current.features, features)) return { goldenId: current.goldenId, verdict: 'UNCHANGED', reviews: 0 };
    if (current?.linkSource === 'MANUAL') {
      await links.save(ex, { ...current, features, rulesVersion: this.rules.version }, keys, MATCHER);
      await this.goldensChanged(repo, [current.goldenId], touched);
      return { goldenId: current.goldenId, verdict: 'MANUAL', reviews: 0 };
    }
    const scored = (await this.scoreGoldens(ex, features, lookup, patient.id)).filter((g) => !rejected.has(g.goldenId));
    const matches = scored.filter((g) => g.verdict === 'MATCH');
    // Stay with the current golden record while it still matches: a link does not jump
    // between records on every update; a second matching record goes to review instead.
    const chosen = matches.find((g) => g.goldenId === current?.goldenId) ?? matches[0];
    let goldenId: string;
    let newGolden = false;
    if (chosen) goldenId = chosen.goldenId;
    else if (current && (await links.members(ex, current.goldenId)).length === 1) goldenId = current.goldenId;
    else {
      goldenId = randomUUID();
      newGolden = true;
    }
    await links.save(
      ex,
      { patientId: patient.id, goldenId, linkSource: 'AUTO', score: chosen?.score ?? null, rule: chosen?.rule ?? 'new-person', rulesVersion: this.rules.version, features },
      keys,
      MATCHER,
      newGolden,
    );
    const reviews = scored.filter((g) => g.goldenId !== goldenId && g.verdict !== 'NO_MATCH');
    // A registration never linked before has no open review entries to replace.
    if (current || reviews.length > 0) await links.setOpenReviews(ex, patient.id, reviews.map((g) => ({ goldenId: g.goldenId, score: g.score, levels: g.levels })));
    await this.goldensChanged(repo, [goldenId, ...(current && current.goldenId !== goldenId ? [current.goldenId] : [])], touched);
    return { goldenId, verdict: chosen ? 'MATCH' : 'NEW', score: chosen?.score, rule: chosen?.rule, reviews: reviews.length };
  }

  /**
   * Locks what deciding about each registration touches (its lookup keys and itself, see
   * links.lock), all at once and in one order, then reads each one's state.
   */
  private async lockAndRead(ex: SqlExecutor, patients: (Patient & { id: string })[]): Promise<Map<string, Prior>> {
    const ids = patients.map((p) => p.id);
    const keyed = patients.map((p) => {
      const features = featuresOf(p);
      return { id: p.id, features, lookup: lookupKeys(features, this.rules.blocking.keys) };
    });
    await links.lock(ex, keyed.flatMap((k) => [...k.lookup, `patient:${k.id}`]));
    const [goldens, current, rejected] = [await links.goldenIds(ex, ids), await links.getMany(ex, ids), await links.rejected(ex, ids)];
    return new Map(keyed.map((k) => [k.id, { ...k, golden: goldens.has(k.id), current: current.get(k.id), rejected: rejected.get(k.id) ?? new Set<string>() }]));
  }

  /** A deleted facility Patient leaves its golden record (which goes if nobody is left). */
  private async forget(repo: Repository, patientId: string, touched?: Set<string>): Promise<void> {
    const ex = repo.executor;
    if (await links.isGolden(ex, patientId)) throw new FhirError(403, 'forbidden', `Patient/${patientId} is a golden record of the patient index and cannot be deleted through the API`);
    await links.lock(ex, [`patient:${patientId}`]);
    const current = await links.get(ex, patientId);
    if (!current) return;
    await links.remove(ex, patientId, MATCHER);
    await this.goldensChanged(repo, [current.goldenId], touched);
  }

  private async goldensChanged(repo: Repository, ids: string[], touched?: Set<string>): Promise<void> {
    if (touched) for (const id of ids) touched.add(id);
    else await this.refreshGoldens(repo, ids);
  }

  /**
   * Candidates from the blocks, scored and grouped by golden record (a record scores as its
   * best-matching registration), best first. Reads only: this is also `$match`.
   */
  async scoreGoldens(ex: SqlExecutor, features: PersonFeatures, lookup: string[], exclude?: string): Promise<GoldenScore[]> {
    const candidates = await links.candidates(ex, lookup, this.rules.blocking.maxBlockSize);
    const best = new Map<string, GoldenScore>();
    for (const c of candidates) {
      if (c.patientId === exclude) continue;
      const s = scorePair(features, c.features, this.rules);
      const prev = best.get(c.goldenId);
      if (!prev || s.score > prev.score || (s.score === prev.score && s.rule && !prev.rule)) {
        best.set(c.goldenId, { ...s, goldenId: c.goldenId, patientId: c.patientId, verdict: verdict(s, this.rules) });
      }
    }
    return [...best.values()].sort((a, b) => b.score - a.score || a.goldenId.localeCompare(b.goldenId));
  }

  /**
   * Bulk-loads links decided elsewhere (see links.loadDecided): the index of a population in
   * seconds rather than one match per registration. Golden Patient resources are not written.
   */
  async loadDecided(ex: SqlExecutor, entries: { patient: Patient & { id: string }; goldenId: string; rule: string }[], by: string): Promise<void> {
    const rows = entries.map(({ patient, goldenId, rule }) => {
      const features = featuresOf(patient);
      return { link: { patientId: patient.id, goldenId, linkSource: 'MANUAL' as const, score: null, rule, rulesVersion: this.rules.version, features }, blocks: blockingKeys(features, this.rules.blocking.keys) };
    });
    await links.loadDecided(ex, rows, by);
  }

  /** `$match`: the golden records a Patient (not stored) would match, best first. */
  async match(ex: SqlExecutor, patient: Patient): Promise<GoldenScore[]> {
    const features = featuresOf(patient);
    return (await this.scoreGoldens(ex, features, lookupKeys(features, this.rules.blocking.keys))).filter((g) => g.verdict !== 'NO_MATCH');
  }

  private async refreshGolden(repo: Repository, goldenId: string): Promise<void> {
    await this.refreshGoldens(repo, [goldenId]);
  }

  /** Rebuilds golden records from their members, written in one go; one nobody is linked to any more is deleted. */
  private async refreshGoldens(repo: Repository, ids: string[]): Promise<void> {
    const ex = repo.executor;
    const sorted = [...new Set(ids)].sort();
    if (sorted.length === 0) return;
    await links.lock(ex, sorted.map((id) => `golden:${id}`));
    const [rows, membersOf] = [await links.goldenRows(ex, sorted), await links.membersOf(ex, sorted)];
    const writes: WriteIntent[] = [];
    const emptied: string[] = [];
    for (const goldenId of sorted) {
      const row = rows.get(goldenId);
      if (!row || row.mergedInto) continue;
      const members = membersOf.get(goldenId) ?? [];
      if (members.length === 0) {
        writes.push({ method: 'delete', type: 'Patient', id: goldenId, origin: ORIGIN });
        emptied.push(goldenId);
      } else writes.push({ method: 'update', type: 'Patient', id: goldenId, resource: goldenPatient(goldenId, members), origin: ORIGIN });
    }
    if (writes.length > 0) await repo.applyWrites(writes);
    for (const goldenId of emptied) await links.dropGolden(ex, goldenId);
  }

  /** The person a Patient id belongs to: a golden id (followed through merges) or a linked facility Patient. */
  async person(ex: SqlExecutor, id: string): Promise<Person | undefined> {
    let goldenId: string | undefined;
    let row = await links.goldenRow(ex, id);
    if (row) {
      for (let hops = 0; row?.mergedInto && hops < 32; hops++) row = await links.goldenRow(ex, row.mergedInto);
      goldenId = row?.id;
    } else goldenId = (await links.get(ex, id))?.goldenId;
    if (!goldenId) return undefined;
    return { goldenId, members: (await links.members(ex, goldenId)).map((m) => m.patientId) };
  }

  async linksOf(ex: SqlExecutor, goldenId: string): Promise<Link[]> {
    return links.linksOf(ex, goldenId);
  }

  async reviews(ex: SqlExecutor, state: Review['state'], count: number): Promise<Review[]> {
    return links.reviews(ex, state, count);
  }

  /** Manual link (or a review accepted): the matcher will not move it again. */
  async link(repo: Repository, patientId: string, goldenRef: string, by: string, action: MpiAction = 'link'): Promise<Link> {
    const ex = repo.executor;
    const target = await this.activeGolden(ex, goldenRef);
    await links.lock(ex, [`patient:${patientId}`]);
    const current = await this.requireLink(ex, patientId);
    const link: Link = { ...current, goldenId: target, linkSource: 'MANUAL', score: null, rule: action === 'review-accept' ? 'review-accepted' : 'manual-link', rulesVersion: this.rules.version };
    await links.save(ex, link, blockingKeys(current.features, this.rules.blocking.keys), by);
    await links.decide(ex, patientId, target, 'accepted', by);
    await this.refreshGoldens(repo, [target, current.goldenId]);
    await this.audit(repo, action, by, [`Patient/${patientId}`, `Patient/${target}`], `linked to ${target} (was ${current.goldenId})`);
    return link;
  }

  /** Manual unlink: the registration becomes its own person again, and is never auto-linked back to that record. */
  async unlink(repo: Repository, patientId: string, by: string): Promise<Link> {
    const ex = repo.executor;
    await links.lock(ex, [`patient:${patientId}`]);
    const current = await this.requireLink(ex, patientId);
    if ((await links.members(ex, current.goldenId)).length === 1) throw unprocessable(`Patient/${patientId} is the only registration of its golden record: nothing to unlink from`);
    const goldenId = randomUUID();
    const link: Link = { ...current, goldenId, linkSource: 'MANUAL', score: null, rule: 'manual-unlink', rulesVersion: this.rules.version };
    await links.save(ex, link, blockingKeys(current.features, this.rules.blocking.keys), by, true);
    await links.decide(ex, patientId, current.goldenId, 'rejected', by);
    await this.refreshGoldens(repo, [goldenId, current.goldenId]);
    await this.audit(repo, 'unlink', by, [`Patient/${patientId}`, `Patient/${current.goldenId}`], `unlinked from ${current.goldenId}; now ${goldenId}`);
    return link;
  }

  async reject(repo: Repository, patientId: string, goldenId: string, by: string): Promise<void> {
    const review = await links.review(repo.executor, patientId, goldenId);
    if (!review) throw notFound(`No review of Patient/${patientId} against Patient/${goldenId}`);
    await links.decide(repo.executor, patientId, goldenId, 'rejected', by);
    await this.audit(repo, 'review-reject', by, [`Patient/${patientId}`, `Patient/${goldenId}`], 'possible match rejected');
  }

  /**
   * Merges one person into another (ADT^A40, or the office): every registration of the source
   * record moves to the target, as a manual link; the source record stays, inactive, pointing
   * at the target. Returns the merge, which `unmerge` undoes.
   */
  async merge(repo: Repository, sourceRef: string, targetRef: string, reason: string, by: string): Promise<Merge | undefined> {
    const ex = repo.executor;
    const source = await this.activeGolden(ex, sourceRef);
    const target = await this.activeGolden(ex, targetRef);
    if (source === target) return undefined;
    await links.lock(ex, [`golden:${source}`, `golden:${target}`]);
    const moved = await links.linksOf(ex, source);
    for (const l of moved) {
      await links.save(ex, { ...l, goldenId: target, linkSource: 'MANUAL', score: null, rule: `merge:${reason}` }, blockingKeys(l.features, this.rules.blocking.keys), by);
    }
    const merge = { id: randomUUID(), sourceGolden: source, targetGolden: target, moved: moved.map((l) => ({ patientId: l.patientId, linkSource: l.linkSource, score: l.score, rule: l.rule })), reason, decidedBy: by };
    await merges.record(ex, merge);
    await links.setMergedInto(ex, source, target);
    await repo.applyWrites([{ method: 'update', type: 'Patient', id: source, resource: retiredGolden(source, target), origin: ORIGIN }]);
    await this.refreshGolden(repo, target);
    await this.audit(repo, 'merge', by, [`Patient/${source}`, `Patient/${target}`], `merged ${source} into ${target} (${reason}); merge ${merge.id}`);
    return { ...merge, createdAt: new Date().toISOString() };
  }

  /** Undoes a merge: the registrations it moved (those still on the target) go back, with their earlier links. */
  async unmerge(repo: Repository, mergeId: string, by: string): Promise<Merge> {
    const ex = repo.executor;
    const merge = await merges.lock(ex, mergeId);
    if (!merge) throw notFound(`Merge ${mergeId} not found`);
    if (merge.undoneAt) throw unprocessable(`Merge ${mergeId} was already undone at ${merge.undoneAt}`);
    await links.lock(ex, [`golden:${merge.sourceGolden}`, `golden:${merge.targetGolden}`]);
    await links.setMergedInto(ex, merge.sourceGolden, null);
    for (const m of merge.moved) {
      const current = await links.get(ex, m.patientId);
      if (!current || current.goldenId !== merge.targetGolden) continue;
      await links.save(ex, { ...current, goldenId: merge.sourceGolden, linkSource: m.linkSource, score: m.score, rule: m.rule }, blockingKeys(current.features, this.rules.blocking.keys), by);
    }
    await merges.markUndone(ex, mergeId);
    await this.refreshGoldens(repo, [merge.sourceGolden, merge.targetGolden]);
    await this.audit(repo, 'unmerge', by, [`Patient/${merge.sourceGolden}`, `Patient/${merge.targetGolden}`], `undid merge ${mergeId}`);
    return merge;
  }

  /** The active golden record behind a Patient id (a golden id, merged or not, or a linked facility Patient). */
  private async activeGolden(ex: SqlExecutor, ref: string): Promise<string> {
    const id = ref.replace(/^Patient\//, '');
    const person = await this.person(ex, id);
    if (!person) throw notFound(`Patient/${id} is not in the patient index`);
    return person.goldenId;
  }

  private async requireLink(ex: SqlExecutor, patientId: string): Promise<Link> {
    const current = await links.get(ex, patientId);
    if (!current) {
      if (await links.isGolden(ex, patientId)) throw unprocessable(`Patient/${patientId} is a golden record; link a facility Patient to it`);
      throw notFound(`Patient/${patientId} is not in the patient index`);
    }
    return current;
  }

  private async audit(repo: Repository, action: MpiAction, by: string, patients: string[], detail: string): Promise<void> {
    const event = mpiAuditEvent(action, by, patients, detail) as Resource;
    await repo.applyWrites([{ method: 'create', type: 'AuditEvent', id: event.id!, resource: event, origin: ORIGIN }]);
  }
}

