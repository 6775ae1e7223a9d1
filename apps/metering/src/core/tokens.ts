/** DI tokens of the core module: what every feature shares. */

/** The validated configuration (AppConfig). */
export const APP_CONFIG = Symbol('APP_CONFIG');

/** The injected clock (Clock). */
export const CLOCK = Symbol('CLOCK');

/** The injected id generator (IdGenerator). */
export const IDS = Symbol('IDS');

/** The metrics registry of this app instance (Metrics). */
export const METRICS = Symbol('METRICS');
