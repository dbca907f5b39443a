// The payload codec: what the triggers send decodes; anything else is reported as invalid, never guessed.
import t from 'tap';
import { decode, encode, MAX_PAYLOAD_BYTES } from '../src/codec.js';
import { cacheKey, cacheKeyPattern } from '../src/contract.js';

t.test('evict and flush messages survive encode → decode', async (t) => {
  const evict = { op: 'evict', src: 'dc', ts: 1732450000123.456, ids: [1, 42, 9007199254740991] } as const;
  t.same(decode(encode({ ...evict, ids: [...evict.ids] })), { ok: true, message: evict });
  const flush = { op: 'flush', src: 'wdcg', ts: 5, reason: 'truncate' } as const;
  t.same(decode(encode(flush)), { ok: true, message: flush });
  t.same(decode('{"v":1,"op":"evict","src":"dcg","ts":1,"ids":[]}'), { ok: true, message: { op: 'evict', src: 'dcg', ts: 1, ids: [] } });
});

t.test('invalid payloads say why', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['nope', /not JSON/],
    ['[1]', /not a JSON object/],
    ['{"v":1,"op":"evict","src":"dc","ts":1,"ids":[0]}', /id 0 is not a positive integer/],
    ['{"v":1,"op":"evict","src":"dc","ts":1,"ids":[9007199254740993]}', /not a positive integer/],
    ['{"v":1,"op":"evict","src":"dc","ts":"now","ids":[1]}', /ts is not a number/],
    ['{"v":1,"op":"evict","src":"toString","ts":1,"ids":[1]}', /unknown src/],
    [`{"v":1,"op":"evict","src":"dc","ts":1,"ids":[${'1,'.repeat(4000)}1]}`, new RegExp(`exceeds ${MAX_PAYLOAD_BYTES}`)],
  ];
  for (const [payload, why] of cases) {
    const d = decode(payload);
    t.equal(d.ok, false, payload.slice(0, 60));
    if (!d.ok) t.match(d.error, why);
  }
});

t.test('keys follow the contract and the flush pattern escapes glob characters', async (t) => {
  t.equal(cacheKey(':1:', 7), ':1:workflow:action_filters_by_workflow:7');
  t.equal(cacheKeyPattern('a*b?[c]\\:'), 'a\\*b\\?\\[c\\]\\\\:workflow:action_filters_by_workflow:*');
});
