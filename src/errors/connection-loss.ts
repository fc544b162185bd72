/**
 * Whether an error means the database connection is gone or the server is unavailable, as
 * opposed to a statement failing: node-postgres's socket errors, and PostgreSQL's
 * connection-exception (08), admin/crash shutdown (57P01-57P03) and too-many-connections classes.
 */
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const serverCodes = new Set(['57P01', '57P02', '57P03', '53300']);
/** TypeORM's query runner releases itself when its connection errors: what it says to every later statement. */
const releasedRunnerErrors = new Set(['QueryRunnerAlreadyReleasedError', 'QueryRunnerProviderAlreadyReleasedError']);
const messages = [/connection terminated/i, /connection is closed/i, /terminating connection/i, /client has encountered a connection error/i, /timeout exceeded when trying to connect/i];

export function isConnectionLoss(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth += 1) {
    const candidate = current as { code?: unknown; driverError?: unknown; cause?: unknown; message?: unknown };
    const code = typeof candidate.code === 'string' ? candidate.code : undefined;
    if (code && (socketCodes.has(code) || serverCodes.has(code) || code.startsWith('08'))) return true;
    if (releasedRunnerErrors.has((candidate as { name?: string }).name ?? '')) return true;
    if (typeof candidate.message === 'string' && messages.some((pattern) => pattern.test(candidate.message as string))) return true;
    current = candidate.driverError ?? candidate.cause;
  }
  return false;
}
