#!/usr/bin/python3
# test-install.py BUILDDIR: installs the build into a temporary directory
# (meson install --destdir) and uses it the way the README tells a user to,
# from fresh processes whose environment holds only what the README names:
#
#   - Python: the overrides are installed where /usr/bin/python3 searches
#     under the prefix (when it searches any), load from a fresh
#     interpreter with GI_TYPELIB_PATH, LD_LIBRARY_PATH and PYTHONPATH, and
#     without them PyGObject gives the raw API and Dovetail prints one
#     warning naming the directory;
#   - C: pkg-config --cflags --libs dovetail-1 builds and runs a program;
#   - Vala: the VAPI with its .deps (gio-2.0 comes from dovetail-1.deps,
#     not from the command line) builds and runs a program;
#   - GJS: imports Dvt from the installed typelib and runs work.
#
# Prints TAP. SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import shutil
import subprocess
import sys
import tempfile

builddir = os.path.abspath(sys.argv[1])
results = []


def check(name, ok, detail=''):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {name}")
    if not ok and detail:
        for line in str(detail).splitlines():
            print(f'# {line}')
    sys.stdout.flush()


def skip(name, why):
    results.append(True)
    print(f'ok {len(results)} - {name} # SKIP {why}')


def run(cmd, env, **kwargs):
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


def bare_env(**extra):
    """Only what a user's shell has, plus what the README says to set."""
    env = {'PATH': '/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/tmp'),
           'LANG': 'C.UTF-8'}
    env.update(extra)
    return env


dest = tempfile.mkdtemp(prefix='dvt-install-')
try:
    r = run(['meson', 'install', '-C', builddir, '--no-rebuild', '--quiet',
             '--destdir', dest], os.environ)
    check('meson install --destdir', r.returncode == 0, r.stdout + r.stderr)
    if r.returncode != 0:
        sys.exit(1)

    installed = json.loads(run(['meson', 'introspect', builddir, '--installed'],
                               os.environ).stdout)

    def where(basename):
        for target in installed.values():
            if os.path.basename(target) == basename:
                return target
        return None

    prefix = json.loads(run(['meson', 'introspect', builddir, '--buildoptions'],
                            os.environ).stdout)
    prefix = next(o['value'] for o in prefix if o['name'] == 'prefix')

    typelib = where('Dvt-1.typelib')
    library = where('libdovetail-1.so')
    override = where('Dvt.py')
    pc = where('dovetail-1.pc')
    vapi = where('dovetail-1.vapi')
    deps = where('dovetail-1.deps')
    for name, path in [('typelib', typelib), ('library', library),
                       ('Python overrides', override), ('pkg-config file', pc),
                       ('VAPI', vapi), ('VAPI .deps', deps)]:
        check(f'{name} installed', path is not None and os.path.exists(dest + path),
              f'{path} not under {dest}')

    site_dir = os.path.dirname(os.path.dirname(os.path.dirname(override)))
    check('overrides installed as <site>/gi/overrides/Dvt.py',
          override == os.path.join(site_dir, 'gi', 'overrides', 'Dvt.py'), override)

    # Where this Python looks under the prefix (none for most prefixes:
    # then PYTHONPATH is needed, as the README says).
    searched = json.loads(run(['/usr/bin/python3', '-I', '-c',
                               'import json, sys; print(json.dumps(sys.path))'],
                              bare_env()).stdout)
    under_prefix = [p for p in searched
                    if p.startswith(prefix.rstrip('/') + '/')
                    and os.path.basename(p) in ('dist-packages', 'site-packages')]
    if under_prefix:
        check(f'overrides go where python3 searches under {prefix}',
              site_dir == under_prefix[0],
              f'installed under {site_dir}; python3 searches {under_prefix}')
    else:
        skip('overrides go where python3 searches', f'python3 searches nothing under {prefix}')

    gi_env = {'GI_TYPELIB_PATH': dest + os.path.dirname(typelib),
              'LD_LIBRARY_PATH': dest + os.path.dirname(library)}

    # Python, with the README's environment: the overrides are active.
    probe = '''
import gi
gi.require_version("Dvt", "1")
from gi.repository import Dvt
import gi.overrides.Dvt as override
print("override:", override.__file__)
with Dvt.Runtime.new(1) as rt:
    print("call_blocking:", rt.call_blocking(pow, 2, 10))
'''
    r = run(['/usr/bin/python3', '-c', probe],
            bare_env(PYTHONPATH=dest + site_dir, **gi_env))
    check('python: overrides active from the installed prefix',
          r.returncode == 0 and f'override: {dest}{override}' in r.stdout
          and 'call_blocking: 1024' in r.stdout and 'Dovetail-WARNING' not in r.stderr,
          r.stdout + r.stderr)

    # Python without the overrides on sys.path: raw API, one warning that
    # names the directory to add. `python3 -S` with PYTHONPATH naming only
    # the directory of PyGObject keeps an install of Dovetail elsewhere on
    # this machine (say in /usr/local) out of the way.
    gi_dir = run(['/usr/bin/python3', '-c',
                  'import gi, os; print(os.path.dirname(os.path.dirname(gi.__file__)))'],
                 bare_env()).stdout.strip()
    if os.path.exists(os.path.join(gi_dir, 'gi', 'overrides', 'Dvt.py')):
        skip('python: warning without the overrides', f'Dvt.py installed next to gi in {gi_dir}')
    else:
        raw = '''
import gi
gi.require_version("Dvt", "1")
from gi.repository import Dvt
rt = Dvt.Runtime.new(1)
rt2 = Dvt.Runtime.new(1)
print("raw:", not hasattr(rt, "call_blocking"))
rt.shutdown(True, False)
rt2.shutdown(True, False)
'''
        r = run(['/usr/bin/python3', '-S', '-c', raw], bare_env(PYTHONPATH=gi_dir, **gi_env))
        warnings = [line for line in r.stderr.splitlines() if 'Dovetail-WARNING' in line]
        check('python: without the overrides, one warning naming their directory',
              r.returncode == 0 and 'raw: True' in r.stdout and len(warnings) == 1
              and site_dir in warnings[0], r.stdout + r.stderr)

    # C through pkg-config. The installed .pc names the real prefix: a copy
    # that names the temporary one stands in for it (only its prefix line
    # differs; every other path in it must derive from ${prefix}).
    work = tempfile.mkdtemp(prefix='dvt-install-build-')
    os.makedirs(os.path.join(work, 'pkgconfig'))
    with open(dest + pc) as f:
        pc_text = f.read()
    check('the .pc derives its paths from ${prefix}',
          pc_text.count(prefix) == 1 and f'prefix={prefix}\n' in pc_text, pc_text)
    with open(os.path.join(work, 'pkgconfig', 'dovetail-1.pc'), 'w') as f:
        f.write(pc_text.replace(f'prefix={prefix}\n', f'prefix={dest}{prefix}\n', 1))
    pkg_env = bare_env(PKG_CONFIG_PATH=os.path.join(work, 'pkgconfig'), **gi_env)
    flags = run(['pkg-config', '--cflags', '--libs', 'dovetail-1'], pkg_env)
    check('pkg-config dovetail-1', flags.returncode == 0 and dest in flags.stdout,
          flags.stdout + flags.stderr)
    with open(os.path.join(work, 'prog.c'), 'w') as f:
        f.write('''#include <dovetail.h>
static void work (DvtTask *task, GCancellable *c, gpointer data, GError **error)
{ dvt_task_return_int (task, 42); }
int main (void)
{
  g_autoptr(DvtRuntime) rt = dvt_runtime_new (1);
  g_auto(GValue) v = G_VALUE_INIT;
  if (!dvt_runtime_to_thread_blocking (rt, work, NULL, NULL, NULL, NULL, &v, NULL))
    return 1;
  g_print ("c: %d\\n", (int) g_value_get_int64 (&v));
  dvt_runtime_shutdown (rt, TRUE, FALSE);
  return 0;
}
''')
    r = run(['cc', '-o', os.path.join(work, 'prog-c'), os.path.join(work, 'prog.c')]
            + flags.stdout.split(), pkg_env)
    check('C: builds with pkg-config', r.returncode == 0, r.stdout + r.stderr)
    if r.returncode == 0:
        r = run([os.path.join(work, 'prog-c')], pkg_env)
        check('C: runs against the installed library', r.stdout.strip() == 'c: 42',
              r.stdout + r.stderr)

    # Vala: the program uses GLib.File (gio-2.0), which only dovetail-1.deps
    # brings in.
    if shutil.which('valac'):
        with open(os.path.join(work, 'prog.vala'), 'w') as f:
            f.write('''int main () {
    var rt = new Dvt.Runtime (1);
    var file = GLib.File.new_for_path ("/");
    print ("vala: %s %u\\n", file.get_path (), rt.max_workers);
    rt.shutdown (true, false);
    return 0;
}
''')
        r = run(['valac', '-C', '-d', work, '--vapidir', dest + os.path.dirname(vapi),
                 '--pkg', 'dovetail-1', os.path.join(work, 'prog.vala')], pkg_env)
        check('Vala: the VAPI and its .deps', r.returncode == 0, r.stdout + r.stderr)
        if r.returncode == 0:
            r = run(['cc', '-w', '-o', os.path.join(work, 'prog-vala'),
                     os.path.join(work, 'prog.c')] + flags.stdout.split(), pkg_env)
            check('Vala: the generated C builds', r.returncode == 0, r.stdout + r.stderr)
            if r.returncode == 0:
                r = run([os.path.join(work, 'prog-vala')], pkg_env)
                check('Vala: runs', r.stdout.strip() == 'vala: / 1', r.stdout + r.stderr)
    else:
        skip('Vala', 'no valac')

    # GJS, an ES module.
    if shutil.which('gjs'):
        with open(os.path.join(work, 'prog.mjs'), 'w') as f:
            f.write('''import Dvt from 'gi://Dvt?version=1';
const rt = Dvt.Runtime.new(1);
print(`gjs: ${rt.max_workers}`);
rt.shutdown(true, false);
''')
        r = run(['gjs', '-m', os.path.join(work, 'prog.mjs')], bare_env(**gi_env))
        check('GJS: imports Dvt from the installed typelib',
              r.returncode == 0 and r.stdout.strip() == 'gjs: 1', r.stdout + r.stderr)
    else:
        skip('GJS', 'no gjs')
    shutil.rmtree(work, ignore_errors=True)
finally:
    shutil.rmtree(dest, ignore_errors=True)

print(f'1..{len(results)}')
sys.exit(0 if all(results) else 1)
