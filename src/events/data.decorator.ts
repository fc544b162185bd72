import { designTypeOf, getMetadataStorage } from '../metadata/metadata-storage';

/** Options of {@link Data}. */
export interface DataOptions {
  /**
   * The property's type, for properties whose TypeScript type is a union (`Date | null`) or an
   * interface, where decorator metadata only says `Object`. `Date` makes the stored ISO string a
   * `Date` again on load.
   * @defaultValue the `design:type` TypeScript emits
   */
  type?: () => unknown;
}

/**
 * An event attribute ("data attribute"), stored in the event's `data` jsonb column and typed again
 * when the event is loaded. Strings, numbers, booleans, Dates, null, and plain objects and arrays
 * of those are stored; anything JSON cannot hold faithfully is refused before writing.
 *
 * @example
 * ```ts
 * @Data() stripeKey!: string;
 * @Data({ type: () => Date }) trialEndsAt!: Date | null;
 * ```
 */
export function Data(options: DataOptions = {}): PropertyDecorator {
  return (object, propertyName) => {
    getMetadataStorage().data.push({
      target: object.constructor,
      propertyName: String(propertyName),
      type: options.type,
      designType: designTypeOf(object, propertyName),
    });
  };
}
