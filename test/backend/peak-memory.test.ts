// The backends' memory high-water mark: the most bytes live at once, counted whether a storage is new
// or reused from the pool, lowered only by resetPeakLiveBytes (to what is live then).
import * as assert from 'uvu/assert';
import { conformance } from '../helpers/backends.js';

conformance('peak live bytes', (test, be) => {
  test('the peak follows the most bytes live at once, also for pooled storages, until reset', () => {
    const b = be();
    b.resetPeakLiveBytes();
    const base = b.memory().liveBytes;
    assert.is(b.peakLiveBytes(), base, 'a reset starts at what is live');
    const big = b.alloc(4096, 'f32');
    const bigBytes = b.memory().liveBytes - base;
    const small = b.alloc(64, 'f32');
    const both = b.memory().liveBytes;
    assert.ok(bigBytes >= 4096 * 4, `${bigBytes} bytes for 4096 floats`);
    assert.is(b.peakLiveBytes(), both);
    b.free(big);
    b.free(small);
    assert.is(b.peakLiveBytes(), both, 'freeing does not lower the peak');
    b.resetPeakLiveBytes();
    assert.is(b.peakLiveBytes(), base);
    // The same size again comes from the pool, and still counts.
    const again = b.alloc(4096, 'f32');
    assert.ok(b.memory().pooledBytes >= 0);
    assert.is(b.peakLiveBytes(), base + bigBytes);
    b.free(again);
    assert.is(b.peakLiveBytes(), base + bigBytes);
  });
});
