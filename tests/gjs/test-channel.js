// test-channel.js: Dvt.Channel and Dvt.Batcher from GJS, through their
// promisified async pairs
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A smoke test. GJS runs JavaScript only on its own thread, so a producer
// or a batch function written in JavaScript is refused on the worker (GJS
// prints a critical, which meson allows here): the consumer on the GJS main
// loop must then get Dvt.Error.NOT_COMPLETED through receive_async, never
// hang. Also: the end of the stream after a close, a batcher with nothing to
// run closed through close_async, and calls after a shutdown.

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

Gio._promisify(Dvt.Channel.prototype, 'receive_async', 'receive_finish');
Gio._promisify(Dvt.Batcher.prototype, 'close_async', 'close_finish');

async function testRefusedProducer(rt) {
    const channel = rt.produce(() => true, 2, null, null);
    H.checkEqual(channel.capacity, 2, 'produce: the capacity property');
    const e = await H.rejection(channel.receive_async(null), 'receive_async of a refused producer');
    H.checkGError(e, Dvt.Error, Dvt.Error.NOT_COMPLETED, null,
        'a JavaScript producer refused on the worker: receive_async rejects with NOT_COMPLETED');
    // Reported once: then the end of the stream, [false, null].
    const r = await channel.receive_async(null);
    H.check(Array.isArray(r) && r[0] === false, `then receive_async resolves to the end of the stream (${H.describe(r)})`);
}

async function testClose(rt) {
    const channel = rt.produce(() => true, 1, null, null);
    channel.close('not needed');
    H.check(channel.is_closed(), 'close: is_closed() is true');
    const e = await H.rejection(channel.receive_async(null), 'receive_async after close');
    H.checkGError(e, Dvt.Error, Dvt.Error.CLOSED, null, 'close: receive_async rejects with CLOSED');
}

async function testBatcherCloseAsync(rt) {
    const batcher = Dvt.Batcher.new(rt, () => {}, 10, 0.5, null);
    H.checkEqual(batcher.max_items, 10, 'batcher: the max-items property');
    H.check(await batcher.close_async(null), 'batcher: close_async with nothing pending resolves true');
    const e = H.catchError(() => batcher.add(1), 'add after close');
    H.checkGError(e, Dvt.Error, Dvt.Error.CLOSED, null, 'batcher: add after close throws CLOSED');
    const bad = H.catchError(() => Dvt.Batcher.new(rt, () => {}, 0, 0, null), 'max_items 0');
    H.checkGError(bad, Dvt.Error, Dvt.Error.INVALID_ARGUMENT, null,
        'batcher: max_items 0 throws INVALID_ARGUMENT');
}

async function testAfterShutdown() {
    const rt = Dvt.Runtime.new(1);
    rt.shutdown(true, false);
    const e = H.catchError(() => rt.produce(() => true, 1, null, null), 'produce after shutdown');
    H.checkGError(e, Dvt.Error, Dvt.Error.CLOSED, null, 'produce after shutdown throws CLOSED');
}

H.run('test-channel.js', async () => {
    const rt = Dvt.Runtime.new(2);
    await testRefusedProducer(rt);
    await testClose(rt);
    await testBatcherCloseAsync(rt);
    rt.shutdown(true, false);
    await testAfterShutdown();
});
