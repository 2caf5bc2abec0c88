/** Types for scripts/errors-doc.mjs, so the tests that import it are type-checked too. */
import type { ERROR_CATALOGUE, ERROR_CODES, EXIT } from '../src/core/errors.js';

export function renderErrorsDoc(errors: {
  EXIT: typeof EXIT;
  ERROR_CODES: typeof ERROR_CODES;
  ERROR_CATALOGUE: typeof ERROR_CATALOGUE;
}): string;
