/* dvt-fault.c: fault injection at the library's hand-offs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <sched.h>
#include <stdlib.h>

#include "dvt-fault-private.h"
#include "dvt-thread-private.h"

#define DVT_FAULT_DEFAULT_USEC 50

int dvt_fault_max_usec;

/* Reads DVT_FAULT_INJECT once, before the first runtime exists. */
void
dvt_fault_init (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      const char *value = g_getenv ("DVT_FAULT_INJECT");
      gint64 usec = value != NULL ? g_ascii_strtoll (value, NULL, 10) : 0;

      if (usec == 1)
        usec = DVT_FAULT_DEFAULT_USEC;
      dvt_fault_max_usec = (int) CLAMP (usec, 0, G_USEC_PER_SEC);
      g_once_init_leave (&initialized, 1);
    }
}

/* One time in three nothing, one in three a yield, one in three a sleep
 * of up to the maximum. A per-thread generator: no lock, no shared state. */
void
dvt_fault_inject (void)
{
  DvtThreadState *state = dvt_thread_state ();
  guint32 x = state->fault_rng;

  if (x == 0)
    x = (guint32) (GPOINTER_TO_SIZE (state) ^ (gsize) g_get_monotonic_time ()) | 1;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  state->fault_rng = x;

  switch (x % 3)
    {
    case 0:
      break;
    case 1:
      sched_yield ();
      break;
    default:
      g_usleep ((x >> 8) % (guint32) dvt_fault_max_usec + 1);
      break;
    }
}
