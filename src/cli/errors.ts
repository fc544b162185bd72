import { EventSourcingError } from '../errors/event-sourcing-error';

/**
 * A mistake on the command line or in the `-d` module that the CLI itself finds (an unknown
 * aggregate, a bad date, a module without a DataSource): reported in one line, exit code 2.
 */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

/**
 * Whether an error is one of the library's. `instanceof` is not enough: the bin may run with one
 * installed copy of the package while the user's DataSource attached another one's
 * `EventSourcing`; both set `name` to the class name and `code` to a stable identifier.
 */
export function isEventSourcingError(error: unknown): error is EventSourcingError {
  if (error instanceof EventSourcingError) return true;
  for (let proto: unknown = error; proto && typeof proto === 'object'; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: string } }).constructor?.name === 'EventSourcingError') return typeof (error as { code?: unknown }).code === 'string';
  }
  return false;
}

/** `scheme://user:password@host` becomes `scheme://user:***@host`, wherever it appears. */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, '$1:***@');
}

/** Codes of errors that mean a server could not be reached, or turned the connection away. */
const connectionCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', '57P01', '57P03', '3D000', '28P01', '28000']);

/** Whether an error says a server could not be reached (refused, unknown host, bad login). */
export function isConnectionError(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && connectionCodes.has(code);
}

/**
 * The innermost useful message: Node reports a refused connection to a host with several
 * addresses (localhost: ::1 and 127.0.0.1) as an AggregateError whose own message is empty.
 */
function messageOf(error: unknown): string {
  if (error instanceof AggregateError && !error.message && error.errors.length > 0) {
    return [...new Set(error.errors.map(messageOf))].join('; ');
  }
  if (error instanceof Error) return error.message || (error as { code?: string }).code || error.name;
  return String(error);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  if (error instanceof AggregateError) return error.errors.map(codeOf).find((inner) => inner !== undefined);
  return undefined;
}

/**
 * One line for any error the CLI reports, never a stack trace: the library's errors, the CLI's
 * own, PostgreSQL's (a missing table), a server out of reach, anything else; credentials masked.
 */
export function errorLine(error: unknown): string {
  let message = messageOf(error);
  if ((error as { name?: string } | null)?.name === 'QueryFailedError') message = `database: ${message}`;
  return `error: ${maskCredentials(message.replace(/\s*\n\s*/g, ' ').trim())}`;
}
