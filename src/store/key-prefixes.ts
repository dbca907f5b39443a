// --key-prefix may repeat (one daemon evicting a Django cache under ':1:' and afc's own read-through
// entries under another prefix): every store evicts each workflow under every prefix, and fills under the
// first. The library keeps accepting a single string.
import { UsageError } from '../errors.js';

export type KeyPrefixOption = string | readonly string[];

export function keyPrefixList(option: KeyPrefixOption): readonly string[] {
  const list = typeof option === 'string' ? [option] : [...new Set(option)];
  if (list.length === 0) throw new UsageError('keyPrefix must name at least one prefix (the empty string is a prefix)');
  return list;
}
