/**
 * docs/asyncapi.yaml is a valid AsyncAPI 3 document and says what the service really accepts and
 * publishes:
 *  - one channel per topic, at the service's default topic names;
 *  - each inbound schema (properties, required list, types and limits) is what the class-validator
 *    metadata of the payload classes declares, so adding, removing or changing a DTO field without
 *    updating the document fails here;
 *  - its examples pass parseInbound, and the schema and parseInbound agree on broken variants;
 *  - messages built by outboundMessage() from real stored ThresholdCrossed, PeriodReset and dead
 *    letter events (decided by the domain, appended to SQLite) validate against the document.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Parser } from '@asyncapi/parser';
import Ajv, { type ValidateFunction } from 'ajv';
import { IsString, getMetadataStorage } from 'class-validator';
import { parse as parseYaml } from 'yaml';
import { INBOUND_TOPICS, type InboundType, OUTBOUND_TOPICS } from '@metering/domain';
import { SqliteEventStore, type StoredEvent } from '@metering/event-store';
import { CatalogService } from '../../apps/metering/src/catalog/catalog.service';
import { systemIds } from '../../apps/metering/src/infra/clock';
import { INBOUND_DTOS, parseInbound } from '../../apps/metering/src/ingest/inbound.dto';
import { IngestService } from '../../apps/metering/src/ingest/ingest.service';
import { SpaceRepository } from '../../apps/metering/src/ingest/space-repository';
import { DEAD_LETTER_RECORDED, DeadLetterRecorder } from '../../apps/metering/src/kafka/dead-letters';
import { inboundTopicOf, kafkaSettingsFromEnv } from '../../apps/metering/src/kafka/kafka-settings';
import { outboundMessage } from '../../apps/metering/src/kafka/outbound-relay';

// class-transformer keeps @Type() targets here (no typed export).
const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as {
  defaultMetadataStorage: { findTypeMetadata(target: object, property: string): { typeFunction: () => new () => object } | undefined };
};

const DOC_FILE = path.join(__dirname, '../../docs/asyncapi.yaml');
type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// The JSON Schema a payload class declares, from its class-validator metadata.

/** Keywords compared between the document and the classes (descriptions and examples are free). */
const KEYWORDS = ['type', 'minLength', 'maxLength', 'pattern', 'format', 'enum', 'const', 'minimum', 'maximum', 'required', 'additionalProperties', 'properties', 'items'];

type Rule = (constraints: unknown[], s: Json) => void;
const RULES: Record<string, Rule> = {
  isString: (_, s) => void (s.type = 'string'),
  isNotEmpty: (_, s) => void (s.minLength = 1),
  maxLength: (c, s) => void (s.maxLength = c[0]),
  matches: (c, s) => void (s.pattern = (c[0] as RegExp).source),
  isIso8601: (_, s) => {
    s.type = 'string';
    s.format = 'date-time';
  },
  isIn: (c, s) => {
    const values = c[0] as unknown[];
    s.enum = [...values];
    if (values.every((v) => typeof v === 'string')) s.type = 'string';
  },
  isInt: (_, s) => void (s.type = 'integer'),
  min: (c, s) => void (s.minimum = c[0]),
  max: (c, s) => void (s.maximum = c[0]),
  isObject: (_, s) => void (s.type = 'object'),
  // JSON Schema has no lower bound for a date-time: the document states it in the description.
  min_instant: () => undefined,
};

/** What the class accepts, as a JSON Schema. Throws on a rule this test does not know (update both). */
export function schemaOfClass(cls: new () => object): Json {
  const metas = getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false);
  const props: Record<string, Json> = {};
  const optional = new Set<string>();
  for (const m of metas) {
    const s = (props[m.propertyName] ??= {});
    if (m.type === 'conditionalValidation' && m.name === 'isOptional') optional.add(m.propertyName);
    else if (m.type === 'nestedValidation') {
      const t = defaultMetadataStorage.findTypeMetadata(cls, m.propertyName);
      if (!t) throw new Error(`${cls.name}.${m.propertyName}: @ValidateNested without @Type()`);
      Object.assign(s, schemaOfClass(t.typeFunction()));
    } else if (m.type === 'customValidation' && m.name && RULES[m.name]) RULES[m.name](m.constraints ?? [], s);
    else throw new Error(`${cls.name}.${m.propertyName}: no JSON Schema mapping for class-validator ${m.type} ${m.name ?? ''}; add one here and describe it in docs/asyncapi.yaml`);
  }
  const names = Object.keys(props).sort();
  return {
    type: 'object',
    additionalProperties: false, // parseInbound: whitelist + forbidNonWhitelisted
    required: names.filter((n) => !optional.has(n)),
    properties: props,
  };
}

/** The compared keywords of a (resolved) schema, recursively, with `required` sorted. */
function comparable(schema: Json): Json {
  const out: Json = {};
  for (const k of KEYWORDS) {
    if (!(k in schema)) continue;
    const v = schema[k];
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Record<string, Json>).map(([p, ps]) => [p, comparable(ps)]));
    else if (k === 'required') out[k] = [...(v as string[])].sort();
    else if (k === 'items' && v && typeof v === 'object') out[k] = comparable(v as Json);
    else out[k] = v;
  }
  return out;
}

/** Differences between a document schema and a class, one line each ([] when they agree). */
export function differences(where: string, doc: Json, cls: Json): string[] {
  const d = comparable(doc);
  const c = comparable(cls);
  const out: string[] = [];
  const dp = (d.properties ?? {}) as Record<string, Json>;
  const cp = (c.properties ?? {}) as Record<string, Json>;
  for (const p of Object.keys(cp)) if (!(p in dp)) out.push(`${where}.${p}: declared by the class, missing from the document`);
  for (const p of Object.keys(dp)) if (!(p in cp)) out.push(`${where}.${p}: in the document, not a field of the class`);
  for (const p of Object.keys(cp)) {
    if (!(p in dp)) continue;
    if (cp[p].type === 'object' && dp[p].type === 'object') out.push(...differences(`${where}.${p}`, dp[p], cp[p]));
    else if (JSON.stringify(dp[p]) !== JSON.stringify(cp[p])) out.push(`${where}.${p}: document ${JSON.stringify(dp[p])}, class ${JSON.stringify(cp[p])}`);
  }
  for (const k of KEYWORDS.filter((k) => k !== 'properties')) {
    if (JSON.stringify(d[k]) !== JSON.stringify(c[k])) out.push(`${where} ${k}: document ${JSON.stringify(d[k])}, class ${JSON.stringify(c[k])}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The document

interface Msg {
  payload: Json;
  headers: Json | null;
  key: Json | null;
  examples: { payload: unknown; headers: unknown }[];
}
let byTopic: Map<string, Msg>;
let serverHosts: Record<string, string>;
let components: (name: string) => Json;
let ajv: Ajv;
const validators = new Map<Json, ValidateFunction>();
const validatorOf = (schema: Json): ValidateFunction => {
  let v = validators.get(schema);
  if (!v) validators.set(schema, (v = ajv.compile(schema)));
  return v;
};
const errorsOf = (schema: Json, value: unknown): string[] => {
  const v = validatorOf(schema);
  return v(value) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
};

const settings = kafkaSettingsFromEnv({ KAFKA_BROKERS: 'kafka:9092' })!;

beforeAll(async () => {
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(DOC_FILE, 'utf8'));
  // 0 = error, 1 = warning; information and hints (e.g. "3.1.0 exists") are fine.
  const problems = diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.path.join('.')}: ${d.message}`);
  expect(problems).toEqual([]);
  expect(document).toBeDefined();
  byTopic = new Map();
  for (const ch of document!.channels().all()) {
    const msgs = ch.messages().all();
    expect(msgs).toHaveLength(1);
    const m = msgs[0];
    byTopic.set(ch.address()!, {
      payload: m.payload()!.json() as Json,
      headers: (m.headers()?.json() as Json | undefined) ?? null,
      key: ((m.bindings().get('kafka')?.value() as Json | undefined)?.key as Json | undefined) ?? null,
      examples: m.examples().all().map((e) => ({ payload: e.payload(), headers: e.headers() })),
    });
  }
  serverHosts = Object.fromEntries(document!.servers().all().map((s) => [s.id(), s.host()]));
  components = (name) => {
    const s = document!.components().schemas().get(name);
    if (!s) throw new Error(`components.schemas.${name} missing`);
    return s.json() as Json;
  };
  ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s) && !Number.isNaN(Date.parse(s)));
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
});

describe('docs/asyncapi.yaml', () => {
  it('has one channel per topic, at the default topic names the service uses', () => {
    const topics = [...Object.values(INBOUND_TOPICS), ...Object.values(OUTBOUND_TOPICS)].sort();
    expect([...byTopic.keys()].sort()).toEqual(topics);
    expect(Object.values(settings.topics).sort()).toEqual(topics);
    for (const [topic, m] of byTopic) if (topic !== settings.topics.deadLetter) expect({ topic, key: m.key?.type }).toEqual({ topic, key: 'string' });
  });

  it('names the brokers of docker/compose.yaml (from the host) and of k8s/configmap.yaml', () => {
    const compose = parseYaml(fs.readFileSync(path.join(__dirname, '../../docker/compose.yaml'), 'utf8'));
    const advertised = String(compose.services.kafka.environment.KAFKA_ADVERTISED_LISTENERS).split(',').map((l) => l.replace(/^\w+:\/\//, ''));
    expect(advertised).toContain(serverHosts.local);
    const configMap = parseYaml(fs.readFileSync(path.join(__dirname, '../../k8s/configmap.yaml'), 'utf8'));
    expect(configMap.data.KAFKA_BROKERS.split(',')).toContain(serverHosts.cluster);
  });

  describe.each(Object.keys(INBOUND_DTOS) as InboundType[])('inbound %s', (type) => {
    const msg = () => byTopic.get(inboundTopicOf(settings, type))!;

    it('declares exactly the fields, required list and limits of the payload class', () => {
      const cls = schemaOfClass(INBOUND_DTOS[type]);
      expect(differences(type, msg().payload, cls)).toEqual([]);
    });

    it('has examples that parseInbound accepts and the schema accepts', () => {
      expect(msg().examples.length).toBeGreaterThan(0);
      for (const ex of msg().examples) {
        expect(parseInbound(ex.payload, type)).toMatchObject({ ok: true });
        expect(errorsOf(msg().payload, ex.payload)).toEqual([]);
      }
    });

    it('agrees with parseInbound on broken variants of each example', () => {
      const schema = msg().payload;
      const props = schema.properties as Record<string, Json>;
      for (const ex of msg().examples) {
        const base = ex.payload as Json;
        const variants: Json[] = [{ ...base, unknownField: 1 }];
        for (const f of Object.keys(props)) {
          const { [f]: _, ...without } = base;
          variants.push(without);
          variants.push({ ...base, [f]: 12.5 });
          variants.push({ ...base, [f]: '' });
          variants.push({ ...base, [f]: 'x'.repeat(200) });
        }
        for (const v of variants) {
          const app = parseInbound(v, type).ok;
          const doc = errorsOf(schema, v).length === 0;
          expect({ variant: v, docAccepts: doc }).toEqual({ variant: v, docAccepts: app });
        }
      }
    });
  });

  it('would catch a class field the document lacks, and a document field the class lacks', () => {
    class Extended extends INBOUND_DTOS['batch-exported'] {}
    // A new decorated field on a payload class:
    IsString()(Extended.prototype, 'campaign');
    const doc = byTopic.get(settings.topics.batchExported)!.payload;
    expect(differences('batch-exported', doc, schemaOfClass(Extended))).toEqual([
      'batch-exported.campaign: declared by the class, missing from the document',
      'batch-exported required: document ["batchId","eventId","images","occurredAt","platform","spaceId","userId"], class ["batchId","campaign","eventId","images","occurredAt","platform","spaceId","userId"]',
    ]);
    // A field removed from the class (here: from a copy of the document):
    const props = { ...(doc.properties as Json) };
    delete props.platform;
    const shrunk = { ...doc, properties: props, required: (doc.required as string[]).filter((r) => r !== 'platform') };
    expect(differences('batch-exported', shrunk, schemaOfClass(INBOUND_DTOS['batch-exported']))).toEqual([
      'batch-exported.platform: declared by the class, missing from the document',
      expect.stringContaining('batch-exported required:'),
    ]);
  });

  describe('outbound messages built by outboundMessage() from real stored events', () => {
    let dir: string;
    let store: SqliteEventStore;
    let stored: StoredEvent[];

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-asyncapi-'));
      store = new SqliteEventStore(path.join(dir, 'metering.db'));
      let now = Date.parse('2026-11-20T12:00:00Z');
      const clock = { now: () => now };
      const catalog = new CatalogService(store, systemIds, null);
      await catalog.init();
      const ingest = new IngestService(store, new SpaceRepository(store), catalog, clock, systemIds);
      const outcomes = await ingest.ingest([
        { type: 'subscription-changed', eventId: 'sub-acme', spaceId: 'acme', plan: 'pro', cycle: 'monthly', effectiveAt: '2026-10-15T09:00:00Z' },
        // past 80 % and 100 % of pro's image credits in one go; a free Space (periods never end) too
        { type: 'generation-performed', eventId: 'g-1', spaceId: 'acme', userId: 'ann', feature: 'ai_backgrounds', medium: 'image', generations: 200, occurredAt: '2026-11-20T11:00:00Z' },
        { type: 'generation-performed', eventId: 'g-2', spaceId: 'freebie', userId: 'bob', feature: 'ai_backgrounds', medium: 'image', generations: 30, occurredAt: '2026-11-20T11:00:00Z' },
      ]);
      expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'accepted']);
      now = Date.parse('2026-12-16T00:00:00Z');
      expect(await ingest.executeForSpace('acme', [{ type: 'ResetDuePeriods', spaceId: 'acme' }])).toMatchObject([{ outcome: 'accepted' }]);

      // A poison message recorded as a dead letter, as the Kafka ingest does.
      const raw = Buffer.from('{"eventId":"bad one","spaceId":"acme"}');
      const rejected = parseInbound(JSON.parse(raw.toString()), 'generation-performed');
      expect(rejected.ok).toBe(false);
      const recorder = new DeadLetterRecorder(store, systemIds, () => now);
      const letter = recorder.letter(settings.topics.generationPerformed, 2, { key: 'acme', value: raw, headers: { traceparent: '00-abc-def-01' }, offset: '17', timestamp: '1763640000000' }, rejected.ok ? [] : rejected.errors);
      await recorder.record([letter]);

      stored = await store.readAll({ types: ['ThresholdCrossed', 'PeriodReset', DEAD_LETTER_RECORDED] });
    });
    afterAll(async () => {
      await store?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('covers thresholds with and without a period end, a reset and a dead letter', () => {
      const thresholds = stored.filter((e) => e.type === 'ThresholdCrossed');
      expect(thresholds.some((e) => e.data.periodEnd === null)).toBe(true);
      expect(thresholds.some((e) => typeof e.data.periodEnd === 'string')).toBe(true);
      expect(thresholds.map((e) => e.data.threshold)).toEqual(expect.arrayContaining([80, 100]));
      expect(stored.filter((e) => e.type === 'PeriodReset')).not.toHaveLength(0);
      expect(stored.filter((e) => e.type === DEAD_LETTER_RECORDED)).toHaveLength(1);
    });

    it('ThresholdCrossed and PeriodReset: payload, headers and key match the document', () => {
      for (const e of stored.filter((x) => x.type !== DEAD_LETTER_RECORDED)) {
        const { topic, message } = outboundMessage(settings, e);
        const doc = byTopic.get(topic);
        expect(doc).toBeDefined();
        const payload = JSON.parse(String(message.value));
        expect({ type: e.type, errors: errorsOf(doc!.payload, payload) }).toEqual({ type: e.type, errors: [] });
        expect({ type: e.type, errors: errorsOf(doc!.headers!, message.headers) }).toEqual({ type: e.type, errors: [] });
        expect(message.key).toBe(e.data.spaceId);
        expect(errorsOf(doc!.key!, message.key)).toEqual([]);
      }
    });

    it('dead letter: the original bytes, and headers that match the document', () => {
      const e = stored.find((x) => x.type === DEAD_LETTER_RECORDED)!;
      const { topic, message } = outboundMessage(settings, e);
      const doc = byTopic.get(topic)!;
      expect(topic).toBe(OUTBOUND_TOPICS.deadLetter);
      expect(Buffer.from(message.value as Buffer).toString()).toBe('{"eventId":"bad one","spaceId":"acme"}');
      expect(message.key).toBe('acme');
      expect(errorsOf(doc.headers!, message.headers)).toEqual([]);
      expect(message.headers!.traceparent).toBe('00-abc-def-01');
      expect(errorsOf(components('Rejections'), JSON.parse(message.headers!['dlq-errors']))).toEqual([]);
    });

    it('the outbound examples in the document validate too, and a broken envelope is rejected', () => {
      for (const topic of [settings.topics.thresholdCrossed, settings.topics.periodReset]) {
        const doc = byTopic.get(topic)!;
        expect(doc.examples.length).toBeGreaterThan(0);
        for (const ex of doc.examples) {
          expect(errorsOf(doc.payload, ex.payload)).toEqual([]);
          expect(errorsOf(doc.headers!, ex.headers)).toEqual([]);
        }
      }
      const e = stored.find((x) => x.type === 'ThresholdCrossed')!;
      const { topic, message } = outboundMessage(settings, e);
      const { id: _, ...noId } = JSON.parse(String(message.value));
      expect(errorsOf(byTopic.get(topic)!.payload, noId)).toContain("/ must have required property 'id'");
      const extra = JSON.parse(String(message.value));
      extra.data.newField = 1;
      expect(errorsOf(byTopic.get(topic)!.payload, extra)).toContain('/data must NOT have additional properties');
    });
  });
});
