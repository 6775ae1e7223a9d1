import * as fs from 'node:fs';
import {
  type Catalog,
  type CatalogVersion,
  CATALOG_STREAM,
  appendCatalogVersion,
  defaultCatalogJson,
  fromJsonData,
  parseCatalog,
  toJsonData,
} from '@metering/domain';
import { type EventStore, WrongExpectedRevisionError } from '@metering/event-store';
import type { IdGenerator } from '../infra/clock';

export const CATALOG_VERSION_PUBLISHED = 'CatalogVersionPublished';

/**
 * The catalog in force: the versions recorded in the catalog stream. On start the configured
 * catalog file (or the built-in default) is recorded there: versions not yet recorded are
 * appended; a recorded version that differs is an error (publish a new version instead).
 */
export class CatalogService {
  private current: Catalog;
  private revision = -1;
  private refreshedAt = 0;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly store: EventStore,
    private readonly ids: IdGenerator,
    private readonly file: string | null,
  ) {}

  get catalog(): Catalog {
    return this.current;
  }

  static readSource(file: string | null): Catalog {
    if (!file) return parseCatalog(defaultCatalogJson);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`CATALOG_FILE ${file}: cannot be read as JSON: ${(err as Error).message}`);
    }
    return parseCatalog(raw);
  }

  async init(): Promise<void> {
    const source = CatalogService.readSource(this.file);
    await this.refresh();
    for (;;) {
      const recorded = new Map((this.current?.versions ?? []).map((v) => [v.version, v]));
      const missing: CatalogVersion[] = [];
      for (const v of source.versions) {
        const r = recorded.get(v.version);
        if (!r) missing.push(v);
        else if (JSON.stringify(r) !== JSON.stringify(v))
          throw new Error(
            `catalog version ${v.version} in ${this.file ?? 'the built-in catalog'} differs from the one recorded in the store; history is never repriced: publish it as a new version`,
          );
      }
      if (missing.length === 0) break;
      try {
        await this.append(missing, this.revision);
      } catch (err) {
        if (err instanceof WrongExpectedRevisionError) {
          await this.refresh();
          continue;
        }
        throw err;
      }
      await this.refresh();
    }
  }

  private async append(versions: CatalogVersion[], expected: number): Promise<void> {
    await this.store.append(
      CATALOG_STREAM,
      versions.map((v) => ({
        id: this.ids.deterministic(`catalog/${v.version}`),
        type: CATALOG_VERSION_PUBLISHED,
        data: toJsonData(v),
      })),
      expected < 0 ? 'no_stream' : expected,
    );
  }

  /** Publishes one new version (validated: next number, effective in the future). */
  async publish(next: CatalogVersion, now: number): Promise<Catalog> {
    await this.refresh();
    const updated = appendCatalogVersion(this.current, next, now);
    await this.append([next], this.revision);
    await this.refresh();
    return updated;
  }

  /**
   * Picks up versions published by other processes (e.g. `metering catalog publish`), at most
   * once per `maxAgeMs`; concurrent callers share one read.
   */
  async refreshIfStale(now: number, maxAgeMs = 1000): Promise<void> {
    if (now - this.refreshedAt < maxAgeMs) return;
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = null;
      this.refreshedAt = now;
    });
    await this.refreshing;
  }

  /** Picks up versions published by other processes. */
  async refresh(): Promise<void> {
    const events = await this.store.readStream(CATALOG_STREAM, { fromRevision: this.revision + 1 });
    if (events.length === 0 && this.current) return;
    const versions = [...(this.current?.versions ?? [])];
    for (const e of events) {
      if (e.type === CATALOG_VERSION_PUBLISHED) versions.push(fromJsonData<CatalogVersion>(e.data));
      this.revision = e.revision;
    }
    if (versions.length) this.current = parseCatalog({ versions });
  }
}
