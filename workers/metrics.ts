import { Counter, Gauge, Histogram, register } from 'prom-client';
import type { Queue } from 'bullmq';
import { withTimeout } from './with-timeout';

/** A metric registered once in prom-client's global registry, however often this module loads. */
export function once<T>(name: string, make: () => T): T {
  return (register.getSingleMetric(name) as T | undefined) ?? make();
}

export const ingestMetrics = {
  received: once('ingest_messages_received_total', () => new Counter({ name: 'ingest_messages_received_total', help: 'Records stored at receipt, by source and outcome (received or failed at receipt)', labelNames: ['source', 'state'] })),
  applied: once('ingest_messages_applied_total', () => new Counter({ name: 'ingest_messages_applied_total', help: 'Records the worker finished, by source and state (done or failed)', labelNames: ['source', 'state'] })),
  lag: once('ingest_lag_seconds', () => new Histogram({ name: 'ingest_lag_seconds', help: 'Time from receipt to applied', labelNames: ['source'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] })),
  unmapped: once('ingest_unmapped_codes_total', () => new Counter({ name: 'ingest_unmapped_codes_total', help: 'Local codes seen without a standard mapping, by source', labelNames: ['source'] })),
};

const DEPTH_TIMEOUT_MS = 1000;

export const auditMetrics = {
  queued: once('audit_events_queued_total', () => new Counter({ name: 'audit_events_queued_total', help: 'AuditEvents handed to the audit queue' })),
  written: once('audit_events_written_total', () => new Counter({ name: 'audit_events_written_total', help: 'AuditEvents written to the store (by the worker or directly)' })),
  fallback: once('audit_events_fallback_total', () => new Counter({ name: 'audit_events_fallback_total', help: 'AuditEvents written directly to the store because the queue could not take them' })),
  spilled: once('audit_events_spilled_total', () => new Counter({ name: 'audit_events_spilled_total', help: 'AuditEvents spilled to disk because neither the queue nor the store took them (written to the store later)' })),
  pending: once('audit_events_pending', () => new Gauge({ name: 'audit_events_pending', help: 'AuditEvents that neither the queue, the store nor the spill took, held in memory and retried' })),
};

export const forwardMetrics = {
  forwarded: once('forward_changes_total', () => new Counter({ name: 'forward_changes_total', help: 'Resource versions the upstream accepted' })),
  failures: once('forward_failures_total', () => new Counter({ name: 'forward_failures_total', help: 'Failed attempts to send a change upstream (each retried)' })),
  lag: once('forward_lag_seconds', () => new Gauge({ name: 'forward_lag_seconds', help: 'How long the oldest change not yet accepted upstream has waited' })),
  waiting: once('forward_waiting_changes', () => new Gauge({ name: 'forward_waiting_changes', help: 'Changes waiting to be sent upstream' })),
};

/** Queue depth by job state, read from Redis when /metrics is scraped. */
export const notifyMetrics = {
  queued: once('notify_queued_total', () => new Counter({ name: 'notify_queued_total', help: 'Notifications queued: a write matched a Subscription' })),
  delivered: once('notify_delivered_total', () => new Counter({ name: 'notify_delivered_total', help: 'Notifications the subscriber took, by channel', labelNames: ['channel'] })),
  failures: once('notify_failures_total', () => new Counter({ name: 'notify_failures_total', help: 'Failed delivery attempts (each retried until the last)', labelNames: ['channel'] })),
  dead: once('notify_dead_letters_total', () => new Counter({ name: 'notify_dead_letters_total', help: 'Notifications given up on after their last attempt (kept as dead letters)' })),
};

export function registerQueueDepth(queue: Queue, name = 'ingest_queue_jobs'): void {
  register.removeSingleMetric(name);
  new Gauge({
    name,
    help: `Jobs in the ${queue.name} queue, by state`,
    labelNames: ['state'],
    // With Redis away the last depth stays: /metrics must still answer (it counts the fallbacks).
    async collect() {
      try {
        const counts = await withTimeout(queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized'), DEPTH_TIMEOUT_MS, 'timeout');
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      } catch {
        // Redis unreachable: keep the last values.
      }
    },
  });
}
