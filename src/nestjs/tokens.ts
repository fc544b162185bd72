/** The injection token of the EventSourcing instance (`@InjectEventSourcing()` reads it). */
export const EVENT_SOURCING = Symbol.for('typeorm-event-sourcing:EventSourcing');
/** The injection token of the module's resolved options. */
export const EVENT_SOURCING_MODULE_OPTIONS = Symbol.for('typeorm-event-sourcing:EventSourcingModuleOptions');
