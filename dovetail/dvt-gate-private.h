/* dvt-gate-private.h: what dvt-gate.c lends to the gates that implement it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A gate entered and left without contention can cost two
 * compare-and-swaps: the checks and the interface lookup of the
 * dvt_gate_*() calls would cost many times that. A final gate type whose
 * uncontended paths are that cheap registers them from its class_init
 * (before any instance exists), and the calls take them at once for an
 * instance of that class: a valid instance of a final type is a valid
 * gate. One type may register (the semaphore). @try_enter returns FALSE
 * when it cannot enter at once, and the call then goes the long way;
 * @leave is the whole leave. */
void dvt_gate_set_shortcut (gpointer   klass,
                            gboolean (*try_enter) (gpointer gate),
                            void     (*leave)     (gpointer gate));

G_END_DECLS
