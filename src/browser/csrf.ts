import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { IDENTITY_TABLE, libraryObject } from '../schema/event-sourcing-schema';

/** How long a retry form may be left open before its token is refused (seconds). */
export const TOKEN_LIFETIME = 3600;
/** Tokens issued by a process whose clock runs ahead of this one's are still taken. */
const CLOCK_SKEW = 300;

/**
 * CSRF tokens for the retry form: `<issued at>.<HMAC of the job id and that time>`. A page from
 * another site cannot read one (the same-origin policy), so it cannot make a browser post a
 * valid form. The key is derived from the database's own secret (`es_identity.secret`, which
 * signs reactor jobs) under a label of its own, so every process of the application, behind any
 * load balancer, takes the tokens of the others, without configuration; the derived key says
 * nothing about the secret.
 */
export class CsrfTokens {
  readonly #dataSource: DataSource;
  #key: Promise<Buffer> | undefined;

  constructor(dataSource: DataSource) {
    this.#dataSource = dataSource;
  }

  /** A token for a form that retries `jobId`, issued now. */
  async issue(jobId: string, now = Date.now()): Promise<string> {
    const issued = Math.floor(now / 1000);
    return `${issued}.${this.#mac(await this.#keyOf(), jobId, issued)}`;
  }

  /** Whether `token` was issued for `jobId` within the last {@link TOKEN_LIFETIME} seconds. */
  async check(jobId: string, token: string | undefined, now = Date.now()): Promise<boolean> {
    const match = token === undefined ? null : /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match) return false;
    const issued = Number(match[1]);
    const age = Math.floor(now / 1000) - issued;
    if (age > TOKEN_LIFETIME || age < -CLOCK_SKEW) return false;
    const expected = Buffer.from(this.#mac(await this.#keyOf(), jobId, issued));
    const given = Buffer.from(match[2]);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  #mac(key: Buffer, jobId: string, issued: number): string {
    return createHmac('sha256', key).update(`retry\n${jobId}\n${issued}`, 'utf8').digest('base64url');
  }

  #keyOf(): Promise<Buffer> {
    this.#key ??= (async () => {
      const [row]: { secret: string }[] = await this.#dataSource.query(`SELECT secret FROM ${libraryObject(this.#dataSource.driver, IDENTITY_TABLE)}`);
      return createHmac('sha256', row.secret).update('typeorm-event-sourcing event browser csrf', 'utf8').digest();
    })().catch((error: unknown) => {
      this.#key = undefined;
      throw error;
    });
    return this.#key;
  }
}
