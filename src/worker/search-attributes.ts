/**
 * Registering the pair workflows' search attributes on a namespace (`llm-trader setup`, `llm-trader dev`). Idempotent:
 * attributes already registered with the right type are left alone.
 */
import type { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';
import { LastActionKey, PausedKey, PositionSideKey, TradingModeKey, TradingPairKey } from '../workflows/messages';
import { OperatorError } from './errors';

/** The five attributes every pair workflow sets (see src/workflows/messages.ts). */
export const PAIR_SEARCH_ATTRIBUTE_KEYS: readonly SearchAttributeKey<SearchAttributeType>[] = [
  TradingPairKey,
  TradingModeKey,
  PausedKey,
  PositionSideKey,
  LastActionKey,
];

// a CommonJS module whose named exports Node's ESM loader cannot detect: read them from the default export
const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;

/** The server's enum value for an SDK search attribute type, e.g. KEYWORD → INDEXED_VALUE_TYPE_KEYWORD. */
export function indexedValueType(type: SearchAttributeType): temporal.api.enums.v1.IndexedValueType {
  return IndexedValueType[`INDEXED_VALUE_TYPE_${type}`];
}

/** `Keyword`, `Bool`...: how the Temporal CLI spells a type (`--search-attribute TradingPair=Keyword`). */
export function cliTypeName(type: SearchAttributeType): string {
  return type
    .split('_')
    .map((w) => w.charAt(0) + w.slice(1).toLowerCase())
    .join('');
}

/** The dev server's flags that register the attributes: `--search-attribute TradingPair=Keyword ...`. */
export function devServerSearchAttributeArgs(): string[] {
  return PAIR_SEARCH_ATTRIBUTE_KEYS.flatMap((k) => ['--search-attribute', `${k.name}=${cliTypeName(k.type)}`]);
}

function typeLabel(value: temporal.api.enums.v1.IndexedValueType | undefined): string {
  if (value === undefined) return 'unknown';
  const name = IndexedValueType[value] as string | undefined;
  return name ? cliTypeName(name.replace(/^INDEXED_VALUE_TYPE_/, '') as SearchAttributeType) : String(value);
}

/** gRPC status codes the registration handles. */
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

/** The namespace does not exist (yet: a server that creates it at start may not have done so). */
export class NamespaceNotFoundError extends OperatorError {
  constructor(
    readonly namespace: string,
    options?: { cause?: unknown },
  ) {
    super(
      `namespace ${namespace} does not exist on the Temporal server: create it (\`temporal operator namespace create ` +
        `--namespace ${namespace}\`) or set temporal.namespace (or TEMPORAL_NAMESPACE) to an existing one`,
      options,
    );
    this.name = 'NamespaceNotFoundError';
  }
}

export interface SearchAttributeSetup {
  /** names registered by this call */
  added: string[];
  /** names that were already registered with the right type */
  existing: string[];
}

/**
 * Registers the missing pair search attributes on `namespace`.
 * @param retryOnRace when another client registers an attribute between our list and add, list again once (internal)
 * @throws NamespaceNotFoundError when the namespace does not exist
 * @throws OperatorError when an attribute exists with another type (it cannot be changed in place), or the server
 *   refuses the registration (e.g. the visibility store's limit of custom attributes per type)
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  retryOnRace = true,
): Promise<SearchAttributeSetup> {
  let listed: temporal.api.operatorservice.v1.IListSearchAttributesResponse;
  try {
    listed = await connection.operatorService.listSearchAttributes({ namespace });
  } catch (err) {
    if ((err as { code?: unknown }).code === NOT_FOUND) throw new NamespaceNotFoundError(namespace, { cause: err });
    throw err;
  }
  const custom = listed.customAttributes ?? {};
  const added: string[] = [];
  const existing: string[] = [];
  const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of PAIR_SEARCH_ATTRIBUTE_KEYS) {
    const want = indexedValueType(key.type);
    const have = custom[key.name] ?? listed.systemAttributes?.[key.name];
    if (have === undefined) {
      missing[key.name] = want;
    } else if (have === want) {
      existing.push(key.name);
    } else {
      throw new OperatorError(
        `search attribute ${key.name} is registered on namespace ${namespace} as ${typeLabel(have)}, but llm-trader ` +
          `needs ${cliTypeName(key.type)}: remove it (\`temporal operator search-attribute remove --name ${key.name}\`) ` +
          'and run `llm-trader setup` again, or use another namespace',
      );
    }
  }
  const names = Object.keys(missing);
  if (names.length === 0) return { added, existing };
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    added.push(...names);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // registered by someone else in the meantime: list again to check their types
    if (code === ALREADY_EXISTS && retryOnRace) return ensureSearchAttributes(connection, namespace, false);
    throw new OperatorError(
      `the server refused to register search attributes ${names.join(', ')} on namespace ${namespace}: ` +
        `${(err as Error).message}`,
      { cause: err },
    );
  }
  return { added, existing };
}
