import { designTypeOf, getMetadataStorage } from '../metadata/metadata-storage';

/** Options of {@link Attribute}. */
export interface AttributeOptions {
  /**
   * An aggregate attribute may be left out (it is required by default: a missing aggregate is a
   * validation error, not a TypeError in `noop` or `buildEvent`).
   * @defaultValue false
   */
  optional?: boolean;
}

/**
 * A command attribute: accepted by `Command.call`, assigned before validation, validated with
 * the class-validator rules on the same property. An attribute whose type is an `@Aggregate`
 * entity must hold an instance of it.
 *
 * @example
 * ```ts
 * @Attribute() subscription!: Subscription;
 * @Attribute() @IsNotEmpty() stripeKey!: string;
 * @Attribute() metadata?: Record<string, unknown>;
 * ```
 */
export function Attribute(options: AttributeOptions = {}): PropertyDecorator {
  return (object, propertyName) => {
    getMetadataStorage().attributes.push({
      target: object.constructor,
      propertyName: String(propertyName),
      designType: designTypeOf(object, propertyName),
      optional: options.optional ?? false,
    });
  };
}
