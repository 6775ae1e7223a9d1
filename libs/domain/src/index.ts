export * from './catalog/catalog';
export * from './catalog/pricing';
export * from './contracts';
export * from './events';
export * from './period';
export * from './timeline';
export * from './space';
export * from './usage';
export { default as defaultCatalogJson } from './catalog/default-catalog.json';
