/* dvt-spin.c: spinning before parking, and the futex calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RUSAGE_THREAD */
#endif
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dvt-spin-private.h"
#include "dvt-thread-private.h"

#ifdef DVT_HAVE_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

/* ---- spinning ---------------------------------------------------------- */

/* A spin is worth it only while the thread that will end it runs on
 * another CPU. When the machine is oversubscribed, that thread may be
 * waiting for this very CPU, and every microsecond spent spinning delays
 * it; a yield is no better, as it lets any other process run a whole time
 * slice before this thread gets its CPU back. So a spin never yields: it
 * spins with pause instructions for a budget decided at its start, then
 * the thread parks, and a wake-up through the kernel gives the CPU back
 * at once. The budget comes from what waits observe:
 *
 * - The run queue: now and then (at most every DVT_SAMPLE_USEC, by
 *   whichever thread starts a spin then) a thread reads how many threads
 *   of the whole system are runnable. More than there are CPUs means that
 *   some runnable thread has no CPU, perhaps the one being waited for;
 *   twice in a row, the machine is busy (once may be a short-lived
 *   thread of the system). Fewer than there are CPUs means a CPU is idle:
 *   the machine is not busy.
 * - Preemption: a spin looks at the clock every few hundred nanoseconds;
 *   a gap of more than DVT_PREEMPTED_USEC between two looks means the
 *   thread lost its CPU meanwhile. The spin ends at once and the machine
 *   counts as busy.
 * - The thread's own CPU: on a busy machine, a thread reads its count of
 *   involuntary context switches (at most every DVT_RUSAGE_USEC). If it
 *   has not grown, no other thread took its CPU lately: the CPU it spins
 *   on would be idle otherwise, and its partner runs elsewhere.
 *
 * While the machine is busy (for DVT_BUSY_HOLD_USEC after the last such
 * evidence), a thread whose CPU is shared does not spin: it parks at its
 * first look at the clock, so that its wait costs one futex wake-up. A
 * process that may run on one CPU only never spins. Otherwise each
 * thread keeps a budget of its own, between DVT_SPIN_MIN_USEC (enough
 * for a hand-off between two running threads) and DVT_SPIN_USEC: a spin
 * that ran out halves it, a spin that found what it waited for grows it
 * to twice that wait, and so does a park that was over less than
 * DVT_SPIN_USEC after the spin began, unless the machine was busy: then
 * the partner that answered soon after this thread parked may have been
 * waiting for its CPU. */
#define DVT_PREEMPTED_USEC 50
#define DVT_SAMPLE_USEC    (2 * 1000)
#define DVT_RUSAGE_USEC    1000
#define DVT_BUSY_HOLD_USEC (50 * 1000)
#define DVT_SPIN_MIN_USEC  2

/* Per thread (in its DvtThreadState): how long its next spin may last,
 * and whether another thread took its CPU lately. */
static inline DvtThreadState *
budget_of_thread (void)
{
  DvtThreadState *state = dvt_thread_state ();

  if (G_UNLIKELY (state->spin_usec == 0))
    state->spin_usec = DVT_SPIN_USEC;   /* a new thread's first spin */

  return state;
}

static struct
{
  gint64 busy_until;  /* atomic: the machine counts as busy until then */
  gint64 next_sample; /* atomic: when the run queue may be read again */
  int    n_over;      /* atomic: samples in a row with more runnable threads than CPUs */
  int    loadavg;     /* /proc/loadavg, or -1 */
  long   n_cpus;      /* online in the whole system */
  gboolean one_cpu;   /* this process may run on one CPU only */
} machine;

static void
machine_init (void)
{
  static gsize initialized = 0;

  if (!g_once_init_enter (&initialized))
    return;

  machine.n_cpus = sysconf (_SC_NPROCESSORS_ONLN);
  machine.one_cpu = g_get_num_processors () <= 1 || machine.n_cpus <= 1;
  machine.loadavg = open ("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  g_once_init_leave (&initialized, 1);
}

static void
machine_set_busy (gint64 now)
{
  __atomic_store_n (&machine.busy_until, now + DVT_BUSY_HOLD_USEC, __ATOMIC_RELAXED);
}

/* Runnable threads in the whole system (this one included), or -1. The
 * fourth field of /proc/loadavg is "runnable/total". */
static long
machine_runnable (void)
{
  char buf[128];
  ssize_t n;
  const char *p = buf;

  if (machine.loadavg < 0)
    return -1;

  n = pread (machine.loadavg, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return -1;
  buf[n] = '\0';

  for (guint fields = 0; fields < 3; fields++)
    {
      p = strchr (p, ' ');
      if (p == NULL)
        return -1;
      p++;
    }

  return strtol (p, NULL, 10);
}

/* Reads the run queue if it is time to; one thread at a time does. */
static void
machine_sample (gint64 now)
{
  gint64 due = __atomic_load_n (&machine.next_sample, __ATOMIC_RELAXED);
  long runnable;

  if (now < due ||
      !__atomic_compare_exchange_n (&machine.next_sample, &due, now + DVT_SAMPLE_USEC,
                                    FALSE, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    return;

  runnable = machine_runnable ();
  if (runnable < 0)
    return;

  if (runnable > machine.n_cpus)
    {
      if (__atomic_add_fetch (&machine.n_over, 1, __ATOMIC_RELAXED) >= 2)
        machine_set_busy (now);
    }
  else if (runnable < machine.n_cpus)
    {
      __atomic_store_n (&machine.n_over, 0, __ATOMIC_RELAXED);
      __atomic_store_n (&machine.busy_until, 0, __ATOMIC_RELAXED);
    }
}

static gboolean
machine_is_busy (gint64 now)
{
  machine_sample (now);

  return now < __atomic_load_n (&machine.busy_until, __ATOMIC_RELAXED);
}

/* Whether another thread took this thread's CPU lately (TRUE where the
 * system does not tell). */
static gboolean
thread_displaced (DvtThreadState *budget,
                  gint64          now)
{
#ifdef RUSAGE_THREAD
  struct rusage ru;

  if (now - budget->spin_rusage_at < DVT_RUSAGE_USEC)
    return budget->spin_displaced;

  if (getrusage (RUSAGE_THREAD, &ru) == 0)
    {
      budget->spin_displaced = budget->spin_rusage_at == 0 ||
                               ru.ru_nivcsw != budget->spin_nivcsw;
      budget->spin_nivcsw = ru.ru_nivcsw;
    }
  budget->spin_rusage_at = now;

  return budget->spin_displaced;
#else
  return TRUE;
#endif
}

/* This thread's budget for a spin starting now. */
static gint64
spin_budget (DvtSpin *spin,
             gint64   now)
{
  DvtThreadState *budget = budget_of_thread ();

  machine_init ();
  spin->busy = machine.one_cpu || (machine_is_busy (now) && thread_displaced (budget, now));

  return spin->busy ? 0 : budget->spin_usec;
}

/* Looks at the clock: FALSE once the spin should end, and from then on
 * (a spin that one wait began and another goes on with, as a queue's
 * popper and its latch do, stays over). */
gboolean
dvt_spin_check (DvtSpin *spin)
{
  gint64 now;

  if (spin->preempted)
    return FALSE;

  now = g_get_monotonic_time ();

  if (spin->now == 0)
    {
      spin->start = spin->now = now;
      spin->budget = spin_budget (spin, now);

      return spin->budget > 0;
    }

  if (now - spin->now > DVT_PREEMPTED_USEC)
    {
      spin->now = now;
      spin->preempted = TRUE;

      return FALSE;
    }

  spin->now = now;

  return now - spin->start < spin->budget;
}

/* Called when a spin is over: @parked tells that it ran out. */
void
dvt_spin_done (DvtSpin  *spin,
               gboolean  parked)
{
  gint64 waited = spin->now - spin->start;
  DvtThreadState *budget;

  if (spin->now == 0 || (spin->busy && !spin->preempted))
    return;

  budget = budget_of_thread ();
  if (spin->preempted)
    {
      machine_set_busy (spin->now);
      budget->spin_usec = DVT_SPIN_MIN_USEC;
      budget->spin_displaced = TRUE;
    }
  else if (parked)
    budget->spin_usec = MAX (budget->spin_usec / 2, DVT_SPIN_MIN_USEC);
  else
    budget->spin_usec = CLAMP (2 * waited, budget->spin_usec, DVT_SPIN_USEC);
}

/* Called when a park that followed a spin is over because what the
 * thread waited for came: if it came soon, the next such wait spins long
 * enough to catch it. */
void
dvt_spin_woken (DvtSpin *spin)
{
  gint64 waited;

  if (spin->now == 0 || spin->busy || spin->preempted)
    return;

  waited = g_get_monotonic_time () - spin->start;
  if (waited < DVT_SPIN_USEC && !machine_is_busy (spin->now))
    {
      DvtThreadState *budget = budget_of_thread ();

      budget->spin_usec = MAX (budget->spin_usec, MIN (2 * waited, DVT_SPIN_USEC));
    }
}

/* ---- futex ------------------------------------------------------------ */

#ifdef DVT_HAVE_FUTEX
/* Sleeps while *@word is @expected, until the monotonic time @deadline
 * (-1: none). Returns early on a wake-up, a signal or a spurious wake:
 * callers look again at what they wait for. */
void
dvt_futex_wait (int    *word,
                int     expected,
                gint64  deadline)
{
  if (deadline < 0)
    syscall (SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
  else
    {
      /* An absolute CLOCK_MONOTONIC time, the clock of g_get_monotonic_time(). */
      struct timespec ts = { deadline / G_USEC_PER_SEC, (deadline % G_USEC_PER_SEC) * 1000 };

      syscall (SYS_futex, word, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, NULL,
               FUTEX_BITSET_MATCH_ANY);
    }
}

/* Wakes up to @n_threads threads sleeping on @word. */
void
dvt_futex_wake (int *word,
                int  n_threads)
{
  syscall (SYS_futex, word, FUTEX_WAKE_PRIVATE, n_threads, NULL, NULL, 0);
}
#endif
