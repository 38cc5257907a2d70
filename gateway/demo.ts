import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { processBundle } from '../store/bundle';
import type { Repository } from '../store/repository';
import type { IngestService } from './ingest/service';

/** The demo consortium loaded into an empty store (DEMO=true). */
export const DEMO_SIZE = { seed: 20240601, patients: 50, resources: 2000, bundleSize: 100 } as const;

/** Sample records of every kind, one folder per registered source. */
export const DEMO_MESSAGES_DIR = resolve(__dirname, '../fixtures/messages');

/**
 * Loads the synthetic demo consortium through the same bundle path clients use, once: when the
 * store holds no Organization yet, or to finish a demo load that a shutdown interrupted (its
 * first resource is there, its last is not; PUTs with fixed ids make the rerun idempotent).
 * Logs counts only (see the note in logger.ts).
 */
export async function loadDemo(repo: Repository, stopped: () => boolean, log: Logger): Promise<void> {
  // Imported only when needed: with DEMO=false the generator is never loaded.
  const { generateConsortium, generateConsortiumResources } = await import('../fixtures/synthetic/consortium');
  const existing = await repo.search('Organization', [['_count', '1']], {}, 1);
  let resuming = false;
  if (existing.matches.length > 0) {
    let first: { resourceType: string; id: string } | undefined;
    let last: { resourceType: string; id: string } | undefined;
    for (const r of generateConsortiumResources(DEMO_SIZE)) {
      first ??= r;
      last = r;
    }
    resuming = first !== undefined && last !== undefined && (await exists(repo, first)) && !(await exists(repo, last));
    if (!resuming) {
      log.info('store already holds organisations; demo consortium not loaded');
      return;
    }
  }
  const started = Date.now();
  log.info(
    { patients: DEMO_SIZE.patients, resources: DEMO_SIZE.resources },
    resuming ? 'resuming an interrupted demo consortium load' : 'loading the demo consortium in the background',
  );
  let bundles = 0;
  let entries = 0;
  for (const bundle of generateConsortium(DEMO_SIZE)) {
    if (stopped()) {
      log.info({ bundles, entries }, 'demo load interrupted by shutdown; it resumes on the next start');
      return;
    }
    await processBundle(repo, bundle);
    bundles++;
    entries += bundle.entry?.length ?? 0;
    // Let waiting requests in between bundles: PGlite and the generator share this thread.
    await new Promise((resolve) => setImmediate(resolve));
  }
  log.info({ bundles, entries, seconds: (Date.now() - started) / 1000 }, 'demo consortium loaded');
}

async function exists(repo: Repository, r: { resourceType: string; id: string }): Promise<boolean> {
  try {
    await repo.read(r.resourceType, r.id);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends the demo facilities' sample records through ingest, as their systems would: HL7 v2
 * files to the HL7 receipt, JSON and CSV to their source. Runs after the synthetic load, on
 * the same first start; resending on a later start would change nothing (deterministic ids),
 * but it is skipped anyway when the log already holds messages.
 */
export async function loadDemoMessages(ingest: IngestService, stopped: () => boolean, log: Logger): Promise<void> {
  if ((await ingest.quality()).length > 0) return;
  let sent = 0;
  for (const source of readdirSync(DEMO_MESSAGES_DIR, { withFileTypes: true })) {
    if (!source.isDirectory() || source.name === 'broken') continue;
    const dir = join(DEMO_MESSAGES_DIR, source.name);
    for (const file of readdirSync(dir).sort()) {
      if (stopped()) return;
      const body = readFileSync(join(dir, file));
      if (file.endsWith('.hl7')) await ingest.receiveHl7(body);
      else if (file.endsWith('.json') || file.endsWith('.csv')) await ingest.receiveRecords(source.name, body.toString('utf8'));
      else continue;
      sent++;
    }
  }
  log.info({ files: sent }, 'demo facility records sent through ingest');
}
