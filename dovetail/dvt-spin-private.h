/* dvt-spin-private.h: spinning before parking, and the futex calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parked threads sleep on a futex where there is one (Linux with a 64-bit
 * time_t), on GLib condition variables elsewhere. */
#if defined(__linux__) && GLIB_SIZEOF_LONG == 8 && !defined(DVT_NO_FUTEX)
#define DVT_HAVE_FUTEX 1

void dvt_futex_wait (int    *word,
                     int     expected,
                     gint64  deadline);
void dvt_futex_wake (int    *word,
                     int     n_threads);
#endif

/* The longest a waiter, an idle worker or the idle loop thread spins
 * before it parks: short enough that an idle runtime costs nothing, long
 * enough to cover a typical hand-off between two running cores. How long
 * a spin really lasts is decided at its start (see dvt-spin.c). */
#define DVT_SPIN_USEC 30

static inline void
dvt_cpu_relax (void)
{
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__ ("pause" ::: "memory");
#elif defined(__aarch64__)
  __asm__ __volatile__ ("yield" ::: "memory");
#else
  __asm__ __volatile__ ("" ::: "memory");
#endif
}

/* One spin, from its first step until the thread finds what it waits for
 * or parks. See dvt-spin.c for how long it lasts. */
typedef struct
{
  gint64   start;     /* monotonic µs at the first look at the clock */
  gint64   now;       /* at the last look; 0 before the first */
  gint64   budget;    /* how long it may last, set at the first look */
  guint    i;
  gboolean busy;      /* busy machine, shared CPU: no spinning */
  gboolean preempted; /* the clock jumped between two looks */
} DvtSpin;

#define DVT_SPIN_INIT { 0, 0, 0, 0, FALSE, FALSE }

gboolean dvt_spin_check (DvtSpin *spin);
void     dvt_spin_done  (DvtSpin *spin,
                         gboolean parked);
void     dvt_spin_woken (DvtSpin *spin);

/* One step of a spin: FALSE once it is time to park. The first step
 * looks at the clock, so a spin that should not happen ends at once. */
static inline gboolean
dvt_spin_step (DvtSpin *spin)
{
  if (G_LIKELY ((spin->i++ & 15) != 0))
    {
      dvt_cpu_relax ();
      return TRUE;
    }

  return dvt_spin_check (spin);
}

G_END_DECLS
