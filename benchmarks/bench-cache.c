/* bench-cache.c: a DvtCache hit against a GHashTable lookup under a GMutex
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The baseline is what an application writes by hand: a GHashTable of
 * GVariant keys (g_variant_hash, g_variant_equal) under a GMutex, the
 * value copied out. Against it, with the same keys, values stored for
 * good: dvt_cache_lookup() (the read-only fast path, target within 2x)
 * and dvt_cache_get_blocking() of a stored key. Each case runs ROUNDS
 * times, alternating with the baseline, and prints the medians (ns per
 * lookup) and their ratio. Options: --json, --scale F (fewer lookups).
 */

#include <dovetail.h>

#include "bench-util.h"

#define ROUNDS  9
#define N_KEYS  100

static gboolean opt_json;
static double opt_scale = 1.0;

typedef struct
{
  GVariant   *keys[N_KEYS];
  /* The baseline. */
  GMutex      lock;
  GHashTable *table;
  /* Dovetail. */
  DvtRuntime *runtime;
  DvtCache   *cache;
  guint       n;
} Bench;

static void
compute (DvtTask       *task,
         GVariant      *key,
         GCancellable  *cancellable,
         gpointer       user_data,
         GError       **error)
{
  dvt_task_return_int (task, g_variant_get_int32 (key) * 3);
}

/* ns per lookup of each of @lookup's N_KEYS keys, @n times over. */
static double
time_loop (Bench  *b,
           gint64 (*lookup) (Bench *b, GVariant *key))
{
  gint64 sum = 0;
  gint64 start = g_get_monotonic_time ();
  double elapsed;

  for (guint i = 0; i < b->n; i++)
    sum += lookup (b, b->keys[i % N_KEYS]);
  elapsed = (double) (g_get_monotonic_time () - start) * 1000;

  /* Every key is there: the sum shows that each lookup found it. */
  g_assert_cmpint (sum, >, 0);

  return elapsed / b->n;
}

static gint64
lookup_hash_table (Bench    *b,
                   GVariant *key)
{
  gint64 *found;
  gint64 value = 0;

  g_mutex_lock (&b->lock);
  found = g_hash_table_lookup (b->table, key);
  if (found != NULL)
    value = *found;
  g_mutex_unlock (&b->lock);

  return value;
}

static gint64
lookup_cache (Bench    *b,
              GVariant *key)
{
  GValue value = G_VALUE_INIT;
  gint64 v;

  if (!dvt_cache_lookup (b->cache, key, &value))
    return 0;
  v = g_value_get_int64 (&value);
  g_value_unset (&value);

  return v;
}

static gint64
get_blocking_cache (Bench    *b,
                    GVariant *key)
{
  GValue value = G_VALUE_INIT;
  gint64 v;

  if (!dvt_cache_get_blocking (b->cache, key, 0, NULL, &value, NULL))
    return 0;
  v = g_value_get_int64 (&value);
  g_value_unset (&value);

  return v;
}

static void
report (const char *name,
        double      dovetail,
        double      baseline,
        double      target)
{
  double ratio = dovetail / baseline;

  if (opt_json)
    g_print ("{\"case\": \"%s\", \"unit\": \"ns\", \"dovetail\": %.6g, "
             "\"baseline_name\": \"GHashTable lookup under a GMutex\", \"baseline\": %.6g, "
             "\"speedup\": %.4g, \"target\": %.4g}\n",
             name, dovetail, baseline, baseline / dovetail, 1 / target);
  else
    g_print ("%-28s %8.1f ns   GHashTable+GMutex %8.1f ns   ratio %.2fx (target within %gx)\n",
             name, dovetail, baseline, ratio, target);
}

static void
run_case (Bench      *b,
          const char *name,
          gint64    (*lookup) (Bench *b, GVariant *key),
          double      target)
{
  double d[ROUNDS], g[ROUNDS];

  /* Warm up both, then alternate. */
  time_loop (b, lookup);
  time_loop (b, lookup_hash_table);
  for (guint r = 0; r < ROUNDS; r++)
    {
      g[r] = time_loop (b, lookup_hash_table);
      d[r] = time_loop (b, lookup);
    }
  report (name, median (d, ROUNDS), median (g, ROUNDS), target);
}

int
main (int argc, char *argv[])
{
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "One JSON object per case", NULL },
    { "scale", 0, 0, G_OPTION_ARG_DOUBLE, &opt_scale, "Fewer lookups (0.1: a tenth)", "F" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- DvtCache hit benchmark");
  g_autoptr(GError) error = NULL;
  Bench b = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    g_error ("%s", error->message);

  b.n = MAX (N_KEYS, (guint) (1000000 * opt_scale));
  g_mutex_init (&b.lock);
  b.table = g_hash_table_new_full (g_variant_hash, g_variant_equal,
                                   (GDestroyNotify) g_variant_unref, g_free);
  b.runtime = dvt_runtime_new (2);
  b.cache = dvt_cache_new (b.runtime, compute, NULL, NULL);

  for (int i = 0; i < N_KEYS; i++)
    {
      b.keys[i] = g_variant_ref_sink (g_variant_new_int32 (i + 1));
      g_hash_table_insert (b.table, g_variant_ref (b.keys[i]), g_memdup2 (&(gint64) { (i + 1) * 3 }, sizeof (gint64)));
      /* Stored for good (the default TTL). */
      if (!dvt_cache_get_blocking (b.cache, b.keys[i], 0, NULL, NULL, &error))
        g_error ("%s", error->message);
    }

  if (!opt_json)
    g_print ("%u lookups of %d keys per round, medians of %d rounds\n", b.n, N_KEYS, ROUNDS);
  run_case (&b, "cache hit: dvt_cache_lookup", lookup_cache, 2);
  run_case (&b, "cache hit: get_blocking", get_blocking_cache, 2);

  g_clear_object (&b.cache);
  dvt_runtime_shutdown (b.runtime, TRUE, FALSE);
  g_clear_object (&b.runtime);
  for (int i = 0; i < N_KEYS; i++)
    g_variant_unref (b.keys[i]);
  g_hash_table_unref (b.table);
  g_mutex_clear (&b.lock);

  return 0;
}
