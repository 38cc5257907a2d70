/** The real app with bulk export over a fresh store and a throwaway exports directory. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import type { Express } from 'express';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { createApp } from '../../gateway/app';
import { ExportService } from '../../gateway/export/service';
import type { PatientIndex } from '../../mpi';
import type { StoreOptions } from '../../store/repository';
import { testAuth } from './auth';
import { openIndexedStore } from './mpi';
import type { Driver, TestStore } from './stores';

export const FHIR = 'application/fhir+json';
/** Small enough that every type in the suites spans several pages. */
export const PAGE_SIZE = 2;

export interface ExportHarness {
  store: TestStore & { mpi: PatientIndex };
  app: Express;
  exports: ExportService;
  dir: string;
  close(): Promise<void>;
}

export async function openExportHarness(driver: Driver, options: StoreOptions = {}): Promise<ExportHarness> {
  const store = await openIndexedStore(driver, options);
  const dir = mkdtempSync(join(tmpdir(), 'fhir-export-'));
  const bulkExports = new ExportService({ dir, pageSize: PAGE_SIZE });
  const app = createApp({ repo: store.repo, mpi: store.mpi, auth: await testAuth(), exports: bulkExports });
  return {
    store,
    app,
    exports: bulkExports,
    dir,
    close: async () => {
      await bulkExports.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count: number }[];
}

/** The path part of an absolute URL the gateway answered with, for the same agent to follow. */
export const pathOf = (url: string): string => new URL(url).pathname;

/** Kicks an export off (expecting 202) and returns its status path. */
export async function kickoff(agent: request.Agent, path: string): Promise<string> {
  const res = await agent.get(path).set('Prefer', 'respond-async').set('Accept', FHIR);
  if (res.status !== 202) throw new Error(`kick-off ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return pathOf(res.headers['content-location'] as string);
}

/** Polls until the export is done; returns the manifest. */
export async function finished(agent: request.Agent, statusPath: string, timeoutMs = 20000): Promise<Manifest> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await agent.get(statusPath);
    if (res.status === 200) return res.body as Manifest;
    if (res.status !== 202) throw new Error(`status ${statusPath}: ${res.status} ${JSON.stringify(res.body)}`);
    if (Date.now() > deadline) throw new Error(`export not done after ${timeoutMs} ms (${res.headers['x-progress']})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Downloads one output file: its Content-Type and its lines, each parsed. */
export async function download(agent: request.Agent, url: string): Promise<{ contentType: string; resources: Resource[] }> {
  const res = await agent
    .get(pathOf(url))
    .buffer(true)
    .parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => done(null, text));
    })
    .expect(200);
  const text = res.body as string;
  expect(text.endsWith('\n')).toBe(true);
  return { contentType: res.headers['content-type'] as string, resources: text.trimEnd().split('\n').map((line) => JSON.parse(line) as Resource) };
}

/** kick-off, wait, download: `Type -> sorted ids` of everything the export wrote. */
export async function exportIds(agent: request.Agent, path: string): Promise<Record<string, string[]>> {
  const manifest = await finished(agent, await kickoff(agent, path));
  const out: Record<string, string[]> = {};
  for (const f of manifest.output) {
    const { resources } = await download(agent, f.url);
    for (const r of resources) expect(r.resourceType).toBe(f.type);
    expect(resources).toHaveLength(f.count);
    out[f.type] = resources.map((r) => r.id!).sort();
  }
  return out;
}

export const issueText = (body: unknown): string => ((body as OperationOutcome).issue ?? []).map((i) => i.diagnostics).join('; ');
