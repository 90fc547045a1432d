// Owns cursor paging for the listing helpers: one object that is both a promise of the first page
// and an async iterator over every item, following X-Next-Cursor until the server stops sending it.

import type { Page } from './types.js';

export type PageFetcher<T> = (cursor: string | undefined) => Promise<Page<T>>;

/**
 * `await client.aggregations(q)` gives one page (`{ items, nextCursor }`);
 * `for await (const a of client.aggregations(q))` walks every page; `.pages()` yields whole pages.
 * Only a missing cursor ends a walk: a page shorter than the limit, or empty (a filtered listing
 * that examined its budget of rows), is followed like any other.
 */
export class PageRequest<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  private first: Promise<Page<T>> | undefined;

  constructor(
    private readonly fetchPage: PageFetcher<T>,
    private readonly cursor: string | undefined,
  ) {}

  // biome-ignore lint/suspicious/noThenProperty: a page request is awaitable on purpose (await it, or iterate it)
  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.first ??= this.fetchPage(this.cursor);
    return this.first.then(onfulfilled, onrejected);
  }

  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let cursor = this.cursor;
    for (;;) {
      const page = await this.fetchPage(cursor);
      yield page;
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item, following cursors; stops after `max` items when given. */
  async all(max = Infinity): Promise<T[]> {
    const out: T[] = [];
    if (max <= 0) return out;
    for await (const item of this) {
      out.push(item);
      if (out.length >= max) break;
    }
    return out;
  }
}
