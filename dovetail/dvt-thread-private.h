/* dvt-thread-private.h: per-thread state and the fork gate
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

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
  DVT_GATE_OUT     = 0,
  DVT_GATE_CALLOUT = 1,  /* may call the application: waited for briefly */
  DVT_GATE_PURE    = 2,  /* GLib and Dovetail only: waited for */
} DvtGate;

DvtGate dvt_fork_gate_set   (DvtGate  kind);
DvtGate dvt_fork_gate_enter (DvtGate  kind);

/* Back to what dvt_fork_gate_enter() or _set() returned. */
#define dvt_fork_gate_leave(previous) ((void) dvt_fork_gate_set (previous))

/* Around a call into the application from inside a section: returns what
 * to restore with dvt_fork_gate_leave(). */
#define dvt_fork_gate_suspend() dvt_fork_gate_set (DVT_GATE_OUT)

/* @stmt calls into the application directly: outside the gate. */
#define DVT_APP_CALL(stmt)                                                   \
  G_STMT_START {                                                             \
    DvtGate _dvt_gate = dvt_fork_gate_suspend ();                            \
    stmt;                                                                    \
    dvt_fork_gate_leave (_dvt_gate);                                         \
  } G_STMT_END

/* @stmt is a GLib call that may call into the application. */
#define DVT_CALLOUT(stmt)                                                    \
  G_STMT_START {                                                             \
    DvtGate _dvt_gate = dvt_fork_gate_set (DVT_GATE_CALLOUT);                \
    stmt;                                                                    \
    dvt_fork_gate_leave (_dvt_gate);                                         \
  } G_STMT_END

void    dvt_fork_gate_close      (void);
void    dvt_fork_gate_open       (void);
void    dvt_fork_gate_reset_child (void);

G_END_DECLS
