import type { Kafka } from 'kafkajs';
import type { EnsuredTopic, MessagingLogger, PartitionLag, TopicSpec } from '../port';

/** See Messaging.consumerLag. */
export async function consumerLagWith(kafka: Kafka, groupId: string, topics: string[]): Promise<PartitionLag[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = topics.filter((t) => existing.has(t));
    if (present.length === 0) return [];
    const committed = await admin.fetchOffsets({ groupId, topics: present });
    const out: PartitionLag[] = [];
    for (const topic of present) {
      const marks = await admin.fetchTopicOffsets(topic);
      const group = new Map((committed.find((c) => c.topic === topic)?.partitions ?? []).map((p) => [p.partition, p.offset]));
      for (const m of marks) {
        const c = group.get(m.partition);
        const from = c === undefined || BigInt(c) < 0n ? BigInt(m.low) : BigInt(c);
        const lag = BigInt(m.high) - from;
        out.push({ topic, partition: m.partition, committed: from.toString(), high: m.high, lag: lag > 0n ? Number(lag) : 0 });
      }
    }
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  } finally {
    await admin.disconnect();
  }
}

/** See TopicAdmin.ensureTopics. */
export async function ensureTopicsWith(kafka: Kafka, topics: TopicSpec[], log: MessagingLogger): Promise<EnsuredTopic[]> {
  if (topics.length === 0) return [];
  for (const t of topics) {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(t.name)) throw new Error(`invalid topic name "${t.name}"`);
    if (!Number.isInteger(t.partitions) || t.partitions < 1) throw new Error(`topic ${t.name}: partitions must be a positive integer`);
  }
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    // 'created' = missing when we looked (another instance may have won a race: same outcome)
    const created = new Set<string>();
    if (missing.length > 0) {
      // resolves false instead of failing when another instance created some of them meanwhile
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          ...(t.replicationFactor !== undefined ? { replicationFactor: t.replicationFactor } : {}),
          ...(t.configs ? { configEntries: Object.entries(t.configs).map(([name, value]) => ({ name, value })) } : {}),
        })),
      });
      for (const t of missing) created.add(t.name);
    }
    const metadata = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.name) });
    const partitionsOf = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
    return topics.map((t) => {
      const partitions = partitionsOf.get(t.name) ?? 0;
      if (partitions < t.partitions) {
        log({
          level: 'warn',
          message: `topic ${t.name} has ${partitions} partitions, fewer than the ${t.partitions} asked for; left as it is`,
          source: 'messaging',
          fields: { topic: t.name, partitions, wanted: t.partitions },
        });
      }
      if (created.has(t.name)) {
        log({ level: 'info', message: `created topic ${t.name}`, source: 'messaging', fields: { topic: t.name, partitions } });
      }
      return { name: t.name, created: created.has(t.name), partitions };
    });
  } finally {
    await admin.disconnect();
  }
}
