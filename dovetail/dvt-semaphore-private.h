/* dvt-semaphore-private.h: what the semaphore lends to dvt-gate.c and to tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The uncontended paths, for dvt-gate.c's shortcut, and
 * the semaphore's class once it exists (compared without a type lookup). */
extern gpointer dvt_semaphore_class;
gboolean dvt_semaphore_fast_enter (gpointer semaphore);
void     dvt_semaphore_leave_internal (gpointer semaphore);

/* For tests (through the static library). */
void     dvt_semaphore_set_order_hook (gpointer   semaphore,
                                       void     (*hook) (gboolean in_order,
                                                         gpointer data),
                                       gpointer   data);

G_END_DECLS
