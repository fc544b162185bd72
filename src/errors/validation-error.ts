import { EventSourcingError } from './event-sourcing-error';

/** One attribute of a command that failed validation, with every message about it. */
export interface AttributeIssue {
  /** The attribute, e.g. `'stripeKey'`. */
  attribute: string;
  /** Constraint name to message, e.g. `{ isNotEmpty: 'stripeKey should not be empty' }`. */
  constraints: Record<string, string>;
}

/**
 * A command's attributes are invalid: unknown, failing a class-validator rule, a missing
 * aggregate, or refused by the command's own `validate()`. Nothing was built or written.
 */
export class ValidationError extends EventSourcingError {
  constructor(
    /** The command class name. */
    readonly command: string,
    /** Every failed attribute. */
    readonly issues: readonly AttributeIssue[],
  ) {
    super(
      'VALIDATION',
      `${command} is invalid: ${issues.map((issue) => Object.values(issue.constraints).join(', ')).join('; ')}`,
    );
  }

  /** The messages of one attribute (empty when it passed). */
  messagesFor(attribute: string): string[] {
    return Object.values(this.issues.find((issue) => issue.attribute === attribute)?.constraints ?? {});
  }
}
