/* dvt-pool-private.h: the worker pool's scheduler
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DvtJob DvtJob;

/* A unit of work for a worker, embedded in whatever owns it (a task, a map
 * runner). @run owns the job from the moment it is called. */
struct _DvtJob
{
  DvtJob *next;
  void  (*run) (DvtJob *job);
};

typedef struct _DvtPool DvtPool;

/* A worker parked on its own futex word, on its own stack, in the pool's
 * stack of parked workers (see pool_park_locked()). */
typedef struct _DvtParked DvtParked;
struct _DvtParked
{
  int        woken;  /* atomic; the futex word; set under the pool's lock */
  DvtParked *next;
};

/* A job queued at a priority other than G_PRIORITY_DEFAULT: an entry of
 * the pool's heap (the job itself stays two pointers). */
typedef struct
{
  int     priority;
  guint64 seq;      /* FIFO among equal priorities */
  DvtJob *job;
} DvtPoolEntry;

/* Threads come from a GThreadPool (in the child of a fork(), from
 * g_thread_try_new()); what runs on each of them is the loop in dvt-pool.c:
 * take a job, spin briefly when there is none, then park, and hand the
 * thread back to GLib after a longer idle period. */
struct _DvtPool
{
  GMutex       lock;
  GCond        work_cond;  /* parked workers (without a futex) */
  DvtParked   *parked;     /* parked workers (with a futex), the last first */
  int          n_heap;     /* jobs in the heap (below); read without the
                            * lock by spinning workers, beside head */
  GCond        exit_cond;  /* n_threads reached 0 */
  DvtJob      *head;       /* read without the lock by spinning workers */
  DvtJob      *tail;
  guint        n_queued;   /* in the list and in the heap */
  guint        max_workers;
  guint        n_threads;  /* worker loops alive */
  guint        n_parked;
  int          n_spinning; /* atomic */
  guint        n_blocked;  /* workers parked in a nested wait */
  gboolean     closing;
  guint        heap_size;  /* see heap below */
  GThreadPool *threads;    /* NULL: the pool starts its own threads */
  gpointer     owner;      /* the DvtCore: each worker loop holds it */
  void       (*hold)    (gpointer owner);
  void       (*release) (gpointer owner);
  /* Jobs at other priorities than the default: a binary heap, made when
   * the first one comes, so that the default lane stays a plain list.
   * Last: only prioritised work touches them, under the lock. */
  DvtPoolEntry *heap;
  guint64      heap_seq;
};

void      dvt_pool_init             (DvtPool  *pool,
                                     guint     max_workers,
                                     gpointer  owner,
                                     void    (*hold)    (gpointer owner),
                                     void    (*release) (gpointer owner));
void      dvt_pool_push             (DvtPool  *pool,
                                     DvtJob   *job);
void      dvt_pool_push_sorted      (DvtPool  *pool,
                                     DvtJob   *job,
                                     int       priority);
void      dvt_pool_close            (DvtPool  *pool,
                                     gboolean  wait);
void      dvt_pool_clear            (DvtPool  *pool);
DvtPool  *dvt_pool_get_current      (void);
DvtPool  *dvt_pool_enter_blocking   (void);
void      dvt_pool_announce_return  (void);
void      dvt_pool_leave_blocking   (DvtPool  *pool);
void      dvt_pool_forget_shared_threads (void);
void      dvt_pool_set_worker_exit_hook  (void (*hook) (void));

/* Queues @job behind the jobs of a lower or equal @priority value (GLib's
 * G_PRIORITY_* scale: lower first), as dvt_pool_push() does at the
 * default priority. */
static inline void
dvt_pool_push_priority (DvtPool *pool,
                        DvtJob  *job,
                        int      priority)
{
  if (G_LIKELY (priority == G_PRIORITY_DEFAULT))
    dvt_pool_push (pool, job);
  else
    dvt_pool_push_sorted (pool, job, priority);
}

G_END_DECLS
