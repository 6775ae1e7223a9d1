/** DI tokens of the projection feature. */

/** The balance read model (BalanceReadModel; users take the role they need: BalanceQueries, BalanceProjection, PositionStore). */
export const BALANCE_READ_MODEL = Symbol('BALANCE_READ_MODEL');

/** The usage breakdown read model (BreakdownReadModel). */
export const BREAKDOWN_READ_MODEL = Symbol('BREAKDOWN_READ_MODEL');

/** The in-memory entitlement view (EntitlementView), or null without the api role. */
export const ENTITLEMENT_VIEW = Symbol('ENTITLEMENT_VIEW');
