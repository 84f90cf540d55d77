/* dvt-event-scope.h: a runtime's events for some of its tasks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include "dvt-types.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_EVENT_SCOPE (dvt_event_scope_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtEventScope, dvt_event_scope, DVT, EVENT_SCOPE, GObject)

DVT_AVAILABLE_IN_ALL
DvtEventScope *dvt_event_scope_new           (DvtRuntime     *runtime,
                                              const char     *name,
                                              gconstpointer   function,
                                              guint64         task_id,
                                              GError        **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
const char    *dvt_event_scope_get_name      (DvtEventScope  *self);
DVT_AVAILABLE_IN_ALL
gconstpointer  dvt_event_scope_get_function  (DvtEventScope  *self);
DVT_AVAILABLE_IN_ALL
guint64        dvt_event_scope_get_task_id   (DvtEventScope  *self);
DVT_AVAILABLE_IN_ALL
guint          dvt_event_scope_get_max_depth (DvtEventScope  *self);
DVT_AVAILABLE_IN_ALL
void           dvt_event_scope_set_max_depth (DvtEventScope  *self,
                                              guint           max_depth);

G_END_DECLS
