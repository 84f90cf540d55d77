/* dvt-pool.c: the worker pool's scheduler
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-heap-private.h"
#include "dvt-pool-private.h"
#include "dvt-thread-private.h"
#include "dvt-spin-private.h"

/* An idle worker parks this long before it hands its thread back. */
#define DVT_WORKER_IDLE_USEC (5 * G_USEC_PER_SEC)

/* Set in the child of a fork(): GLib's shared thread pool still counts the
 * parent's idle threads, which the child does not have, and would hand work
 * to them; pools made from then on start their own threads. */
static gboolean own_threads;
/* Run by a worker as it leaves the pool's loop: set once by the layer
 * above, which keeps per-thread spares the pool knows nothing of. */
static void (*worker_exit_hook) (void);

/* Sets what a worker runs as it leaves the pool's loop, before the pool's
 * release; once, before the first job that could leave anything behind. */
void
dvt_pool_set_worker_exit_hook (void (*hook) (void))
{
  g_atomic_pointer_set (&worker_exit_hook, hook);
}

/* The pool whose worker loop this thread runs (DvtThreadState.pool). */
static inline DvtPool *
current_pool (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();

  return state != NULL ? state->pool : NULL;
}

DvtPool *
dvt_pool_get_current (void)
{
  return current_pool ();
}

/* ---- the heap of jobs at other priorities ---------------------------------
 *
 * Most jobs come at the default priority: they go to the plain list, and
 * the heap (dvt-heap-private.h: by priority, then arrival) is made only
 * once a job at another priority comes. The list holds only
 * default-priority jobs, the heap none, so the next job is the heap's
 * first when it goes before the default, else the list's head, else the
 * heap's first. */

static void
heap_push_locked (DvtPool *pool,
                  DvtJob  *job,
                  int      priority)
{
  DvtPoolEntry entry = { priority, pool->heap_seq++, job };

  if ((guint) pool->n_heap == pool->heap_size)
    {
      pool->heap_size = MAX (16, pool->heap_size * 2);
      pool->heap = g_renew (DvtPoolEntry, pool->heap, pool->heap_size);
    }
  DVT_HEAP_PUSH (pool->heap, (guint) pool->n_heap, &entry);
  g_atomic_int_set (&pool->n_heap, pool->n_heap + 1);
}

static DvtJob *
heap_pop_locked (DvtPool *pool)
{
  DvtPoolEntry first;

  DVT_HEAP_POP (pool->heap, (guint) pool->n_heap, &first);
  g_atomic_int_set (&pool->n_heap, pool->n_heap - 1);

  /* A burst of prioritised work is over: give its memory back. */
  if (pool->n_heap == 0 && pool->heap_size > 1024)
    {
      g_clear_pointer (&pool->heap, g_free);
      pool->heap_size = 0;
    }

  pool->n_queued--;
  first.job->next = NULL;

  return first.job;
}

/* Whether a job is queued; without the lock, a hint for spinning
 * workers. */
static inline gboolean
pool_has_work (DvtPool *pool)
{
  return g_atomic_pointer_get (&pool->head) != NULL ||
         g_atomic_int_get (&pool->n_heap) != 0;
}

static DvtJob *
pool_pop_locked (DvtPool *pool)
{
  DvtJob *job = pool->head;

  if (G_UNLIKELY (pool->n_heap > 0) &&
      (job == NULL || pool->heap[0].priority < G_PRIORITY_DEFAULT))
    return heap_pop_locked (pool);

  if (job == NULL)
    return NULL;

  g_atomic_pointer_set (&pool->head, job->next);
  if (pool->head == NULL)
    pool->tail = NULL;
  pool->n_queued--;
  job->next = NULL;

  return job;
}

typedef enum
{
  KICK_NONE,
  KICK_WAKE,  /* wake a parked worker */
  KICK_START, /* start a thread */
} DvtKick;

/* What pool_kick() is to do: with KICK_WAKE, the worker to wake. */
typedef struct
{
  DvtKick    kick;
  DvtParked *parked;
} DvtKickOf;

#define KICK_OF_NONE ((DvtKickOf) { KICK_NONE, NULL })

#ifdef DVT_HAVE_FUTEX
/* With the lock held: takes the worker parked last off the stack and marks
 * it woken. Its futex wake-up is the caller's to make. */
static DvtParked *
pool_pop_parked_locked (DvtPool *pool)
{
  DvtParked *parked = pool->parked;

  pool->parked = parked->next;
  pool->n_parked--;
  g_atomic_int_set (&parked->woken, 1);

  return parked;
}
#endif

/* With the lock held: does the queue need one more worker to wake up or
 * start? The caller acts on the answer with pool_kick(). */
static DvtKickOf
pool_kick_locked (DvtPool *pool)
{
  int n_spinning = g_atomic_int_get (&pool->n_spinning);

  g_assert (n_spinning >= 0);
  if (pool->n_queued <= (guint) n_spinning)
    return KICK_OF_NONE;

  if (pool->n_parked > 0)
    {
#ifdef DVT_HAVE_FUTEX
      /* The worker parked last: its caches are the warmest, and the
       * others stay parked until the work needs them, instead of taking
       * turns (which a shared futex word would make them do, waking the
       * one parked longest, and which costs every hand-off a wake-up once
       * it keeps them all from spinning). The wake-up itself waits until
       * the lock is released: a worker woken now would find it held,
       * sleep on it, and cost the pusher a second wake-up (on a busy
       * machine, where the worker often takes the pusher's CPU at once,
       * nearly always). The wake-up touches the worker's word only, not
       * the pool. */
      return (DvtKickOf) { KICK_WAKE, pool_pop_parked_locked (pool) };
#else
      g_cond_signal (&pool->work_cond);
      return KICK_OF_NONE;
#endif
    }

  if (pool->n_threads < pool->max_workers + pool->n_blocked)
    {
      pool->n_threads++;
      return (DvtKickOf) { KICK_START, NULL };
    }

  return KICK_OF_NONE;
}

static void pool_start_thread (DvtPool *pool);

/* Acts on what pool_kick_locked() answered, with the lock released. */
static void
pool_kick (DvtPool   *pool,
           DvtKickOf  kick)
{
  switch (kick.kick)
    {
    case KICK_NONE:
      break;
    case KICK_WAKE:
#ifdef DVT_HAVE_FUTEX
      /* The worker may have seen @woken already and moved on, even parked
       * again on the same word: a wake-up it did not need, which its park
       * loop absorbs. */
      dvt_futex_wake (&kick.parked->woken, 1);
#endif
      break;
    case KICK_START:
      pool_start_thread (pool);
      break;
    }
}

/* With the lock held, which it releases meanwhile: parks until woken or
 * until @deadline. Returns FALSE once @deadline has passed. With a futex,
 * each parked worker waits on a word of its own, on the pool's stack of
 * parked workers, which pool_kick_locked() pops (see there) and the close
 * empties. */
static gboolean
pool_park_locked (DvtPool *pool,
                  gint64   deadline)
{
#ifdef DVT_HAVE_FUTEX
  DvtParked parked = { 0, pool->parked };

  pool->parked = &parked;
  pool->n_parked++;
  g_mutex_unlock (&pool->lock);
  /* A wake-up between the unlock and the sleep set @woken: the kernel
   * then does not let this thread sleep. */
  while (!g_atomic_int_get (&parked.woken) && g_get_monotonic_time () < deadline)
    dvt_futex_wait (&parked.woken, 0, deadline);
  g_mutex_lock (&pool->lock);

  /* Set under the lock: if it is not set now, nobody popped this worker. */
  if (g_atomic_int_get (&parked.woken))
    return TRUE;

  for (DvtParked **link = &pool->parked; ; link = &(*link)->next)
    if (*link == &parked)
      {
        *link = parked.next;
        break;
      }
  pool->n_parked--;

  return FALSE;
#else
  gboolean woken;

  pool->n_parked++;
  woken = g_cond_wait_until (&pool->work_cond, &pool->lock, deadline);
  pool->n_parked--;

  return woken;
#endif
}

static void pool_worker (gpointer data,
                         gpointer user_data);

static gpointer
own_thread_main (gpointer data)
{
  pool_worker (data, NULL);

  return NULL;
}

static void
pool_start_thread (DvtPool *pool)
{
  GError *error = NULL;
  gboolean started;
  DvtForkGate gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);

  /* The new worker holds the owner from now on, not from when it starts:
   * the owner must outlive a thread that has been asked for. */
  pool->hold (pool->owner);
  if (pool->threads != NULL)
    started = g_thread_pool_push (pool->threads, pool, &error);
  else
    {
      GThread *thread = g_thread_try_new ("dvt-worker", own_thread_main,
                                          pool, &error);

      started = thread != NULL;
      if (started)
        g_thread_unref (thread);
    }
  if (!started)
    {
      /* The GThreadPool is unbounded: this only fails if the system
       * cannot create threads at all, which GLib treats as fatal too. */
      g_error ("Dovetail could not start a worker thread: %s", error->message);
    }
  dvt_fork_gate_leave (gate);
}

static void
pool_worker (gpointer data,
             gpointer user_data)
{
  DvtPool *pool = data;
  gpointer owner = pool->owner;
  DvtThreadState *state = dvt_thread_state ();
  DvtForkGate gate;
  DvtKickOf kick;
  void (*hook) (void);

  state->pool = pool;
  state->pool_announced = FALSE;

  g_mutex_lock (&pool->lock);

  for (;;)
    {
      DvtJob *job;
      DvtSpin spin = DVT_SPIN_INIT;
      gboolean locked = FALSE;

      /* Compensating threads leave once the nested waits are over. */
      if (pool->n_threads > pool->max_workers + pool->n_blocked)
        break;

      job = pool_pop_locked (pool);
      if (job != NULL)
        {
          /* Wake or start another worker if more work is waiting behind
           * this one. */
          if (state->pool_announced)
            g_atomic_int_add (&pool->n_spinning, -1);
          state->pool_announced = FALSE;
          kick = pool_kick_locked (pool);
          g_mutex_unlock (&pool->lock);
          pool_kick (pool, kick);
          job->run (job);
          g_mutex_lock (&pool->lock);
          continue;
        }

      if (pool->closing)
        break;

      /* Spin briefly: a hand-off that arrives now costs no wake-up. A
       * worker that announced its return is counted already, and spins
       * even if another does: it is the one whose caller answers first.
       * Otherwise one idle worker spins at a time; the next parks at
       * once. Two idle spinners would take both CPUs of a 2-CPU machine
       * from the thread they wait for, and, passing the work between
       * them, make the machine look busy and every hand-off a wake-up. */
      if (state->pool_announced || g_atomic_int_get (&pool->n_spinning) == 0)
        {
          if (!state->pool_announced)
            g_atomic_int_inc (&pool->n_spinning);
          state->pool_announced = FALSE;
          g_mutex_unlock (&pool->lock);

          /* Take the lock only when work shows up and nobody else holds
           * it: idle spinners must not queue up on the lock the pusher
           * needs. */
          while (dvt_spin_step (&spin))
            if (pool_has_work (pool) && g_mutex_trylock (&pool->lock))
              {
                locked = TRUE;
                break;
              }
          dvt_spin_done (&spin, !locked);
          if (!locked)
            g_mutex_lock (&pool->lock);
          g_atomic_int_add (&pool->n_spinning, -1);

          if (pool_has_work (pool))
            continue;
          if (pool->closing)
            break;
        }

      if (!pool_park_locked (pool, g_get_monotonic_time () + DVT_WORKER_IDLE_USEC) &&
          !pool_has_work (pool))
        break;
      /* Work came soon after the spin gave up: the next spin may last. */
      if (pool_has_work (pool))
        dvt_spin_woken (&spin);
    }

  /* GLib reuses this thread for other pools: settle what it announced. */
  if (state->pool_announced)
    {
      state->pool_announced = FALSE;
      g_atomic_int_add (&pool->n_spinning, -1);
    }
  pool->n_threads--;
  if (pool->n_threads == 0)
    g_cond_broadcast (&pool->exit_cond);
  /* A surplus worker (a compensating thread once the nested waits are
   * over) leaves even when it was woken for a job, and the worker parked
   * last, which a job wakes, is often a surplus one: hand the job on. */
  kick = pool_kick_locked (pool);
  g_mutex_unlock (&pool->lock);
  pool_kick (pool, kick);

  /* Entered with no lock held: the fork handler may hold this thread
   * back here. */
  gate = dvt_fork_gate_enter (DVT_FORK_GATE_PURE);
  hook = g_atomic_pointer_get (&worker_exit_hook);
  if (hook != NULL)
    hook ();

  /* Last: this may free the pool (DvtThreadState.pool tells dvt_pool_clear()
   * that it runs on one of the pool's own threads). */
  pool->release (owner);
  state->pool = NULL;
  dvt_fork_gate_leave (gate);
}

void
dvt_pool_init (DvtPool  *pool,
               guint     max_workers,
               gpointer  owner,
               void    (*hold)    (gpointer owner),
               void    (*release) (gpointer owner))
{
  memset (pool, 0, sizeof *pool);
  g_mutex_init (&pool->lock);
  g_cond_init (&pool->work_cond);
  g_cond_init (&pool->exit_cond);
  pool->max_workers = MAX (1, max_workers);
  pool->owner = owner;
  pool->hold = hold;
  pool->release = release;
  /* Shared and unbounded: GLib keeps the threads, this pool bounds them. */
  if (!g_atomic_int_get (&own_threads))
    pool->threads = g_thread_pool_new (pool_worker, NULL, -1, FALSE, NULL);
}

/* Called in the child of a fork(), where only the forking thread exists. */
void
dvt_pool_forget_shared_threads (void)
{
  g_atomic_int_set (&own_threads, TRUE);
}

void
dvt_pool_push (DvtPool *pool,
               DvtJob  *job)
{
  DvtKickOf kick;

  job->next = NULL;

  g_mutex_lock (&pool->lock);
  if (pool->tail != NULL)
    pool->tail->next = job;
  else
    g_atomic_pointer_set (&pool->head, job);
  pool->tail = job;
  pool->n_queued++;
  kick = pool_kick_locked (pool);
  g_mutex_unlock (&pool->lock);

  pool_kick (pool, kick);
}

/* Queues @job at @priority, other than G_PRIORITY_DEFAULT (see
 * dvt_pool_push_priority()). */
void
dvt_pool_push_sorted (DvtPool *pool,
                      DvtJob  *job,
                      int      priority)
{
  DvtKickOf kick;

  job->next = NULL;

  g_mutex_lock (&pool->lock);
  heap_push_locked (pool, job, priority);
  pool->n_queued++;
  kick = pool_kick_locked (pool);
  g_mutex_unlock (&pool->lock);

  pool_kick (pool, kick);
}

/* Called when the current worker completes the task its job is about,
 * just before the waiter wakes: the worker is about to look for work, so a
 * caller that submits again at once need not wake another thread. */
void
dvt_pool_announce_return (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();
  DvtPool *pool = state != NULL ? state->pool : NULL;

  if (pool == NULL || state->pool_announced)
    return;

  state->pool_announced = TRUE;
  g_atomic_int_inc (&pool->n_spinning);
}

/* Called by a thread about to park in a wait. If it is one of our workers,
 * the pool may start a compensating thread for queued work. */
DvtPool *
dvt_pool_enter_blocking (void)
{
  DvtThreadState *state = dvt_thread_state_peek ();
  DvtPool *pool = state != NULL ? state->pool : NULL;
  DvtKickOf kick;

  if (pool == NULL)
    return NULL;

  g_mutex_lock (&pool->lock);
  if (state->pool_announced)
    {
      state->pool_announced = FALSE;
      g_atomic_int_add (&pool->n_spinning, -1);
    }
  pool->n_blocked++;
  kick = pool_kick_locked (pool);
  g_mutex_unlock (&pool->lock);

  pool_kick (pool, kick);

  return pool;
}

void
dvt_pool_leave_blocking (DvtPool *pool)
{
  if (pool == NULL)
    return;

  g_mutex_lock (&pool->lock);
  pool->n_blocked--;
  g_mutex_unlock (&pool->lock);
}

/* Workers finish the queue, then leave. With @wait, returns once they
 * have all left; a worker of this pool never waits for itself. */
void
dvt_pool_close (DvtPool  *pool,
                gboolean  wait)
{
  g_mutex_lock (&pool->lock);
  pool->closing = TRUE;
#ifdef DVT_HAVE_FUTEX
  /* Under the lock: a worker woken here cannot leave its park (and its
   * word) before the lock is released. */
  while (pool->parked != NULL)
    dvt_futex_wake (&pool_pop_parked_locked (pool)->woken, 1);
#else
  g_cond_broadcast (&pool->work_cond);
#endif
  if (wait && current_pool () != pool)
    while (pool->n_threads > 0)
      g_cond_wait (&pool->exit_cond, &pool->lock);
  g_mutex_unlock (&pool->lock);
}

/* Frees what the pool holds. Every worker loop holds the owner, so by the
 * time the owner frees its pool no worker is inside this code; the last one
 * may still be returning its thread to GLib, which it may do on its own. */
void
dvt_pool_clear (DvtPool *pool)
{
  g_assert (pool->n_threads == 0 && pool->head == NULL && pool->n_heap == 0);
  g_clear_pointer (&pool->heap, g_free);
  if (pool->threads != NULL)
    g_thread_pool_free (pool->threads, FALSE, current_pool () != pool);
  pool->threads = NULL;
  g_mutex_clear (&pool->lock);
  g_cond_clear (&pool->work_cond);
  g_cond_clear (&pool->exit_cond);
}
