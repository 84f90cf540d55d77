/* dvt-thread-private.h: per-thread state and the fork gate
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* ---- what a thread carries ---------------------------------------------------
 *
 * Everything Dovetail keeps per thread, in one place: each layer owns its
 * fields (those of layers above are opaque here) and nothing else keeps a
 * thread-local of its own. Made on a thread's first use, freed when it
 * ends (after its spares are dropped). */

typedef struct _DvtThreadState DvtThreadState;

struct _DvtThreadState
{
  /* dvt-thread.c: the fork gate */
  DvtThreadState *prev;
  DvtThreadState *next;
  int             gate;            /* DvtForkGate, atomic: read by the forking thread */

  /* dvt-spin.c: how long this thread's next spin may last (0: not set
   * yet, the longest), and whether another thread took its CPU lately */
  gint64          spin_usec;
  gint64          spin_rusage_at;  /* when spin_nivcsw was read; 0: never */
  long            spin_nivcsw;     /* involuntary context switches then */
  gboolean        spin_displaced;  /* they grew between the last two reads */

  /* dvt-fault.c */
  guint32         fault_rng;

  /* dvt-events.c: a scope's handlers run here (see DvtCause) */
  guint64         cause_scope;
  guint           cause_depth;
  gpointer        event_queue;     /* the queue this thread delivers */

  /* dvt-pool.c */
  gpointer        pool;            /* the pool whose worker loop runs here */
  gboolean        pool_announced;  /* counted as spinning before its job
                                    * returned (dvt_pool_announce_return()) */

  /* dvt-core.c */
  gpointer        loop_core;       /* the core whose loop this thread runs */

  /* dvt-task.c */
  gpointer        running_task;    /* whose work function runs here */
  gpointer        cancelling_task; /* whose cancellation handler runs here */
  GObject        *spare_task;      /* owned: see dvt_task_recycle() */
  GObject        *spare_cancellable; /* owned: lent to thread functions */
  gpointer        release_head;    /* tasks to free in one go */
  guint           release_length;
  gpointer        caller_watch;    /* owned: see dvt_task_watch_caller() */
  GDestroyNotify  caller_watch_drop; /* set with the first watch */

  /* dvt-async-op.c */
  gpointer        delivering_op;   /* whose callback runs here, innermost */

  /* dvt-context.c */
  gpointer        context;         /* held: the current DvtContext */
  GSList         *context_stack;   /* held: those pushed before it */
  GDestroyNotify  context_unref;   /* set with the first push */

  /* dvt-registry.c */
  gboolean        in_exit_action;
  gboolean        on_watcher;
};

/* Initial-exec: one load from the thread pointer, where the default model
 * of a shared library calls __tls_get_addr() on every access (a dozen
 * times per task). A pointer fits in the static TLS space that the C
 * library keeps for libraries loaded later, as by dlopen() from
 * introspection. */
#define DVT_TLS_INITIAL_EXEC __attribute__ ((tls_model ("initial-exec")))

G_GNUC_INTERNAL extern _Thread_local DvtThreadState *dvt_thread_state_current DVT_TLS_INITIAL_EXEC;

DvtThreadState *dvt_thread_state_new (void);

/* This thread's state, made on first use. */
static inline DvtThreadState *
dvt_thread_state (void)
{
  DvtThreadState *state = dvt_thread_state_current;

  return G_LIKELY (state != NULL) ? state : dvt_thread_state_new ();
}

/* This thread's state if it has one: for reads that need none. */
static inline DvtThreadState *
dvt_thread_state_peek (void)
{
  return dvt_thread_state_current;
}

char    *dvt_thread_name          (const char   *name,
                                   const char   *suffix);
void     dvt_context_thread_stop  (GThread      *thread,
                                   int          *quit,
                                   GMainContext *context,
                                   gboolean      join);

/* ---- the fork gate ------------------------------------------------------
 *
 * GLib keeps global locks (GObject's signal and notify locks, the
 * cancellable lock, the lock around thread creation...). A thread that
 * holds one when another thread forks leaves it held for good in the
 * child, whose only thread then hangs on its first GObject call. Dovetail
 * makes such calls on every task, from its own threads and from the
 * threads calling it.
 *
 * So every stretch of Dovetail's code that calls into GLib is a section
 * of the fork gate, and the fork handler (dvt_fork_gate_close()) waits
 * until no other thread is inside one before the fork proceeds; threads
 * that want to enter meanwhile wait until the fork is over. A section is
 * entered only where the thread holds none of Dovetail's locks, and left
 * around calls into the application (work functions, callbacks, handlers,
 * destroy notifies): a thread running the application's code is outside,
 * and never makes the fork wait.
 *
 * Some GLib calls may call the application from inside (the last unref of
 * an object with weak references or a binding's wrapper, a cancellation
 * with handlers, a signal emission): those stretches are CALLOUT sections,
 * which the fork waits for only briefly (the application's code may wait
 * for the forking thread: Python's os.fork() holds the interpreter lock).
 * GLib never calls out while it holds one of its global locks, so a fork
 * that proceeds past a thread in such a call is safe. */

typedef enum
{
  DVT_FORK_GATE_OUT     = 0,
  DVT_FORK_GATE_CALLOUT = 1,  /* may call the application: waited for briefly */
  DVT_FORK_GATE_PURE    = 2,  /* GLib and Dovetail only: waited for */
} DvtForkGate;

DvtForkGate dvt_fork_gate_set   (DvtForkGate kind);
DvtForkGate dvt_fork_gate_enter (DvtForkGate kind);

/* Back to what dvt_fork_gate_enter() or _set() returned. */
#define dvt_fork_gate_leave(previous) ((void) dvt_fork_gate_set (previous))

/* Around a call into the application from inside a section: returns what
 * to restore with dvt_fork_gate_leave(). */
#define dvt_fork_gate_suspend() dvt_fork_gate_set (DVT_FORK_GATE_OUT)

/* @stmt calls into the application directly: outside the gate. */
#define DVT_APP_CALL(stmt)                                                   \
  G_STMT_START {                                                             \
    DvtForkGate _dvt_gate = dvt_fork_gate_suspend ();                        \
    stmt;                                                                    \
    dvt_fork_gate_leave (_dvt_gate);                                         \
  } G_STMT_END

/* @stmt is a GLib call that may call into the application. */
#define DVT_CALLOUT(stmt)                                                    \
  G_STMT_START {                                                             \
    DvtForkGate _dvt_gate = dvt_fork_gate_set (DVT_FORK_GATE_CALLOUT);       \
    stmt;                                                                    \
    dvt_fork_gate_leave (_dvt_gate);                                         \
  } G_STMT_END

void    dvt_fork_gate_close      (void);
void    dvt_fork_gate_open       (void);
void    dvt_fork_gate_reset_child (void);

G_END_DECLS
