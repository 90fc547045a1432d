// Owns the web dashboard's static files: the page, its ES modules and styles, and uPlot from node_modules.
// They need no API key (they hold no data): the page asks for the key and calls the normal API with it.
// Must never serve anything but the files listed at startup (no path from the request reaches the file
// system), and never reach outside this origin (CSP).

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RoutePlugin } from '../app-types.js';
import { NotFound } from '../errors.js';

interface Asset {
  file: () => string;
  type: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const requireFrom = createRequire(import.meta.url);

/** src/dashboard when running from source; from dist/http/routes, the checkout's src/dashboard. */
function dashboardDir(): string {
  const candidates = [path.resolve(here, '../../dashboard'), path.resolve(here, '../../../src/dashboard')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'index.html'))) ?? candidates[0]!;
}

const own = (name: string) => () => path.join(dashboardDir(), name);
const uplot = (name: string) => () => path.join(path.dirname(requireFrom.resolve('uplot/package.json')), 'dist', name);

const JS = 'text/javascript; charset=utf-8';
/** A module's file name: lower case, digits and dashes, `.js`; nothing else in the folder is a module. */
const MODULE_NAME = /^[a-z][a-z0-9-]*\.js$/;

/**
 * The dashboard's ES modules (served as they are, no bundling): the top-level .js files of its folder,
 * listed once when this file loads. The folder's other files (its tsconfig.json) are not served.
 */
function dashboardModules(): string[] {
  try {
    return fs
      .readdirSync(dashboardDir(), { withFileTypes: true })
      .filter((e) => e.isFile() && MODULE_NAME.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch {
    return []; // no dashboard folder: the page's own route answers 404
  }
}

const ASSETS: Record<string, Asset> = {
  '/dashboard': { file: own('index.html'), type: 'text/html; charset=utf-8' },
  ...Object.fromEntries(dashboardModules().map((name) => [`/dashboard/${name}`, { file: own(name), type: JS }])),
  '/dashboard/style.css': { file: own('style.css'), type: 'text/css; charset=utf-8' },
  '/dashboard/vendor/uPlot.iife.min.js': { file: uplot('uPlot.iife.min.js'), type: JS },
  '/dashboard/vendor/uPlot.min.css': { file: uplot('uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** The exact paths the auth hook lets through without a key (the page also answers with a trailing slash). */
export const DASHBOARD_PATHS: readonly string[] = [...Object.keys(ASSETS), '/dashboard/'];

const SECURITY_HEADERS: Record<string, string> = {
  // Same-origin only: the page makes no external request, runs no inline script and cannot be framed.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

export const dashboardRoutes: RoutePlugin = async (app) => {
  const cache = new Map<string, Buffer>();
  for (const [url, asset] of Object.entries(ASSETS)) {
    app.get(url, { config: { scope: 'public' }, schema: { hide: true } }, async (req, reply) => {
      let body = cache.get(url);
      if (!body) {
        try {
          body = await fs.promises.readFile(asset.file());
        } catch (err) {
          req.log.error({ err, url }, 'dashboard asset missing');
          throw new NotFound(`dashboard file ${url} is not installed`);
        }
        cache.set(url, body);
      }
      return reply.headers(SECURITY_HEADERS).type(asset.type).send(body);
    });
  }
};
