// test-events.js: a runtime's event signals in GJS, on the GJS main context
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GJS runs JavaScript only on its own thread, so a runtime observed from
// JavaScript is given the GJS main context as its event_context: the
// handlers then run there, from the main loop. (A handler called on
// another thread would not run at all; GJS would print a critical, which
// check-stderr.js turns into a failure.) The work is JavaScript async work
// on the same context (use_caller_context).

imports.gi.versions.Dvt = '1';
const {Dvt, GLib, Gio} = imports.gi;

imports.searchPath.unshift(GLib.path_get_dirname(imports.system.programPath));
const H = imports.harness;

const mainContext = GLib.MainContext.default();

// Every event of @rt (or of the task @rt when @own), with whether it was
// delivered from the running main loop.
function record(instance, own = false, detail = null) {
    const events = [];
    const kinds = ['queued', 'started', 'retry', 'throttled', 'failed', 'cancelled', 'finished'];
    for (const kind of kinds) {
        const signal = detail ? `${kind}::${detail}` : kind;
        instance.connect(signal, (...args) => {
            const task = own ? args[0] : args[1];
            const rest = own ? args.slice(1) : args.slice(2);
            const ev = {
                kind,
                id: task.get_id(),
                name: task.get_name(),
                attempt: task.get_attempt(),
                onMainContext: mainContext.is_owner(),
                loopDepth: GLib.main_depth(),
            };
            if (kind === 'started')
                [ev.attempt] = rest;
            else if (kind === 'retry')
                [ev.error, ev.attempt, ev.value] = rest;
            else if (kind === 'throttled' || kind === 'finished')
                [ev.value] = rest;
            else if (kind === 'failed' || kind === 'cancelled')
                [ev.error, ev.value] = rest;
            events.push(ev);
        });
    }
    return events;
}

function seq(events, id = null) {
    return events.filter(e => id === null || e.id === id)
        .map(e => e.kind + (e.kind === 'started' || e.kind === 'retry' ? e.attempt : ''))
        .join(' ');
}

// JavaScript async work that completes after @ms on this context.
function later(ms, value) {
    return task => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            task.return_value(value);
            return GLib.SOURCE_REMOVE;
        });
    };
}

async function testFinished(rt) {
    const finished = [];
    const id = rt.connect('finished', (runtime, task, elapsed) => {
        finished.push({
            runtime,
            task,
            id: task.get_id(),
            elapsed,
            onMainContext: mainContext.is_owner(),
            loopDepth: GLib.main_depth(),
        });
    });

    const opts = new Dvt.Options({use_caller_context: true, name: 'js-work'});
    const task = rt.schedule(later(30, 'js result'), opts, null);
    H.check(await H.until(() => finished.length === 1, 5000),
        'finished: the handler ran once');
    rt.disconnect(id);

    const f = finished[0];
    H.check(f !== undefined && f.runtime === rt, 'finished: the handler got the runtime');
    H.check(f !== undefined && f.id === task.get_id(),
        `finished: the handler got the scheduled task (id ${f && f.id} vs ${task.get_id()})`);
    H.check(f !== undefined && f.task.get_name() === 'js-work', 'finished: the task carries its name');
    H.check(f !== undefined && f.onMainContext, 'finished: the handler ran on the GJS main context');
    H.check(f !== undefined && f.loopDepth >= 1,
        `finished: the handler ran from the main loop (depth ${f && f.loopDepth})`);
    H.check(f !== undefined && typeof f.elapsed === 'number' && f.elapsed >= 0.03 - 0.003 && f.elapsed < 10,
        `finished: elapsed ${f && f.elapsed} s covers the 30 ms of work`);
    H.checkEqual(H.outValue(task.propagate_value()), 'js result', 'finished: the task\'s result');
}

async function testOrderAndErrors(rt) {
    const events = record(rt);
    const retrying = new Dvt.Options({use_caller_context: true, retries: 2, retry_backoff: 0.005, name: 'flaky'});
    const attempts = [];
    const task = rt.schedule(t => {
        attempts.push(t.get_attempt());
        if (t.get_attempt() < 3)
            throw new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.BUSY, `busy ${t.get_attempt()}`);
        later(5, 'third')(t);
    }, retrying, null);
    H.check(await H.until(() => events.some(e => e.id === task.get_id() && e.kind === 'finished'), 5000),
        'order: the retried task finished');
    H.checkEqual(seq(events, task.get_id()), 'queued started1 retry1 started2 retry2 started3 finished',
        'order: queued, started per attempt with retry between, finished');
    const retries = events.filter(e => e.kind === 'retry');
    H.check(retries.length === 2 && retries.every((e, i) =>
        e.error instanceof GLib.Error && e.error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.BUSY) &&
            e.error.message === `busy ${i + 1}` && e.attempt === i + 1 &&
            Math.abs(e.value - 0.005 * 2 ** i) < 1e-9),
    'order: each retry carries its attempt\'s error, the attempt and the back-off');

    const failing = rt.schedule(() => {
        throw new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.PERMISSION_DENIED, 'no');
    }, new Dvt.Options({use_caller_context: true}), null);
    H.check(await H.until(() => events.some(e => e.id === failing.get_id() && e.kind === 'failed'), 5000),
        'failed: the failing task has its event');
    const failed = events.find(e => e.id === failing.get_id() && e.kind === 'failed');
    H.checkGError(failed.error, Gio.IOErrorEnum, Gio.IOErrorEnum.PERMISSION_DENIED, /^no$/,
        'failed: the event carries the thrown GLib.Error');

    let kept = null;
    const cancelled = rt.schedule(t => {
        kept = t;
    }, new Dvt.Options({use_caller_context: true}), null);
    await H.until(() => kept !== null, 5000);
    cancelled.cancel();
    H.check(await H.until(() => events.some(e => e.id === cancelled.get_id() && e.kind === 'cancelled'), 5000),
        'cancelled: the cancelled task has its event');
    H.checkEqual(seq(events, cancelled.get_id()), 'queued started1 cancelled', 'cancelled: its events');
    kept = null;

    H.check(events.every(e => e.onMainContext), 'every handler ran on the GJS main context');
    const ids = [...new Set(events.map(e => e.id))];
    H.check(ids.every(i => events.filter(e => e.id === i && ['failed', 'cancelled', 'finished'].includes(e.kind)).length === 1),
        'every task has exactly one terminal event');
}

async function testTaskSignal(rt) {
    let keep = null;
    const task = rt.schedule(t => {
        keep = t;
    }, new Dvt.Options({use_caller_context: true}), null);
    // Connected after scheduling: the task's own signal.
    let got = null;
    task.connect('finished', (t, elapsed) => {
        got = {id: t.get_id(), elapsed, onMainContext: mainContext.is_owner()};
    });
    await H.until(() => keep !== null, 5000);
    await H.sleep(20);
    keep.return_value('own');
    keep = null;
    H.check(await H.until(() => got !== null, 5000), 'task signal: the task\'s own finished ran');
    H.check(got !== null && got.id === task.get_id() && got.onMainContext && got.elapsed >= 0.02 - 0.003,
        `task signal: on the main context, with the task and its elapsed (${got && got.elapsed})`);
}

async function testDetail(rt) {
    const onlyA = record(rt, false, 'a');
    const opts = name => new Dvt.Options({use_caller_context: true, name});
    const ta = rt.schedule(later(1, 1), opts('a'), null);
    const tb = rt.schedule(later(1, 2), opts('b'), null);
    const tn = rt.schedule(later(1, 3), new Dvt.Options({use_caller_context: true}), null);
    await H.until(() => [ta, tb, tn].every(t => t.get_completed()), 5000);
    await H.sleep(20);
    H.checkEqual(seq(onlyA), 'queued started1 finished', 'detail: finished::a got only the task named a');
    H.check(onlyA.every(e => e.id === ta.get_id()), 'detail: and it is that task');
}

// An event scope: by name, and re-entry bounded. A JavaScript function has
// no address to scope by (Dvt.Options.set_function takes a pointer), so GJS
// scopes by name or task id.
async function testScope(rt) {
    const scope = Dvt.EventScope.new(rt, 'chain', null, 0);
    scope.max_depth = 3;
    const opts = new Dvt.Options({use_caller_context: true, name: 'chain'});
    const calls = [];
    scope.connect('finished', (s, task) => {
        calls.push(task.get_id());
        // Follow-up work of the same name: the scope's own chain.
        rt.schedule(later(1, calls.length), opts, null);
    });
    const other = Dvt.EventScope.new(rt, 'other', null, 0);
    let otherCalls = 0;
    other.connect('finished', () => otherCalls++);

    const first = rt.schedule(later(1, 0), opts, null);
    H.check(await H.until(() => calls.length === 3, 5000), 'scope: the chain called the handler 3 times');
    await H.sleep(50);
    H.checkEqual(calls.length, 3, 'scope: max_depth 3 gives exactly 3 calls');
    H.checkEqual(calls[0], first.get_id(), 'scope: the first call is for the first task');
    H.checkEqual(otherCalls, 0, 'scope: a scope of another name got nothing');

    let error = null;
    try {
        Dvt.EventScope.new(rt, 'x', null, first.get_id());
    } catch (e) {
        error = e;
    }
    H.checkGError(error, Dvt.Error, Dvt.Error.INVALID_ARGUMENT, /task id/,
        'scope: a task id with a name is refused');
}

H.run('test-events.js', async () => {
    const rt = new Dvt.Runtime({max_workers: 2, event_context: mainContext});
    H.check(rt.event_context !== null, 'runtime: event_context set');

    await testFinished(rt);
    await testOrderAndErrors(rt);
    await testTaskSignal(rt);
    await testDetail(rt);
    await testScope(rt);

    rt.shutdown(true, false);
    // Whatever the shutdown left for this context is delivered here.
    while (mainContext.iteration(false))
        ;
});
