import type { AggregateDefinition } from '../aggregates/aggregate-definition';

/** How long an aggregate whose conditional write missed is written through its row lock only. */
export const HOT_AGGREGATE_MS = 1000;
/** Beyond this many hot aggregates the list starts over: it is a hint, never a guarantee. */
const MAX_HOT = 10_000;

const hotUntil = new WeakMap<AggregateDefinition, Map<string, number>>();

/**
 * Notes that a write conditional on a remembered version missed: another writer got there
 * first. While writers contend, conditional writes to the aggregate would mostly miss too and
 * cost a wasted statement each, so the locked path, which waits its turn, writes it for a while.
 */
export function markHot(definition: AggregateDefinition, id: unknown): void {
  let hot = hotUntil.get(definition);
  if (!hot) hotUntil.set(definition, (hot = new Map()));
  if (hot.size >= MAX_HOT) hot.clear();
  hot.set(String(id), Date.now() + HOT_AGGREGATE_MS);
}

export function isHot(definition: AggregateDefinition, id: unknown): boolean {
  const hot = hotUntil.get(definition);
  const until = hot?.get(String(id));
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  hot!.delete(String(id));
  return false;
}
