/* dvt-test-util.h: helpers shared by the C test programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <dovetail.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/prctl.h>
#endif

static inline GQuark
test_error_quark (void)
{
  return g_quark_from_static_string ("dovetail-test-error-quark");
}

#define TEST_ERROR (test_error_quark ())

/* Scales every time limit: 10 under valgrind. */
static double slow = 1.0;

/* No value (or a failure) comes back as a NULL pointer value, which
 * language bindings can convert. */
#define assert_null_value(v)                                                 \
  G_STMT_START {                                                             \
    g_assert_true (G_VALUE_HOLDS_POINTER (v));                               \
    g_assert_null (g_value_get_pointer (v));                                 \
  } G_STMT_END

/* Runs @stmt expecting one g_return_if_fail() critical from Dovetail: they
 * go through g_log() and so through g_test_expect_message(). */
#define EXPECT_ASSERTION(stmt)                                               \
  G_STMT_START {                                                             \
    g_test_expect_message ("Dovetail", G_LOG_LEVEL_CRITICAL, "*assertion*"); \
    stmt;                                                                    \
    g_test_assert_expected_messages ();                                      \
  } G_STMT_END

#define POLL_UNTIL(expr, seconds)                                            \
  ({                                                                         \
    gint64 _end = g_get_monotonic_time () +                                  \
                  (gint64) ((seconds) * slow * G_USEC_PER_SEC);              \
    gboolean _ok;                                                            \
    while (!(_ok = !!(expr)) && g_get_monotonic_time () < _end)              \
      g_usleep (500);                                                        \
    _ok;                                                                     \
  })

/* POLL_UNTIL, iterating @context meanwhile (for work delivered there). */
#define ITERATE_UNTIL(context, expr, seconds)                                \
  ({                                                                         \
    gint64 _end = g_get_monotonic_time () +                                  \
                  (gint64) ((seconds) * slow * G_USEC_PER_SEC);              \
    gboolean _ok;                                                            \
    while (!(_ok = !!(expr)) && g_get_monotonic_time () < _end)              \
      if (!g_main_context_iteration ((context), FALSE))                      \
        g_usleep (200);                                                      \
    _ok;                                                                     \
  })

/* One callback of an _async call, expected on the thread that made it:
 * ready_init(), the call with on_ready() and the Ready, ready_wait(). */
typedef struct
{
  GThread      *thread;   /* where callbacks must run */
  int           n;        /* callbacks so far */
  GAsyncResult *result;
} Ready;

static inline void
on_ready (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Ready *r = user_data;

  g_assert_true (g_thread_self () == r->thread);
  r->n++;
  g_clear_object (&r->result);
  r->result = g_object_ref (result);
}

static inline void
ready_init (Ready *r)
{
  r->thread = g_thread_self ();
  r->n = 0;
  r->result = NULL;
}

static inline void
ready_clear (Ready *r)
{
  g_clear_object (&r->result);
  r->n = 0;
}

/* Iterates this thread's default context until @r has had a callback,
 * then a little longer: a second one would be a bug. */
static inline void
ready_wait (Ready *r)
{
  g_assert_true (ITERATE_UNTIL (NULL, r->n > 0, 30));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpint (r->n, ==, 1);
}

/* g_object_add_weak_pointer() for a pointer that another thread polls
 * with g_atomic_pointer_get(): GLib clears a weak pointer with a plain
 * store, on whichever thread finalizes the object. */
static inline void
weak_pointer_clear_atomic (gpointer  data,
                           GObject  *where_the_object_was)
{
  g_atomic_pointer_set ((gpointer *) data, NULL);
}

static inline void
add_weak_pointer_atomic (GObject  *object,
                         gpointer *weak_pointer)
{
  g_object_weak_ref (object, weak_pointer_clear_atomic, weak_pointer);
}

/* A gate that threads wait at until it is opened. gate_clear() waits for
 * every thread still inside gate_wait() to have left it (a waiter woken by
 * gate_open() still has to take the lock again): only then is the memory
 * free to reuse. */
typedef struct
{
  GMutex   lock;
  GCond    cond;
  gboolean open;
  guint    inside;
} Gate;

static inline void
gate_init (Gate *gate)
{
  g_mutex_init (&gate->lock);
  g_cond_init (&gate->cond);
  gate->open = FALSE;
  gate->inside = 0;
}

static inline void
gate_clear (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  while (gate->inside > 0)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
  g_mutex_clear (&gate->lock);
  g_cond_clear (&gate->cond);
}

static inline void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

static inline void
gate_wait (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->inside++;
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  if (--gate->inside == 0)
    g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

/* Shuts @rt down, waiting for its work, then drops the reference: a
 * runtime finalized without a shutdown logs a warning, fatal in the tests.
 * `g_autoptr(DvtTestRuntime)` does this at the end of the scope. */
static inline void
dvt_test_runtime_free (DvtRuntime *rt)
{
  if (rt == NULL)
    return;

  dvt_runtime_shutdown (rt, TRUE, FALSE);
  g_object_unref (rt);
}

typedef DvtRuntime DvtTestRuntime;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DvtTestRuntime, dvt_test_runtime_free)

/* Threads of this process, and how many have a name starting with
 * @prefix (thread names are cut to 15 bytes). */
static inline guint
count_threads (const char *prefix,
               guint      *n_prefixed)
{
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  if (n_prefixed != NULL)
    *n_prefixed = 0;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/task", name, "comm", NULL);
      g_autofree char *comm = NULL;

      n++;
      if (prefix != NULL && n_prefixed != NULL &&
          g_file_get_contents (path, &comm, NULL, NULL) &&
          g_str_has_prefix (comm, prefix))
        (*n_prefixed)++;
    }
  g_dir_close (dir);

  return n;
}

/* Whether this is an AddressSanitizer build. */
#if defined(__SANITIZE_ADDRESS__)
# define DVT_TEST_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define DVT_TEST_ASAN 1
# endif
#endif
#ifndef DVT_TEST_ASAN
# define DVT_TEST_ASAN 0
#endif

static inline gboolean
is_valgrind (void)
{
  return g_getenv ("DVT_TEST_VALGRIND") != NULL;
}

/* The shell command that prints every thread's stack of process @pid
 * (gdb found on PATH; the caller checks that gdb is there if it must). */
static inline char *
stacks_command (pid_t pid)
{
  return g_strdup_printf ("gdb -p %d -batch -nx -ex 'thread apply all bt'", (int) pid);
}

/* ---- the watchdog ------------------------------------------------------------
 *
 * With DVT_TEST_WATCHDOG=N in the environment (.ci/run sets it), a test
 * program still running N seconds after it started has the stacks of all
 * its threads printed (through gdb, when gdb is installed) to stderr, and
 * to $DVT_TEST_HANG_DIR/hang-PROGRAM-PID.txt if that is set, and is then
 * aborted: a test that hangs fails with where it hung, instead of holding
 * the run until meson's timeout, which tells nothing.
 *
 * The watchdog is a child process, not a thread, so that tests counting
 * their threads see none of it. It dies with the test (PR_SET_PDEATHSIG).
 * Not under valgrind, where gdb would see valgrind's own threads. */

__attribute__((constructor)) static void
dvt_test_watchdog_start (void)
{
#ifdef __linux__
  const char *value = g_getenv ("DVT_TEST_WATCHDOG");
  const char *dir = g_getenv ("DVT_TEST_HANG_DIR");
  g_autofree char *exe = NULL;
  g_autofree char *program = NULL;
  g_autofree char *out = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *script = NULL;
  g_autofree char *stacks = NULL;
  guint64 seconds;
  pid_t test = getpid ();
  pid_t pid;

  if (value == NULL || is_valgrind () ||
      !g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &seconds, NULL))
    return;

  exe = g_file_read_link ("/proc/self/exe", NULL);
  program = g_path_get_basename (exe != NULL ? exe : "test");
  if (dir != NULL)
    {
      g_autofree char *name = g_strdup_printf ("hang-%s-%d.txt", program, (int) test);

      out = g_build_filename (dir, name, NULL);
    }
  else
    out = g_strdup ("/dev/stderr");
  quoted = g_shell_quote (out);
  stacks = stacks_command (test);
  /* Everything the child needs is made before the fork. */
  script = g_strdup_printf ("echo \"%s: still running after %u seconds (DVT_TEST_WATCHDOG)\" >&2; "
                            "%s >%s 2>&1 </dev/null; "
                            "[ %s = /dev/stderr ] || cat %s >&2; kill -ABRT %d",
                            program, (guint) seconds, stacks, quoted, quoted, quoted,
                            (int) test);

  /* Lets gdb attach where Yama lets a process trace only its descendants. */
  prctl (PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  pid = fork ();
  if (pid != 0)
    return;

  /* The child: gone as soon as the test is. */
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (getppid () != test)
    _exit (0);
  {
    int null = open ("/dev/null", O_RDWR);

    /* Only stderr stays: whoever reads the test's stdout sees its end
     * when the test ends. */
    dup2 (null, STDIN_FILENO);
    dup2 (null, STDOUT_FILENO);
  }
  for (guint64 i = 0; i < seconds; i++)
    {
      sleep (1);
      if (getppid () != test)
        _exit (0);
    }
  execl ("/bin/sh", "sh", "-c", script, (char *) NULL);
  _exit (127);
#endif
}
