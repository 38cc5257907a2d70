import { Counter, Gauge, Histogram, register } from 'prom-client';
import type { Queue } from 'bullmq';

/** A metric registered once in prom-client's global registry, however often this module loads. */
function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const ingestMetrics = {
  received: once('ingest_messages_received_total', () => new Counter({ name: 'ingest_messages_received_total', help: 'Records stored at receipt, by source and outcome (received or failed at receipt)', labelNames: ['source', 'state'] })),
  applied: once('ingest_messages_applied_total', () => new Counter({ name: 'ingest_messages_applied_total', help: 'Records the worker finished, by source and state (done or failed)', labelNames: ['source', 'state'] })),
  lag: once('ingest_lag_seconds', () => new Histogram({ name: 'ingest_lag_seconds', help: 'Time from receipt to applied', labelNames: ['source'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] })),
  unmapped: once('ingest_unmapped_codes_total', () => new Counter({ name: 'ingest_unmapped_codes_total', help: 'Local codes seen without a standard mapping, by source', labelNames: ['source'] })),
};

/** Queue depth by job state, read from Redis when /metrics is scraped. */
export function registerQueueDepth(queue: Queue): void {
  const name = 'ingest_queue_jobs';
  register.removeSingleMetric(name);
  new Gauge({
    name,
    help: 'Jobs in the ingest queue, by state',
    labelNames: ['state'],
    async collect() {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
}
