/** Catalog builders for tests. */
import { type Catalog, type CatalogVersion, latestCatalogVersion, parseCatalog } from '../catalog/catalog';
import { defaultCatalog } from './given-when-then';

/** A deep copy of the default catalog's latest version, to edit freely. */
export function defaultVersionCopy(): CatalogVersion {
  return JSON.parse(JSON.stringify(latestCatalogVersion(defaultCatalog()))) as CatalogVersion;
}

/**
 * The default catalog followed by version 2, effective from `effectiveFrom`, edited by `edit`.
 * Goes through parseCatalog, so the result is a catalog production would accept.
 */
export function catalogWithVersion2(effectiveFrom: string, edit: (v: CatalogVersion) => void): Catalog {
  const v2 = defaultVersionCopy();
  v2.version = 2;
  v2.effectiveFrom = effectiveFrom;
  edit(v2);
  return parseCatalog({ versions: [defaultVersionCopy(), v2] });
}
