import type { Repository } from '../store/repository';
import { subscriptionGuard } from '../workers/notify/subscription';
import { workflowTaskGuard } from './referral/guard';

/**
 * Registers the workflows' write guards on every write through `repo`'s store: referral and
 * reading Tasks, and Subscriptions (`subscriptionEndpoints`: the URL prefixes a rest-hook may
 * call, SUBSCRIPTION_ENDPOINTS; none: any). Every process that writes calls it.
 */
export function attachWorkflows(repo: Repository, opts: { subscriptionEndpoints?: string[] } = {}): void {
  repo.guardWrites(workflowTaskGuard);
  repo.guardWrites(subscriptionGuard(opts.subscriptionEndpoints));
}
