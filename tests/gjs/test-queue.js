// test-queue.js: Dvt.Queue from GJS, through its promisified async pairs
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A smoke test: values pushed and popped on the GJS main loop (order,
// back-pressure, priority, cancellation, close). Run by meson through
// check-stderr.js.

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

Gio._promisify(Dvt.Queue.prototype, 'push_async', 'push_finish');
Gio._promisify(Dvt.Queue.prototype, 'pop_async', 'pop_finish');

// pop_finish has one out value and a (skip) boolean: the promisified call
// resolves to [value] in GJS 1.74 (see harness.outValue for other forms).
function poppedValue(r) {
    r = H.outValue(r);
    return Array.isArray(r) && r.length === 1 ? r[0] : r;
}

async function testFifo() {
    const q = Dvt.Queue.new(Dvt.QueueOrder.FIFO, 0);
    for (const v of ['one', 'two', 'three'])
        H.check(await q.push_async(v, 0, null), `push_async('${v}') resolves true`);
    H.checkEqual(q.get_n_items(), 3, 'fifo: three items in the queue');
    const got = [];
    for (let i = 0; i < 3; i++)
        got.push(poppedValue(await q.pop_async(null)));
    H.checkEqual(got, ['one', 'two', 'three'], 'fifo: pop_async returns the items in order');
}

async function testBackPressure() {
    const q = new Dvt.Queue({max_size: 1});
    await q.push_async('a', 0, null);
    let pushed = false;
    const pending = q.push_async('b', 0, null).then(ok => {
        pushed = ok;
    });
    await H.sleep(10);
    H.check(!pushed, 'back-pressure: a push into a full queue waits');
    H.checkEqual(q.get_n_waiting_pushers(), 1, 'back-pressure: one waiting pusher');
    H.checkEqual(poppedValue(await q.pop_async(null)), 'a', 'back-pressure: the first item comes out');
    await pending;
    H.check(pushed, 'back-pressure: the waiting push went in once there was room');
    H.checkEqual(poppedValue(await q.pop_async(null)), 'b', 'back-pressure: then the second item');
}

async function testPriority() {
    const q = Dvt.Queue.new(Dvt.QueueOrder.PRIORITY, 0);
    await q.push_async('low', 5, null);
    await q.push_async('high', -1, null);
    await q.push_async('middle', 2, null);
    const got = [];
    for (let i = 0; i < 3; i++)
        got.push(poppedValue(await q.pop_async(null)));
    H.checkEqual(got, ['high', 'middle', 'low'], 'priority: the lowest value first');
}

async function testWaitingPop() {
    const q = Dvt.Queue.new(Dvt.QueueOrder.FIFO, 0);
    const popped = q.pop_async(null);
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, 5, () => {
        q.try_push(42, 0);
        return GLib.SOURCE_REMOVE;
    });
    H.checkEqual(poppedValue(await popped), 42, 'a waiting pop_async gets the item pushed later');
}

async function testCancelAndClose() {
    const q = Dvt.Queue.new(Dvt.QueueOrder.FIFO, 0);
    const cancellable = new Gio.Cancellable();
    const cancelled = q.pop_async(cancellable);
    cancellable.cancel();
    const e = await H.rejection(cancelled, 'cancelled pop_async');
    H.checkGError(e, Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, null,
        'cancel: pop_async rejects with CANCELLED');

    const e2 = H.catchError(() => q.try_pop(), 'try_pop on an empty queue');
    H.checkGError(e2, Dvt.Error, Dvt.Error.EMPTY, null, 'try_pop on an empty queue throws EMPTY');

    const waiting = q.pop_async(null);
    q.close();
    const e3 = await H.rejection(waiting, 'pop_async on a closed queue');
    H.checkGError(e3, Dvt.Error, Dvt.Error.CLOSED, null, 'close: a waiting pop_async rejects with CLOSED');
    const e4 = await H.rejection(q.push_async('late', 0, null), 'push_async after close');
    H.checkGError(e4, Dvt.Error, Dvt.Error.CLOSED, null, 'close: push_async rejects with CLOSED');
    H.check(q.closed, 'close: the closed property is true');
}

H.run('test-queue.js', async () => {
    await testFifo();
    await testBackPressure();
    await testPriority();
    await testWaitingPop();
    await testCancelAndClose();
});
