/**
 * The events classes (one per events table) that an attached EventSourcing writes, counted per
 * attached DataSource, so that an event saved through a DataSource nobody attached to is refused
 * with advice instead of reaching the database half-filled.
 */
const attachedCounts = new Map<Function, number>();

export function markAttached(eventsClasses: readonly Function[], attached: boolean): void {
  for (const target of eventsClasses) {
    const count = (attachedCounts.get(target) ?? 0) + (attached ? 1 : -1);
    if (count > 0) attachedCounts.set(target, count);
    else attachedCounts.delete(target);
  }
}

/** Whether some attached EventSourcing writes events of this class (or of a class it extends). */
export function isAttached(eventClass: Function): boolean {
  for (let target: unknown = eventClass; typeof target === 'function' && target !== Function.prototype; target = Object.getPrototypeOf(target)) {
    if (attachedCounts.has(target as Function)) return true;
  }
  return false;
}
