/**
 * Workflow histories as JSON fixture files, converted by @temporalio/proto's own protobuf classes (the SDK's
 * historyToJSON/historyFromJSON need the same protobufjs copy as the SDK, which this install does not hoist).
 * Longs and bytes are strings (base64), enums their names: a file a reviewer can read and diff.
 */
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';

const History = proto.temporal.api.history.v1.History;

/**
 * A fixture file: `{"workflowId": ..., "history": ...}`. The workflow id is kept because a replay must run under the
 * id the history was recorded with: the workflow derives its order ids (and so its admission requests, whose answers
 * come back in signals) from it. Files of older recordings hold the bare history.
 */
export function historyToFixture(history: temporal.api.history.v1.IHistory, workflowId: string): string {
  const message = History.decode(History.encode(history).finish());
  const body = History.toObject(message, { longs: String, enums: String, bytes: String });
  return `${JSON.stringify({ workflowId, history: body })}\n`;
}

export function historyFromFixture(text: string): {
  workflowId: string | null;
  history: temporal.api.history.v1.History;
} {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (typeof parsed.workflowId === 'string' && parsed.history !== null && typeof parsed.history === 'object') {
    return {
      workflowId: parsed.workflowId,
      history: History.fromObject(parsed.history as Record<string, unknown>),
    };
  }
  return { workflowId: null, history: History.fromObject(parsed) };
}
