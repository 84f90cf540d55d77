// check-stderr.js: run a GJS test script and judge its stderr too
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
//   gjs check-stderr.js [--allow REGEX]... [--require REGEX]... -- GJS [-m] SCRIPT [ARGS...]
//
// Runs SCRIPT with the GJS interpreter GJS (with -m, as an ES module),
// relays its output, and fails (exit 1) when the script fails, when it
// writes a critical or a warning to stderr that no --allow pattern
// matches (such as GJS reporting an object finalized behind its back),
// when a --require pattern never shows up on stderr, or when it does not
// end within 100 s.

const {GLib, Gio} = imports.gi;
const System = imports.system;

const allow = [], require = [];
let command = null;
for (let i = 0; i < ARGV.length; i++) {
    if (ARGV[i] === '--allow') {
        allow.push(new RegExp(ARGV[++i]));
    } else if (ARGV[i] === '--require') {
        require.push(new RegExp(ARGV[++i]));
    } else if (ARGV[i] === '--') {
        command = ARGV.slice(i + 1);
        break;
    } else {
        command = ARGV.slice(i);
        break;
    }
}
if (!command || command.length < 2) {
    printerr('usage: check-stderr.js [--allow RE]... [--require RE]... -- GJS [-m] SCRIPT [ARGS...]');
    System.exit(2);
}
// The script's name, for the messages: the first argument not an option.
const script = command.slice(1).find(a => !a.startsWith('-')) ?? command[1];

const problems = [];
const loop = new GLib.MainLoop(null, false);
const proc = Gio.Subprocess.new(command,
    Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDERR_PIPE);

const watchdog = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 100, () => {
    problems.push(`${script} did not end within 100 s: killed`);
    proc.force_exit();
    return GLib.SOURCE_REMOVE;
});

let stdout = '', stderr = '';
proc.communicate_utf8_async(null, null, (p, res) => {
    try {
        [, stdout, stderr] = p.communicate_utf8_finish(res);
    } catch (e) {
        problems.push(`could not read the output of ${script}: ${e.message}`);
    }
    loop.quit();
});
loop.run();
GLib.source_remove(watchdog);

print(stdout ?? '');
if (stderr)
    printerr(stderr);

if (proc.get_if_signaled())
    problems.push(`${script} was killed by signal ${proc.get_term_sig()}`);
else if (proc.get_exit_status() !== 0)
    problems.push(`${script} exited with status ${proc.get_exit_status()}`);

const reported = new Map();
for (const line of (stderr ?? '').split('\n')) {
    if (!/-(CRITICAL|WARNING) \*\*|^\s*JS ERROR|^\s*JS WARNING/.test(line))
        continue;
    if (allow.some(re => re.test(line)))
        continue;
    // Drop the "(gjs:PID): ... HH:MM:SS.mmm:" prefix to group repeats.
    const key = line.replace(/^\(.*?\):\s*/, '').replace(/\d\d:\d\d:\d\d\.\d+: /, '')
        .replace(/0x[0-9a-f]+/g, '0x…');
    reported.set(key, (reported.get(key) ?? 0) + 1);
}
for (const [line, n] of reported)
    problems.push(`unexpected on stderr (${n}x): ${line}`);

for (const re of require) {
    if (!re.test(stderr ?? ''))
        problems.push(`expected on stderr but missing: /${re.source}/`);
}

if (problems.length > 0) {
    printerr(`\ncheck-stderr.js: ${script} FAILED:`);
    for (const p of problems)
        printerr(`  - ${p}`);
    System.exit(1);
}
