/**
 * Base class of every error this library throws on purpose.
 *
 * `name` is the concrete class name and `code` a stable identifier, so callers can branch on
 * either without `instanceof` across two installed copies of the package.
 *
 * @example
 * ```ts
 * try {
 *   await es.append(event, { expectedVersion: 3 });
 * } catch (error) {
 *   if (error instanceof EventSourcingError && error.code === 'CONCURRENCY') retry();
 * }
 * ```
 */
export class EventSourcingError extends Error {
  /** A stable, machine-readable identifier of the failure, e.g. `'CONCURRENCY'`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
