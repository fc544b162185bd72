import { ensureServices } from '../../scripts/ensure-services';

/** Starts (or reuses) the project's servers unless DATABASE_URL points the suite elsewhere. */
export default function globalSetup(): void {
  ensureServices();
}
