/* dvt-registry.c: the runtimes of the process, the default runtime,
 * shutdown at exit and on SIGINT/SIGTERM, and fork()
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

#include "dvt-log-private.h"
#include "dvt-pool-private.h"
#include "dvt-registry-private.h"
#include "dvt-thread-private.h"
#include "dvt-latch-private.h"

/* How long the shutdown at exit or on a signal waits for the work it
 * cancelled to end and for the runtimes' threads to stop. */
#define DVT_EXIT_GRACE_USEC (2 * G_USEC_PER_SEC)

struct _DvtRegistryEntry
{
  GList       link;           /* in `registry`, once constructed */
  GWeakRef    ref;
  guint       generation;     /* the process it was made in: see fork */

  gpointer    leaked_core;    /* of a runtime finalized in a forked child */
  gboolean    auto_register;  /* construct-only */
  /* Under registry_lock once linked: */
  gboolean    linked;
  gboolean    on_exit;        /* DvtRuntime:shutdown-on-exit */
  gboolean    shut_down;      /* dvt_runtime_shutdown() was called */
  gboolean    armed;          /* linked, on_exit and not shut_down */
};

/* Lock order: the default runtime's lock, then registry_lock, then the
 * latch stripes (dvt-latch.c). fork() takes all of them. */
static GMutex registry_lock;
static GQueue registry = G_QUEUE_INIT;   /* every runtime, oldest first */
static GQueue inherited = G_QUEUE_INIT;  /* a forked child's: the parent's */
static guint  generation;                /* bumped in each forked child */

/* How the registry acts on runtimes: set once by the runtime's class. */
static const DvtRegistryClass *runtime_class;

G_LOCK_DEFINE_STATIC (default_runtime);
static GObject    *default_runtime;
static GPtrArray  *retired_defaults;

/* Exit handling, under registry_lock. Handlers for SIGINT and SIGTERM are
 * installed while at least one armed runtime exists; the handler writes the
 * signal number into signal_pipe, and a watcher thread reads it. */
static const int exit_signals[] = { SIGINT, SIGTERM };
#define N_EXIT_SIGNALS G_N_ELEMENTS (exit_signals)

static struct
{
  guint            n_armed;
  gboolean         installed;
  gboolean         caught[N_EXIT_SIGNALS];   /* our handler was set */
  struct sigaction previous[N_EXIT_SIGNALS];
  guint            n_readers;                /* watchers reading the pipe */
  GCond            readers_cond;
  gboolean         atexit_added;
  gboolean         exiting;                  /* the atexit handler began */

  DvtRegistryHook  hook;
  gpointer         hook_data;
  GDestroyNotify   hook_destroy;
  gboolean         hook_ran;
} exit_state;

/* Made once and kept open: a handler that began before its removal may
 * still write. The write end is non-blocking. */
static int signal_pipe[2] = { -1, -1 };

/* Serialises the exit actions (hook or fallback). */
static GMutex action_lock;
/* This thread's state says whether it runs the exit action
 * (in_exit_action) and whether it is the signal watcher (on_watcher). */

static sigset_t fork_saved_mask;

static void     install_locked   (void);
static gboolean uninstall_locked (void);
static void     atfork_prepare   (void);
static void     atfork_parent    (void);
static void     atfork_child     (void);

/* ---- entries ------------------------------------------------------------- */

static void
registry_init (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      pthread_atfork (atfork_prepare, atfork_parent, atfork_child);
      g_once_init_leave (&initialized, 1);
    }
}

DvtRegistryEntry *
dvt_registry_entry_new (void)
{
  DvtRegistryEntry *entry = g_new0 (DvtRegistryEntry, 1);

  registry_init ();
  entry->link.data = entry;
  entry->auto_register = TRUE;
  entry->generation = generation;

  return entry;
}

gboolean
dvt_registry_get_auto_register (DvtRegistryEntry *entry)
{
  return entry->auto_register;
}

void
dvt_registry_set_auto_register (DvtRegistryEntry *entry,
                                gboolean          auto_register)
{
  entry->auto_register = auto_register;
}

/* A runtime of the parent, seen from the child of a fork(): its threads
 * stayed in the parent, and its locks may be held by them. */
gboolean
dvt_registry_is_inherited (DvtRegistryEntry *entry)
{
  return entry->generation != generation;
}

/* Brings entry->armed and n_armed up to date, installing or removing the
 * signal handlers. Returns TRUE if the caller must call wait_for_watcher()
 * once it has released the lock. */
static gboolean
update_armed_locked (DvtRegistryEntry *entry)
{
  gboolean armed = entry->linked && entry->on_exit && !entry->shut_down;

  if (armed == entry->armed)
    return FALSE;

  entry->armed = armed;
  if (armed)
    {
      exit_state.n_armed++;
      install_locked ();
      return FALSE;
    }

  return --exit_state.n_armed == 0 && exit_state.installed && uninstall_locked ();
}

/* Waits until the watcher that uninstall_locked() told to stop has
 * stopped reading the pipe. */
static void
wait_for_watcher (gboolean must_wait)
{
  if (!must_wait)
    return;

  g_mutex_lock (&registry_lock);
  while (exit_state.n_readers > 0)
    g_cond_wait (&exit_state.readers_cond, &registry_lock);
  g_mutex_unlock (&registry_lock);
}

gboolean
dvt_registry_get_shutdown_on_exit (DvtRegistryEntry *entry)
{
  gboolean on_exit;

  g_mutex_lock (&registry_lock);
  on_exit = entry->on_exit;
  g_mutex_unlock (&registry_lock);

  return on_exit;
}

/* Returns whether the value changed. */
gboolean
dvt_registry_set_shutdown_on_exit (DvtRegistryEntry *entry,
                                   gboolean          shutdown_on_exit)
{
  gboolean must_wait;
  gboolean changed;

  if (dvt_registry_is_inherited (entry))
    return FALSE;

  g_mutex_lock (&registry_lock);
  changed = entry->on_exit != !!shutdown_on_exit;
  entry->on_exit = !!shutdown_on_exit;
  must_wait = update_armed_locked (entry);
  g_mutex_unlock (&registry_lock);
  wait_for_watcher (must_wait);

  return changed;
}

/* Called once the runtime @runtime, whose entry @entry is, is constructed. */
void
dvt_registry_add (DvtRegistryEntry *entry,
                  GObject          *runtime)
{
  g_weak_ref_init (&entry->ref, runtime);

  g_mutex_lock (&registry_lock);
  g_queue_push_tail_link (&registry, &entry->link);
  entry->linked = TRUE;
  update_armed_locked (entry);
  g_mutex_unlock (&registry_lock);
}

void
dvt_registry_note_shutdown (DvtRegistryEntry *entry)
{
  gboolean must_wait;

  if (dvt_registry_is_inherited (entry))
    return;

  g_mutex_lock (&registry_lock);
  entry->shut_down = TRUE;
  must_wait = update_armed_locked (entry);
  g_mutex_unlock (&registry_lock);
  wait_for_watcher (must_wait);
}

/* Called from the finalize of @runtime (named @name, for the warning),
 * whose entry is *@entry; frees the entry. Returns FALSE for a runtime
 * inherited through fork(), which must be leaked (its threads and locks
 * are not ours): @leak is kept reachable then, and the entry kept. */
gboolean
dvt_registry_remove (DvtRegistryEntry **entry_p,
                     gpointer           runtime,
                     const char        *name,
                     gpointer           leak)
{
  DvtRegistryEntry *entry = *entry_p;
  gboolean must_wait = FALSE;
  gboolean shut_down;

  if (dvt_registry_is_inherited (entry))
    {
      /* Deliberately leaked, and kept reachable (the entry stays in
       * `inherited`) so that leak checkers do not report it. */
      entry->leaked_core = leak;
      return FALSE;
    }

  g_mutex_lock (&registry_lock);
  shut_down = entry->shut_down;
  if (entry->linked)
    {
      g_queue_unlink (&registry, &entry->link);
      entry->linked = FALSE;
      must_wait = update_armed_locked (entry);
    }
  g_mutex_unlock (&registry_lock);
  wait_for_watcher (must_wait);

  if (!shut_down)
    {
      g_autofree char *label = name != NULL
        ? g_strdup_printf ("“%s” (%p)", name, runtime)
        : g_strdup_printf ("%p", runtime);

      dvt_log_runtime (G_LOG_LEVEL_WARNING, name,
                       "Runtime %s finalized without dvt_runtime_shutdown(): shut "
                 "a runtime down before dropping its last reference, so that "
                 "its work ends when you decide", label);
    }

  g_weak_ref_clear (&entry->ref);
  g_clear_pointer (entry_p, g_free);

  return TRUE;
}

/* Strong references to the live runtimes of the registry: those listed
 * (auto-register), or the armed ones (shutdown-on-exit). Take it without
 * registry_lock, and drop it the same way: the last reference may
 * finalize a runtime, which takes the lock. */
GPtrArray *
dvt_registry_snapshot (gboolean armed_only)
{
  GPtrArray *runtimes = g_ptr_array_new_with_free_func (g_object_unref);
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  g_mutex_lock (&registry_lock);
  for (GList *l = registry.head; l != NULL; l = l->next)
    {
      DvtRegistryEntry *entry = l->data;
      GObject *runtime;

      if (armed_only ? !entry->armed : !entry->auto_register)
        continue;
      runtime = g_weak_ref_get (&entry->ref);
      if (runtime != NULL)
        g_ptr_array_add (runtimes, runtime);
    }
  g_mutex_unlock (&registry_lock);
  dvt_fork_gate_leave (gate);

  return runtimes;
}

/* ---- what the runtime's class asks of the registry -------------------------- */

void
dvt_registry_set_class (const DvtRegistryClass *klass)
{
  runtime_class = klass;
}

/* See dvt_runtime_set_shutdown_hook(). */
void
dvt_registry_set_hook (DvtRegistryHook hook,
                       gpointer        user_data,
                       GDestroyNotify  destroy)
{
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_mutex_lock (&registry_lock);
  old_data = exit_state.hook_data;
  old_destroy = exit_state.hook_destroy;
  exit_state.hook = hook;
  exit_state.hook_data = hook != NULL ? user_data : NULL;
  exit_state.hook_destroy = hook != NULL ? destroy : NULL;
  g_mutex_unlock (&registry_lock);

  if (old_destroy != NULL)
    DVT_APP_CALL (old_destroy (old_data));
  /* No hook keeps no data: free it at once, as GLib does. */
  if (hook == NULL && destroy != NULL)
    DVT_APP_CALL (destroy (user_data));
}

/* The default runtime, made by the runtime's class on first use and again
 * once it has been shut down; see dvt_runtime_get_default(). */
GObject *
dvt_registry_get_default (void)
{
  GObject *runtime;
  DvtForkGate gate;

  registry_init ();

  /* Before the lock, which the fork handler takes after the gate. */
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  G_LOCK (default_runtime);
  if (default_runtime != NULL && runtime_class->is_shutdown (default_runtime))
    {
      /* Callers may still hold the old one (transfer none): keep it. */
      if (retired_defaults == NULL)
        retired_defaults = g_ptr_array_new ();
      g_ptr_array_add (retired_defaults, g_steal_pointer (&default_runtime));
    }
  if (default_runtime == NULL)
    default_runtime = runtime_class->create_default ();
  runtime = default_runtime;
  G_UNLOCK (default_runtime);
  dvt_fork_gate_leave (gate);

  return runtime;
}

gboolean
dvt_registry_default_is_alive (void)
{
  gboolean alive;

  G_LOCK (default_runtime);
  alive = default_runtime != NULL && !runtime_class->is_shutdown (default_runtime);
  G_UNLOCK (default_runtime);

  return alive;
}

/* ---- exit and signals ---------------------------------------------------- */

/* Async-signal-safe: hands the signal to the watcher thread. */
static void
on_exit_signal (int sig)
{
  int saved_errno = errno;
  guchar byte = (guchar) sig;

  /* If the pipe is full, the watcher has signals to handle already. */
  ssize_t written = write (signal_pipe[1], &byte, 1);

  (void) written;

  errno = saved_errno;
}

static gboolean
is_our_handler (int sig)
{
  struct sigaction current;

  return sigaction (sig, NULL, &current) == 0 &&
         !(current.sa_flags & SA_SIGINFO) &&
         current.sa_handler == on_exit_signal;
}

/* Puts back the dispositions we replaced, unless the application has
 * replaced ours since. Async-signal-safe (the fork child calls it). */
static void
restore_signals_locked (void)
{
  for (guint i = 0; i < N_EXIT_SIGNALS; i++)
    {
      if (exit_state.caught[i] && is_our_handler (exit_signals[i]))
        sigaction (exit_signals[i], &exit_state.previous[i], NULL);
      exit_state.caught[i] = FALSE;
    }
  exit_state.installed = FALSE;
}

static void
forward_signal (int sig)
{
  g_debug ("Passing signal %d on to its previous disposition", sig);
  kill (getpid (), sig);
}

static void run_exit_action (void);

/* Reads the signals that arrived before our handlers were removed; sets
 * @seen[i] for each of exit_signals[i] among them. */
static void
drain_pipe_locked (gboolean *seen)
{
  struct pollfd pfd = { signal_pipe[0], POLLIN, 0 };
  guchar byte;

  while (poll (&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) &&
         read (signal_pipe[0], &byte, 1) == 1)
    for (guint i = 0; i < N_EXIT_SIGNALS; i++)
      if (byte == exit_signals[i])
        seen[i] = TRUE;
}

/* The watcher got @sig. Returns TRUE if it must stop reading. */
static gboolean
handle_signal (int sig)
{
  gboolean seen[N_EXIT_SIGNALS] = { FALSE, };

  g_mutex_lock (&registry_lock);
  if (!exit_state.installed)
    {
      /* Our handlers were removed meanwhile (the last runtime with
       * shutdown-on-exit was shut down): the signal was not for us. */
      g_mutex_unlock (&registry_lock);
      forward_signal (sig);
      return FALSE;
    }

  /* Put the previous dispositions back first: a second signal during the
   * shutdown goes straight to them (a second Ctrl-C is not delayed). This
   * thread stops reading the pipe; a later install starts another. */
  uninstall_locked ();
  drain_pipe_locked (seen);
  exit_state.n_readers--;
  g_cond_broadcast (&exit_state.readers_cond);
  g_mutex_unlock (&registry_lock);

  g_debug ("Signal %d: shutting down", sig);
  run_exit_action ();

  forward_signal (sig);
  for (guint i = 0; i < N_EXIT_SIGNALS; i++)
    if (seen[i] && exit_signals[i] != sig)
      forward_signal (exit_signals[i]);

  return TRUE;
}

static gpointer
watcher_main (gpointer data)
{
  dvt_thread_state ()->on_watcher = TRUE;

  for (;;)
    {
      guchar byte;
      ssize_t n = read (signal_pipe[0], &byte, 1);

      if (n < 0 && errno == EINTR)
        continue;
      if (n != 1 || byte == 0)
        break;
      if (handle_signal (byte))
        return NULL;
    }

  g_mutex_lock (&registry_lock);
  exit_state.n_readers--;
  g_cond_broadcast (&exit_state.readers_cond);
  g_mutex_unlock (&registry_lock);

  return NULL;
}

static void exit_handler (void);

static void
warn_not_handled (GError *error)
{
  /* Translators: keep “shutdown-on-exit” (a property name); %s says why. */
  g_warning (_("Cannot handle SIGINT and SIGTERM for the runtimes with "
               "shutdown-on-exit: %s"), error->message);
  g_error_free (error);
}

static void
install_locked (void)
{
  struct sigaction action;
  sigset_t block;
  sigset_t saved;
  GError *error = NULL;
  GThread *watcher;

  /* A previous watcher that was told to stop may still be reading. */
  while (!exit_state.installed && exit_state.n_readers > 0)
    g_cond_wait (&exit_state.readers_cond, &registry_lock);

  if (exit_state.installed || exit_state.exiting)
    return;

  if (!exit_state.atexit_added)
    exit_state.atexit_added = atexit (exit_handler) == 0;

  if (signal_pipe[0] < 0 &&
      (!g_unix_open_pipe (signal_pipe, FD_CLOEXEC, &error) ||
       !g_unix_set_fd_nonblocking (signal_pipe[1], TRUE, &error)))
    {
      warn_not_handled (error);
      return;
    }

  /* The watcher blocks both signals, so that the handler never runs on it
   * and the signals it passes on reach another thread. */
  sigemptyset (&block);
  for (guint i = 0; i < N_EXIT_SIGNALS; i++)
    sigaddset (&block, exit_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &saved);
  watcher = g_thread_try_new ("dvt-signals", watcher_main, NULL, &error);
  pthread_sigmask (SIG_SETMASK, &saved, NULL);
  if (watcher == NULL)
    {
      warn_not_handled (error);
      return;
    }
  g_thread_unref (watcher);
  exit_state.n_readers++;

  memset (&action, 0, sizeof action);
  action.sa_handler = on_exit_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset (&action.sa_mask);

  for (guint i = 0; i < N_EXIT_SIGNALS; i++)
    {
      struct sigaction previous;

      /* A signal the process ignores stays ignored. */
      if (sigaction (exit_signals[i], NULL, &previous) != 0 ||
          (!(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_IGN))
        continue;

      exit_state.previous[i] = previous;
      exit_state.caught[i] = sigaction (exit_signals[i], &action, NULL) == 0;
    }
  exit_state.installed = TRUE;
  g_debug ("Handling SIGINT and SIGTERM");
}

/* Restores the previous dispositions and tells the watcher to stop.
 * Returns TRUE if the caller must wait for it with wait_for_watcher() once
 * it has released the lock (FALSE on the watcher itself). */
static gboolean
uninstall_locked (void)
{
  static const guchar stop = 0;

  restore_signals_locked ();
  g_debug ("No longer handling SIGINT and SIGTERM");

  if (dvt_thread_state ()->on_watcher)
    return FALSE;

  /* The pipe is nearly empty: the watcher is reading it. */
  if (write (signal_pipe[1], &stop, 1) != 1)
    g_error ("Dovetail could not stop its signal watcher: %s",
             g_strerror (errno));

  return TRUE;
}

typedef struct
{
  GMutex     lock;
  GCond      cond;
  gboolean   done;
  GPtrArray *runtimes;
} ExitWait;

static void
exit_wait_clear (gpointer data)
{
  ExitWait *ew = data;

  g_ptr_array_unref (ew->runtimes);
  g_mutex_clear (&ew->lock);
  g_cond_clear (&ew->cond);
}

static gpointer
exit_wait_thread (gpointer data)
{
  ExitWait *ew = data;

  for (guint i = 0; i < ew->runtimes->len; i++)
    runtime_class->shutdown (g_ptr_array_index (ew->runtimes, i), TRUE, TRUE);

  g_mutex_lock (&ew->lock);
  ew->done = TRUE;
  g_cond_broadcast (&ew->cond);
  g_mutex_unlock (&ew->lock);
  g_atomic_rc_box_release_full (ew, exit_wait_clear);

  return NULL;
}

/* Shuts @runtimes down, cancelling their work, and waits at most
 * DVT_EXIT_GRACE_USEC for them to stop: work that ignores its
 * cancellable must not keep the process from exiting. */
static void
shutdown_for_exit (GPtrArray *runtimes)
{
  ExitWait *ew;
  GThread *thread;
  gint64 deadline;

  for (guint i = 0; i < runtimes->len; i++)
    runtime_class->shutdown (g_ptr_array_index (runtimes, i), FALSE, TRUE);

  ew = g_atomic_rc_box_new0 (ExitWait);
  g_mutex_init (&ew->lock);
  g_cond_init (&ew->cond);
  ew->runtimes = g_ptr_array_ref (runtimes);

  thread = g_thread_try_new ("dvt-exit", exit_wait_thread,
                             g_atomic_rc_box_acquire (ew), NULL);
  if (thread != NULL)
    {
      deadline = g_get_monotonic_time () + DVT_EXIT_GRACE_USEC;
      g_mutex_lock (&ew->lock);
      while (!ew->done)
        if (!g_cond_wait_until (&ew->cond, &ew->lock, deadline))
          break;
      g_mutex_unlock (&ew->lock);
      g_thread_unref (thread);
    }
  else
    g_atomic_rc_box_release_full (ew, exit_wait_clear);

  g_atomic_rc_box_release_full (ew, exit_wait_clear);
}

/* At exit or on a signal: the hook, once, or else (unless a hook has
 * already run) the shutdown of the runtimes with shutdown-on-exit. */
static void
run_exit_action (void)
{
  DvtRegistryHook hook;
  gpointer hook_data;
  GDestroyNotify hook_destroy;
  gboolean fallback;

  /* exit() called from the hook, or from the work it waits for. */
  if (dvt_thread_state ()->in_exit_action)
    return;
  dvt_thread_state ()->in_exit_action = TRUE;
  g_mutex_lock (&action_lock);

  g_mutex_lock (&registry_lock);
  hook = g_steal_pointer (&exit_state.hook);
  hook_data = g_steal_pointer (&exit_state.hook_data);
  hook_destroy = g_steal_pointer (&exit_state.hook_destroy);
  fallback = hook == NULL && !exit_state.hook_ran;
  if (hook != NULL)
    exit_state.hook_ran = TRUE;
  g_mutex_unlock (&registry_lock);

  if (hook != NULL)
    {
      DVT_APP_CALL (hook (hook_data));
      if (hook_destroy != NULL)
        DVT_APP_CALL (hook_destroy (hook_data));
    }
  else if (fallback)
    {
      g_autoptr(GPtrArray) runtimes = dvt_registry_snapshot (TRUE);

      shutdown_for_exit (runtimes);
    }

  g_mutex_unlock (&action_lock);
  dvt_thread_state ()->in_exit_action = FALSE;
}

static void
exit_handler (void)
{
  gboolean must_wait = FALSE;
  gboolean armed;

  g_mutex_lock (&registry_lock);
  exit_state.exiting = TRUE;
  armed = exit_state.n_armed > 0;
  if (exit_state.installed)
    must_wait = uninstall_locked ();
  g_mutex_unlock (&registry_lock);
  wait_for_watcher (must_wait);

  if (armed)
    run_exit_action ();
}

/* See dvt_runtime_run_exit_handler(). */
void
dvt_registry_run_exit_handler (void)
{
  exit_handler ();
}

/* ---- fork ---------------------------------------------------------------- */

static void
atfork_prepare (void)
{
  sigset_t block;

  /* First: no thread may be inside GLib for Dovetail when the fork
   * happens (see dvt-thread-private.h), and none holds Dovetail's locks
   * outside a section. */
  dvt_fork_gate_close ();

  G_LOCK (default_runtime);
  g_mutex_lock (&registry_lock);
  dvt_stripe_locks_acquire ();

  /* Until the child has put back the previous dispositions, a signal must
   * not reach our handler there: it would write into the parent's pipe. */
  sigemptyset (&block);
  for (guint i = 0; i < N_EXIT_SIGNALS; i++)
    sigaddset (&block, exit_signals[i]);
  pthread_sigmask (SIG_BLOCK, &block, &fork_saved_mask);
}

static void
atfork_parent (void)
{
  pthread_sigmask (SIG_SETMASK, &fork_saved_mask, NULL);
  dvt_stripe_locks_release ();
  g_mutex_unlock (&registry_lock);
  G_UNLOCK (default_runtime);
  dvt_fork_gate_open ();
}

/* Only the forking thread exists in the child. The parent's runtimes, its
 * default runtime and its signal watcher are forgotten, not freed: their
 * threads are gone, and their locks may have been held by them. Nothing
 * here allocates or takes a lock that another thread could have held. */
static void
atfork_child (void)
{
  GList *link;

  dvt_fork_gate_reset_child ();
  dvt_stripe_locks_reset ();
  dvt_pool_forget_shared_threads ();

  generation++;
  while ((link = g_queue_pop_head_link (&registry)) != NULL)
    g_queue_push_tail_link (&inherited, link);
  default_runtime = NULL;

  restore_signals_locked ();
  exit_state.n_armed = 0;
  exit_state.n_readers = 0;
  g_cond_init (&exit_state.readers_cond);
  if (signal_pipe[0] >= 0)
    {
      close (signal_pipe[0]);
      close (signal_pipe[1]);
      signal_pipe[0] = signal_pipe[1] = -1;
    }
  /* Unless this thread is running the exit action (a hook that forks),
   * whoever held the lock is gone. */
  if (!dvt_thread_state ()->in_exit_action)
    g_mutex_init (&action_lock);

  g_mutex_init (&registry_lock);
  g_mutex_init (&G_LOCK_NAME (default_runtime));
  pthread_sigmask (SIG_SETMASK, &fork_saved_mask, NULL);
}
