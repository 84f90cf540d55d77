/* dvt-event-scope-private.h: what event delivery asks of a scope
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-event-scope.h"
#include "dvt-task.h"

G_BEGIN_DECLS

gboolean dvt_event_scope_matches    (DvtEventScope *self,
                                     DvtTask       *task);
guint64  dvt_event_scope_get_serial (DvtEventScope *self);
DvtEventScope *dvt_event_scope_hold (DvtEventScope *self);

G_END_DECLS
