import { getMetadataStorage } from '../metadata/metadata-storage';

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
    const reflect = Reflect as unknown as { getMetadata?: (key: string, target: object, property: string | symbol) => unknown };
    getMetadataStorage().attributes.push({
      target: object.constructor,
      propertyName: String(propertyName),
      designType: reflect.getMetadata?.('design:type', object, propertyName),
      optional: options.optional ?? false,
    });
  };
}
