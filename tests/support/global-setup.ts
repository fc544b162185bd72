import { ensureServices } from '../../scripts/ensure-services';
import { openFiguresDir } from './figures';

/**
 * Starts (or reuses) the project's servers unless DATABASE_URL points the suite elsewhere, and
 * opens the run's figures directory (tests/support/figures.ts).
 */
export default function globalSetup(): void {
  ensureServices();
  openFiguresDir();
}
