/**
 * An answer other than the page asked for, with a message meant for the person who asked: what
 * was not found, which parameter is malformed. Never made from a driver's or an unexpected error,
 * whose text is not shown (see the handler).
 */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 405 | 409 | 413 | 415,
    message: string,
    /** Response headers this answer needs (`Allow` for 405). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** 400 naming the parameter at fault. */
export function badParameter(name: string, reason: string): HttpError {
  return new HttpError(400, `Bad parameter ${name}: ${reason}`);
}

/** 404 saying what does not exist. */
export function notFound(what: string): HttpError {
  return new HttpError(404, `${what} was not found`);
}
