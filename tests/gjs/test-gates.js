// test-gates.js: Dvt.Semaphore, Dvt.RateLimiter and Dvt.Lockout from GJS,
// through the promisified enter_async
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A smoke test on the GJS main loop: a waiting entry admitted when another
// leaves, priority order, a cancelled wait, a limiter's window sliding, a
// lockout's timer, and JavaScript async work held back by a gate. Run by
// meson through check-stderr.js.

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

Gio._promisify(Dvt.Semaphore.prototype, 'enter_async', 'enter_finish');
Gio._promisify(Dvt.Semaphore.prototype, 'enter_with_priority_async', 'enter_with_priority_finish');
Gio._promisify(Dvt.RateLimiter.prototype, 'enter_async', 'enter_finish');
Gio._promisify(Dvt.Lockout.prototype, 'enter_async', 'enter_finish');
Gio._promisify(Dvt.Runtime.prototype, 'run_async', 'run_finish');

async function testSemaphore() {
    const sem = Dvt.Semaphore.new(1);
    H.check(await sem.enter_async(null), 'semaphore: enter_async resolves true');
    H.checkEqual(sem.get_available(), 0, 'semaphore: no permit left');
    const order = [];
    const waits = [3, 1, 2].map(p => sem.enter_with_priority_async(p, null).then(() => {
        order.push(p);
        sem.leave();
    }));
    H.check(await H.until(() => sem.get_n_waiting() === 3), 'semaphore: three waiters');
    sem.leave();
    await Promise.all(waits);
    H.checkEqual(order, [1, 2, 3], 'semaphore: waiters admitted by priority');
    H.checkEqual(sem.get_available(), 1, 'semaphore: the permit is back');

    H.check(sem.try_enter(), 'semaphore: try_enter');
    const cancellable = new Gio.Cancellable();
    const cancelled = sem.enter_async(cancellable);
    cancellable.cancel();
    const e = await H.rejection(cancelled, 'a cancelled enter_async');
    H.checkGError(e, Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, null,
        'semaphore: a cancelled wait rejects with CANCELLED');
    sem.leave();
    H.checkEqual(sem.get_available(), 1, 'semaphore: no permit lost');
}

async function testLimiterAndLockout() {
    const limiter = Dvt.RateLimiter.new(2, 0.05);
    const start = GLib.get_monotonic_time();
    for (let i = 0; i < 3; i++) {
        await limiter.enter_async(null);
        limiter.leave();
    }
    H.check(GLib.get_monotonic_time() - start >= 50000,
        'limiter: the third entry waited for the window to slide');
    const e = H.catchError(() => Dvt.RateLimiter.new(0, 1), 'a limit of 0');
    H.checkGError(e, Dvt.Error, Dvt.Error.INVALID_ARGUMENT, null,
        'limiter: a limit of 0 throws INVALID_ARGUMENT');

    const lockout = Dvt.Lockout.new(true);
    const t0 = GLib.get_monotonic_time();
    lockout.lock_for(0.05);
    await lockout.enter_async(null);
    lockout.leave();
    H.check(GLib.get_monotonic_time() - t0 >= 50000, 'lockout: enter_async waited for the lockout');
}

async function testGatedWork() {
    const runtime = Dvt.Runtime.new(1);
    const sem = Dvt.Semaphore.new(1);
    const options = new Dvt.Options({use_caller_context: true});
    options.add_gate(sem);
    H.check(sem.try_enter(), 'gated work: the test holds the permit');
    let ran = false;
    const done = runtime.run_async((task, cancellable) => {
        ran = true;
        task.return_value(7);
    }, options, null);
    H.check(await H.until(() => sem.get_n_waiting() === 1), 'gated work: the task waits at the gate');
    H.check(!ran, 'gated work: the work has not started');
    sem.leave();
    const r = await done;
    H.checkEqual(Array.isArray(r) && r.length === 1 ? r[0] : r, 7, 'gated work: it ran once admitted');
    H.check(await H.until(() => sem.get_available() === 1), 'gated work: the permit is back');
    runtime.shutdown(true, false);
}

H.run('test-gates.js', async () => {
    await testSemaphore();
    await testLimiterAndLockout();
    await testGatedWork();
});
