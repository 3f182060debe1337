/**
 * Workflow histories as JSON fixture files, converted by @temporalio/proto's own protobuf classes (the SDK's
 * historyToJSON/historyFromJSON need the same protobufjs copy as the SDK, which this install does not hoist).
 * Longs and bytes are strings (base64), enums their names: a file a reviewer can read and diff.
 */
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';

const History = proto.temporal.api.history.v1.History;

export function historyToFixture(history: temporal.api.history.v1.IHistory): string {
  const message = History.decode(History.encode(history).finish());
  return `${JSON.stringify(History.toObject(message, { longs: String, enums: String, bytes: String }))}\n`;
}

export function historyFromFixture(text: string): temporal.api.history.v1.History {
  return History.fromObject(JSON.parse(text) as Record<string, unknown>);
}
