/* dvt-task-gates-private.h: a task's way through the gates of its options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-task.h"

G_BEGIN_DECLS

/* The gates of dvt_options_add_gate(), entered and left for a task. */
gboolean  dvt_task_enter_gates       (DvtTask             *task);
void      dvt_task_release_gates     (DvtTask             *task);
void      dvt_task_gates_check_over  (DvtTask             *task);
void      dvt_task_gates_ended       (DvtTask             *task);

G_END_DECLS
