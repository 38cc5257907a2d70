/**
 * The consortium office's workflow figures (workflows/referral/metrics.ts) for one calendar
 * month, China time: `GET /workflows/metrics?month=YYYY-MM` as JSON for dashboards, and
 * `GET /fhir/MeasureReport/$referral-flows?month=YYYY-MM` as a summary MeasureReport.
 */
import { Router, type Response } from 'express';
import type { Repository } from '../../store/repository';
import { badRequest } from '../../store/errors';
import { asMeasureReport, workflowFigures, type WorkflowFigures } from '../../workflows/referral/metrics';
import { loadCases } from '../../workflows/referral/metrics-source';
import { requireOffice } from '../auth/require';
import { sendJson } from '../fhir/routes';

/** The month `YYYY-MM` (default: the current one) as an instant range at UTC+8. */
export function monthPeriod(month: unknown, now = new Date()): { start: string; end: string } {
  const current = new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 7);
  const m = month === undefined ? current : String(month);
  const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(m);
  if (!match) throw badRequest(`month must be YYYY-MM, not '${m}'`, ['month']);
  const [y, mo] = [Number(match[1]), Number(match[2])];
  const iso = (year: number, monthIndex: number) => new Date(Date.UTC(year, monthIndex, 1) - 8 * 3600_000).toISOString();
  return { start: iso(y, mo - 1), end: iso(y, mo) };
}

async function figures(repo: Repository, res: Response, month: unknown): Promise<WorkflowFigures> {
  requireOffice(res, 'Workflow figures');
  const period = monthPeriod(month);
  return workflowFigures(await loadCases(repo, period.start), period);
}

/** Mounted at `/workflows`. */
export function workflowMetricsRouter(repo: Repository): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    res.json(await figures(repo, res, req.query.month));
  });
  return router;
}

/** Mounted at `/fhir`, before the generic routes. */
export function measureReportRouter(repo: Repository): Router {
  const router = Router();
  router.get('/MeasureReport/\\$referral-flows', async (req, res) => {
    sendJson(res, 200, asMeasureReport(await figures(repo, res, req.query.month)));
  });
  return router;
}
