// Owns how the configuration suites catch a ConfigError: the error itself, or its problem list.
// Must never pass when nothing was thrown.

import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load-config.js';

/** Runs fn, which must throw a ConfigError, and returns it. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError to be thrown');
}

/** The problems parseConfig reports for a document (it must refuse it). */
export const problemsOf = (doc: unknown, env: NodeJS.ProcessEnv = {}): string[] => configError(() => parseConfig(doc, { env })).problems;
