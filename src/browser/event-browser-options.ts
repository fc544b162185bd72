/** Options of {@link createEventBrowser}. */
export interface EventBrowserOptions {
  /**
   * The path the browser's pages live under, as the browser's users see it: every link and form
   * starts with it, and requests are routed on their full path (`req.originalUrl`, which Express,
   * NestJS and `@fastify/middie` set, else `req.url`) with it removed. Mount the handler at the
   * same path (`app.use('/admin', browser)` with `basePath: '/admin'`). Left empty under Express
   * or NestJS, the mount path (`req.baseUrl`) is used.
   * @defaultValue '' (the root, or the Express mount path)
   */
  basePath?: string;
  /**
   * Only reading. `false` adds one action: retrying a failed reactor job (a POST form with a
   * CSRF token). Whoever reaches the page can then retry jobs: mount it behind your operators'
   * authentication.
   * @defaultValue true
   */
  readOnly?: boolean;
  /**
   * Called with an unexpected error (the page answers 500 without its details). By default the
   * error's name and message are written to `console.error`, with any password in a URL masked.
   */
  onError?: (error: unknown) => void;
  /**
   * Events per page of the feed when the request does not ask (`?limit=`, at most 200).
   * @defaultValue 50
   */
  pageSize?: number;
}

/** Options after defaults and checks. */
export interface ResolvedBrowserOptions {
  readonly basePath: string;
  readonly readOnly: boolean;
  readonly onError: (error: unknown) => void;
  readonly pageSize: number;
}
