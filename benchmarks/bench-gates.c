/* bench-gates.c: DvtSemaphore against GMutex and a GMutex/GCond semaphore
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two cases, each measured alternately with its GLib baseline, ROUNDS
 * times, reporting the medians and their ratio in the format of
 * bench-cache.c:
 *
 *  - uncontended: one thread enters and leaves a DvtSemaphore (the
 *    blocking call, whose fast path is one compare-and-swap each way)
 *    against a GMutex lock and unlock. Target: within 2x;
 *  - contended: two threads each enter, touch a shared counter and leave
 *    a one-permit semaphore, blocking, against the classic semaphore made
 *    of a GMutex, a GCond and a count. Target: at least 1x.
 */

#include <dovetail.h>

#include "bench-util.h"

#define ROUNDS 5

static gboolean opt_json;
static double opt_scale = 1.0;

static void
report (const char *name,
        double      dovetail,
        const char *baseline_name,
        double      baseline,
        double      target)  /* the least speed-up that meets it */
{
  if (opt_json)
    g_print ("{\"case\": \"%s\", \"unit\": \"ns\", \"dovetail\": %.6g, "
             "\"baseline_name\": \"%s\", \"baseline\": %.6g, "
             "\"speedup\": %.4g, \"target\": %.4g}\n",
             name, dovetail, baseline_name, baseline, baseline / dovetail, target);
  else
    g_print ("%-36s %8.1f ns   %-32s %8.1f ns   speed-up %.2fx (target %gx)\n",
             name, dovetail, baseline_name, baseline, baseline / dovetail, target);
}

/* ---- uncontended ------------------------------------------------------------ */

/* The cast to DvtGate is made once: DVT_GATE() checks the interface at
 * run time, which costs more than the entry itself. */
static double
time_semaphore (DvtSemaphore *sem,
                guint         n)
{
  DvtGate *gate = DVT_GATE (sem);
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      if (!dvt_gate_enter_blocking (gate, NULL, NULL))
        g_error ("enter failed");
      dvt_gate_leave (gate);
    }

  return (double) (g_get_monotonic_time () - start) * 1000 / n;
}

static double
time_mutex (GMutex *mutex,
            guint   n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_mutex_lock (mutex);
      g_mutex_unlock (mutex);
    }

  return (double) (g_get_monotonic_time () - start) * 1000 / n;
}

static void
bench_uncontended (guint n)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  double d[ROUNDS], g[ROUNDS];
  GMutex mutex;

  g_mutex_init (&mutex);
  time_semaphore (sem, n);
  time_mutex (&mutex, n);
  for (guint r = 0; r < ROUNDS; r++)
    {
      g[r] = time_mutex (&mutex, n);
      d[r] = time_semaphore (sem, n);
    }
  g_mutex_clear (&mutex);
  report ("semaphore: uncontended enter+leave", median (d, ROUNDS),
          "GMutex lock+unlock", median (g, ROUNDS), 0.5);
}

/* ---- contended --------------------------------------------------------------- */

typedef struct
{
  GMutex lock;
  GCond  cond;
  int    count;
} CondSemaphore;

static void
cond_semaphore_enter (CondSemaphore *s)
{
  g_mutex_lock (&s->lock);
  while (s->count == 0)
    g_cond_wait (&s->cond, &s->lock);
  s->count--;
  g_mutex_unlock (&s->lock);
}

static void
cond_semaphore_leave (CondSemaphore *s)
{
  g_mutex_lock (&s->lock);
  s->count++;
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
}

typedef struct
{
  DvtSemaphore  *sem;
  CondSemaphore *cond_sem;
  guint          n;
  volatile guint counter;
} Contended;

static gpointer
contend_semaphore (gpointer data)
{
  Contended *c = data;
  DvtGate *gate = DVT_GATE (c->sem);

  for (guint i = 0; i < c->n; i++)
    {
      if (!dvt_gate_enter_blocking (gate, NULL, NULL))
        g_error ("enter failed");
      c->counter++;
      dvt_gate_leave (gate);
    }
  return NULL;
}

static gpointer
contend_cond (gpointer data)
{
  Contended *c = data;

  for (guint i = 0; i < c->n; i++)
    {
      cond_semaphore_enter (c->cond_sem);
      c->counter++;
      cond_semaphore_leave (c->cond_sem);
    }
  return NULL;
}

static double
time_contended (Contended   *c,
                GThreadFunc  func)
{
  gint64 start = g_get_monotonic_time ();
  GThread *a, *b;

  c->counter = 0;
  a = g_thread_new ("contend", func, c);
  b = g_thread_new ("contend", func, c);
  g_thread_join (a);
  g_thread_join (b);
  if (c->counter != 2 * c->n)
    g_error ("lost an update: %u of %u", c->counter, 2 * c->n);

  return (double) (g_get_monotonic_time () - start) * 1000 / (2 * c->n);
}

static void
bench_contended (guint n)
{
  g_autoptr(DvtSemaphore) sem = dvt_semaphore_new (1);
  CondSemaphore cond_sem = { .count = 1 };
  Contended c = { sem, &cond_sem, n, 0 };
  double d[ROUNDS], g[ROUNDS];

  g_mutex_init (&cond_sem.lock);
  g_cond_init (&cond_sem.cond);
  time_contended (&c, contend_semaphore);
  time_contended (&c, contend_cond);
  for (guint r = 0; r < ROUNDS; r++)
    {
      g[r] = time_contended (&c, contend_cond);
      d[r] = time_contended (&c, contend_semaphore);
    }
  g_mutex_clear (&cond_sem.lock);
  g_cond_clear (&cond_sem.cond);
  report ("semaphore: contended, 2 threads", median (d, ROUNDS),
          "GMutex/GCond semaphore", median (g, ROUNDS), 1);
}

int
main (int argc, char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "One JSON object per case", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Fewer entries (0.1: a tenth)", "F" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- DvtSemaphore benchmark");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  /* benchmarks/run passes --busy to every program: not measured here. */
  g_option_context_set_ignore_unknown_options (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    g_error ("%s", error->message);

  if (!opt_json)
    g_print ("medians of %d rounds, run alternately with their baselines\n", ROUNDS);
  bench_uncontended (MAX (1000, (guint) (10000000 * opt_scale)));
  bench_contended (MAX (1000, (guint) (200000 * opt_scale)));

  return 0;
}
