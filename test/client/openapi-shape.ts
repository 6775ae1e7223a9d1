/**
 * Checks a JSON answer against a schema of the service's OpenAPI document (the one GET /docs-json
 * serves and the client's types are generated from): types, required and unknown properties,
 * enums, nullable, arrays, $ref. Returns the differences, [] when the answer has the shape.
 */
type Schema = {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: unknown[];
  nullable?: boolean;
  oneOf?: Schema[];
};

export function shapeDiff(doc: { components: { schemas: Record<string, Schema> } }, schemaName: string, value: unknown): string[] {
  const out: string[] = [];
  const walk = (s: Schema, v: unknown, at: string) => {
    if (s.$ref) return walk(doc.components.schemas[s.$ref.replace('#/components/schemas/', '')], v, at);
    if (s.oneOf) {
      if (!s.oneOf.some((o) => { const before = out.length; walk(o, v, at); const ok = out.length === before; out.length = before; return ok; }))
        out.push(`${at}: matches none of oneOf`);
      return;
    }
    if (v === null) {
      if (!s.nullable) out.push(`${at}: null but not nullable`);
      return;
    }
    if (s.enum && !s.enum.includes(v)) out.push(`${at}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
    const type = s.type ?? (s.properties ? 'object' : undefined);
    switch (type) {
      case 'object': {
        if (typeof v !== 'object' || Array.isArray(v)) return void out.push(`${at}: not an object`);
        const o = v as Record<string, unknown>;
        for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}.${r}: required, missing`);
        for (const [k, x] of Object.entries(o)) {
          const p = s.properties?.[k];
          if (p) walk(p, x, `${at}.${k}`);
          else if (s.properties && s.additionalProperties !== true && typeof s.additionalProperties !== 'object') out.push(`${at}.${k}: not in the document`);
        }
        return;
      }
      case 'array':
        if (!Array.isArray(v)) return void out.push(`${at}: not an array`);
        v.forEach((x, i) => s.items && walk(s.items, x, `${at}[${i}]`));
        return;
      case 'string':
      case 'boolean':
        if (typeof v !== type) out.push(`${at}: ${typeof v}, not ${type}`);
        return;
      case 'number':
      case 'integer':
        if (typeof v !== 'number') out.push(`${at}: ${typeof v}, not a number`);
        return;
    }
  };
  walk({ $ref: `#/components/schemas/${schemaName}` }, value, schemaName);
  return out;
}
