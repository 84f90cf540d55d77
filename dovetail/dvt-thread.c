/* dvt-thread.c: per-thread state and the fork gate
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sched.h>
#include <string.h>

#include "dvt-thread-private.h"

/* ---- thread helpers ------------------------------------------------------ */

/* "<name>-<suffix>" as a thread's name. Linux keeps 15 bytes of one, and
 * GLib 2.74 sets none at all if it is longer: cut it ourselves, on a
 * character boundary. */
char *
dvt_thread_name (const char *name,
                 const char *suffix)
{
  char *thread_name = g_strdup_printf ("%s-%s", name != NULL ? name : "dvt", suffix);

  if (strlen (thread_name) > 15)
    {
      const char *end = g_utf8_find_prev_char (thread_name, thread_name + 16);

      thread_name[end != NULL ? end - thread_name : 15] = '\0';
    }

  return thread_name;
}

/* Stops a thread that iterates @context until @quit is set (the loop
 * thread, the events thread): with @join, waits until it has returned. */
void
dvt_context_thread_stop (GThread      *thread,
                         int          *quit,
                         GMainContext *context,
                         gboolean      join)
{
  g_atomic_int_set (quit, 1);
  g_main_context_wakeup (context);
  if (join)
    g_thread_join (thread);
  else
    g_thread_unref (thread);
}

/* ---- the fork gate -------------------------------------------------------- */

/* How long a fork waits for threads inside sections: PURE ones end within
 * microseconds unless their thread is preempted; CALLOUT ones may wait for
 * the forking thread itself. Past these, the fork proceeds. */
#define GATE_PURE_WAIT_USEC    (2 * G_USEC_PER_SEC)
#define GATE_CALLOUT_WAIT_USEC (20 * 1000)

/* Every thread that has entered a section, under states_lock; in a
 * forked child, those of the parent's other threads, which are gone but
 * whose memory stays reachable. */
static GMutex          states_lock;
static DvtThreadState *states;
static DvtThreadState *inherited_states;

/* A fork is under way: sections are not entered (blocked on gate_cond). */
static int    fork_pending;
static GMutex gate_lock;
static GCond  gate_cond;

_Thread_local DvtThreadState *dvt_thread_state_current DVT_TLS_INITIAL_EXEC;

static void
state_free (gpointer data)
{
  DvtThreadState *state = data;

  /* First what it holds, whose freeing may use the state itself. */
  g_clear_object (&state->spare_task);
  g_clear_object (&state->spare_cancellable);
  if (state->caller_watch != NULL)
    state->caller_watch_drop (g_steal_pointer (&state->caller_watch));
  /* Contexts a thread pushed and never popped. */
  if (state->context_unref != NULL)
    {
      g_clear_pointer (&state->context, state->context_unref);
      g_slist_free_full (g_steal_pointer (&state->context_stack), state->context_unref);
    }

  g_mutex_lock (&states_lock);
  if (state->prev != NULL)
    state->prev->next = state->next;
  else
    states = state->next;
  if (state->next != NULL)
    state->next->prev = state->prev;
  g_mutex_unlock (&states_lock);

  dvt_thread_state_current = NULL;
  g_free (state);
}

static GPrivate state_key = G_PRIVATE_INIT (state_free);

DvtThreadState *
dvt_thread_state_new (void)
{
  DvtThreadState *state = g_new0 (DvtThreadState, 1);

  g_mutex_lock (&states_lock);
  state->next = states;
  if (states != NULL)
    states->prev = state;
  states = state;
  g_mutex_unlock (&states_lock);
  g_private_set (&state_key, state);
  dvt_thread_state_current = state;

  return state;
}

/* Sets this thread's section to exactly @kind (see dvt-thread-private.h)
 * and returns what it was. Raising it to a stronger kind first waits out
 * a fork under way; lowering it never waits. */
DvtForkGate
dvt_fork_gate_set (DvtForkGate kind)
{
  DvtThreadState *state = dvt_thread_state ();
  DvtForkGate previous = (DvtForkGate) state->gate;

  if (kind <= previous)
    {
      /* Lowering: a fork that still sees the stronger kind only waits
       * longer than it needs to. */
      if (kind != previous)
        __atomic_store_n (&state->gate, kind, __ATOMIC_RELEASE);
      return previous;
    }

  for (;;)
    {
      /* Either the forking thread sees this thread inside, or this thread
       * sees the fork: both sides store, then load, sequentially
       * consistent. */
      __atomic_store_n (&state->gate, kind, __ATOMIC_SEQ_CST);
      if (G_LIKELY (!__atomic_load_n (&fork_pending, __ATOMIC_SEQ_CST)))
        return previous;

      __atomic_store_n (&state->gate, previous, __ATOMIC_SEQ_CST);
      g_mutex_lock (&gate_lock);
      while (__atomic_load_n (&fork_pending, __ATOMIC_SEQ_CST))
        g_cond_wait (&gate_cond, &gate_lock);
      g_mutex_unlock (&gate_lock);
    }
}

/* Enters a section of @kind, unless this thread is in one at least as
 * strong. Returns what to pass to dvt_fork_gate_leave(). */
DvtForkGate
dvt_fork_gate_enter (DvtForkGate kind)
{
  DvtThreadState *state = dvt_thread_state ();

  if ((DvtForkGate) state->gate >= kind)
    return (DvtForkGate) state->gate;

  return dvt_fork_gate_set (kind);
}

/* In the fork handler, before Dovetail's own locks are taken: stops new
 * sections and waits until no other thread is inside one. */
void
dvt_fork_gate_close (void)
{
  DvtThreadState *self = dvt_thread_state_current;
  gint64 start = g_get_monotonic_time ();

  g_mutex_lock (&gate_lock);
  __atomic_store_n (&fork_pending, 1, __ATOMIC_SEQ_CST);
  g_mutex_unlock (&gate_lock);

  g_mutex_lock (&states_lock);
  for (DvtThreadState *state = states; state != NULL; state = state->next)
    {
      int gate;

      if (state == self)
        continue;
      while ((gate = __atomic_load_n (&state->gate, __ATOMIC_SEQ_CST)) != DVT_FORK_GATE_OUT)
        {
          gint64 waited = g_get_monotonic_time () - start;

          if (waited >= GATE_PURE_WAIT_USEC ||
              (gate == DVT_FORK_GATE_CALLOUT && waited >= GATE_CALLOUT_WAIT_USEC))
            break;
          sched_yield ();
        }
    }
  /* Held across the fork: no thread registers meanwhile. */
}

/* In the parent, after the fork. */
void
dvt_fork_gate_open (void)
{
  g_mutex_unlock (&states_lock);

  g_mutex_lock (&gate_lock);
  __atomic_store_n (&fork_pending, 0, __ATOMIC_SEQ_CST);
  g_cond_broadcast (&gate_cond);
  g_mutex_unlock (&gate_lock);
}

/* In the child, whose only thread is the forking one: the other threads'
 * states are forgotten (their memory stays allocated, as their threads
 * never end here), and the gate is open. */
void
dvt_fork_gate_reset_child (void)
{
  DvtThreadState *self = dvt_thread_state_current;

  /* Unlinked from the parent's list, which the other states stay in. */
  if (self != NULL)
    {
      if (self->prev != NULL)
        self->prev->next = self->next;
      else
        states = self->next;
      if (self->next != NULL)
        self->next->prev = self->prev;
    }
  if (states != NULL)
    {
      DvtThreadState *last = states;

      while (last->next != NULL)
        last = last->next;
      last->next = inherited_states;
      inherited_states = states;
    }
  states = self;
  if (self != NULL)
    self->prev = self->next = NULL;
  g_mutex_init (&states_lock);
  g_mutex_init (&gate_lock);
  g_cond_init (&gate_cond);
  __atomic_store_n (&fork_pending, 0, __ATOMIC_SEQ_CST);
}
