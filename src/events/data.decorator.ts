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
  /**
   * Whether `build` may leave the attribute out. Required attributes missing from `build` raise
   * `InvalidEventDataError` naming them; `null` counts as given.
   * @defaultValue false
   */
  optional?: boolean;
}

/**
 * An event attribute ("data attribute"), stored in the event's `data` jsonb column and typed again
 * when the event is loaded. Required unless `{ optional: true }`. Strings, numbers, booleans,
 * null, and plain objects and arrays of those are stored, and Dates where the attribute itself is
 * declared as Date; anything JSON cannot hold faithfully (a Date nested in an object, -0, NaN, a
 * lone surrogate...) is refused before writing, with the path of the offending value.
 *
 * @example
 * ```ts
 * @Data() stripeKey!: string;
 * @Data({ type: () => Date }) trialEndsAt!: Date | null;
 * @Data({ optional: true, type: () => Number }) rewardId?: number | null;
 * ```
 */
export function Data(options: DataOptions = {}): PropertyDecorator {
  return (object, propertyName) => {
    getMetadataStorage().data.push({
      target: object.constructor,
      propertyName: String(propertyName),
      type: options.type,
      designType: designTypeOf(object, propertyName),
      optional: options.optional ?? false,
    });
  };
}
