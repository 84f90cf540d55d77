// harness.js: tiny test helpers shared by the GJS tests
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Load with:
//   imports.searchPath.unshift(GLib.path_get_dirname(...this file...));
//   const Harness = imports.harness;
//
// Every check prints one line ("ok N - ..." / "not ok N - ..."); run()
// drives an async main function on a GLib.MainLoop, with a watchdog, and
// exits 1 if any check failed or the function threw.

const {GLib} = imports.gi;
const System = imports.system;

var nChecks = 0;
var nFailed = 0;

function check(ok, what) {
    nChecks++;
    if (ok) {
        print(`ok ${nChecks} - ${what}`);
    } else {
        nFailed++;
        print(`not ok ${nChecks} - ${what}`);
    }
    return ok;
}

function describe(v) {
    if (v instanceof GLib.Error)
        return `GLib.Error(${GLib.quark_to_string(v.domain)}, ${v.code}, ${JSON.stringify(v.message)})`;
    if (v instanceof Error)
        return `${v.name}(${JSON.stringify(v.message)})`;
    try {
        return JSON.stringify(v);
    } catch (e) {
        return String(v);
    }
}

function checkEqual(actual, expected, what) {
    const a = describe(actual), e = describe(expected);
    return check(a === e, `${what} (expected ${e}, got ${a})`);
}

// Checks that @error is a GLib.Error of @domain (a quark or an enum
// namespace such as Gio.IOErrorEnum) and @code, optionally with a message
// matching @messageRe.
function checkGError(error, domain, code, messageRe, what) {
    const isGError = error instanceof GLib.Error;
    const matches = isGError && error.matches(domain, code);
    let ok = matches;
    if (ok && messageRe)
        ok = messageRe.test(error.message);
    return check(ok, `${what} (got ${describe(error)})`);
}

// Runs @fn, which must throw; returns what it threw, or null (and fails a
// check) if it returned.
function catchError(fn, what) {
    try {
        const r = fn();
        check(false, `${what}: expected an error, got ${describe(r)}`);
        return null;
    } catch (e) {
        return e;
    }
}

async function rejection(promise, what) {
    try {
        const r = await promise;
        check(false, `${what}: expected a rejection, got ${describe(r)}`);
        return null;
    } catch (e) {
        return e;
    }
}

function sleep(ms) {
    return new Promise(resolve => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        });
    });
}

// Waits (on the main loop) until @cond() is true or @ms pass.
async function until(cond, ms = 5000) {
    const deadline = GLib.get_monotonic_time() + ms * 1000;
    while (!cond() && GLib.get_monotonic_time() < deadline)
        await sleep(5);
    return cond();
}

// In GJS 1.74 a method whose gboolean return is annotated (skip) and that
// has one out argument still returns [ret, out]; newer GJS returns out
// alone. Accept both, and say which one was seen.
function outValue(r) {
    if (Array.isArray(r) && r.length === 2 && typeof r[0] === 'boolean')
        return r[1];
    return r;
}

function run(name, main, watchdogSeconds = 60) {
    const loop = new GLib.MainLoop(null, false);

    GLib.timeout_add_seconds(GLib.PRIORITY_HIGH, watchdogSeconds, () => {
        printerr(`${name}: watchdog: not finished after ${watchdogSeconds} s; failing`);
        print(`not ok ${nChecks + 1} - watchdog: ${name} finished within ${watchdogSeconds} s`);
        System.exit(1);
        return GLib.SOURCE_REMOVE;
    });

    let crashed = null;
    main().catch(e => {
        crashed = e;
    }).finally(() => loop.quit());
    loop.run();

    if (crashed !== null) {
        check(false, `${name} ran to its end (threw ${describe(crashed)})`);
        if (crashed && crashed.stack)
            printerr(crashed.stack);
    }

    print(`1..${nChecks}`);
    if (nFailed > 0) {
        printerr(`${name}: ${nFailed} of ${nChecks} checks failed`);
        System.exit(1);
    }
}
