import { Inject } from '@nestjs/common';
import { EVENT_SOURCING } from './tokens';

/**
 * Injects the `EventSourcing` instance that `EventSourcingModule.forRoot` attached.
 *
 * @example
 * ```ts
 * constructor(@InjectEventSourcing() private readonly es: EventSourcing) {}
 * ```
 */
export function InjectEventSourcing(): ParameterDecorator & PropertyDecorator {
  return Inject(EVENT_SOURCING);
}
