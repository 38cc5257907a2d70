import type { Repository } from '../store/repository';
import { subscriptionGuard } from '../workers/notify/subscription';
import { workflowConsistency } from './referral/consistency';
import { workflowTaskGuard } from './referral/guard';

/**
 * Registers the workflows' write guards and checks on every write through `repo`'s store:
 * referral and reading Tasks (and their agreement with the ServiceRequest), and Subscriptions
 * (`subscriptionEndpoints`: the URL prefixes a rest-hook may call, SUBSCRIPTION_ENDPOINTS;
 * undefined: any). Every process that writes calls it.
 */
export function attachWorkflows(repo: Repository, opts: { subscriptionEndpoints?: string[] } = {}): void {
  repo.guardWrites(workflowTaskGuard);
  repo.observeWrites(workflowConsistency);
  repo.guardWrites(subscriptionGuard(opts.subscriptionEndpoints));
}
