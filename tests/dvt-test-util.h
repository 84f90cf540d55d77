/* dvt-test-util.h: helpers shared by the C test programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <dovetail.h>

static inline GQuark
test_error_quark (void)
{
  return g_quark_from_static_string ("dovetail-test-error-quark");
}

#define TEST_ERROR (test_error_quark ())

/* Scales every time limit: 10 under valgrind. */
static double slow = 1.0;

/* No value (or a failure) comes back as a NULL pointer value, which
 * language bindings can convert. */
#define assert_null_value(v)                                                 \
  G_STMT_START {                                                             \
    g_assert_true (G_VALUE_HOLDS_POINTER (v));                               \
    g_assert_null (g_value_get_pointer (v));                                 \
  } G_STMT_END

#define POLL_UNTIL(expr, seconds)                                            \
  ({                                                                         \
    gint64 _end = g_get_monotonic_time () +                                  \
                  (gint64) ((seconds) * slow * G_USEC_PER_SEC);              \
    gboolean _ok;                                                            \
    while (!(_ok = !!(expr)) && g_get_monotonic_time () < _end)              \
      g_usleep (500);                                                        \
    _ok;                                                                     \
  })

typedef struct
{
  GMutex   lock;
  GCond    cond;
  gboolean open;
} Gate;

static inline void
gate_init (Gate *gate)
{
  g_mutex_init (&gate->lock);
  g_cond_init (&gate->cond);
  gate->open = FALSE;
}

static inline void
gate_clear (Gate *gate)
{
  g_mutex_clear (&gate->lock);
  g_cond_clear (&gate->cond);
}

static inline void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

static inline void
gate_wait (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

static inline gboolean
is_valgrind (void)
{
  return g_getenv ("DVT_TEST_VALGRIND") != NULL;
}
