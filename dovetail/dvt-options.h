/* dvt-options.h: per-call options
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include "dvt-gate.h"
#include "dvt-types.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_OPTIONS (dvt_options_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtOptions, dvt_options, DVT, OPTIONS, GObject)

DVT_AVAILABLE_IN_ALL
DvtOptions  *dvt_options_new                    (void) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtOptions  *dvt_options_copy                   (DvtOptions  *self) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
gconstpointer dvt_options_get_function          (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_function           (DvtOptions  *self,
                                                 gconstpointer function);
DVT_AVAILABLE_IN_ALL
const char  *dvt_options_get_name               (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_name               (DvtOptions  *self,
                                                 const char  *name);
DVT_AVAILABLE_IN_ALL
int          dvt_options_get_max_concurrency    (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_max_concurrency    (DvtOptions  *self,
                                                 int          max_concurrency);
DVT_AVAILABLE_IN_ALL
gboolean     dvt_options_get_return_errors      (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_return_errors      (DvtOptions  *self,
                                                 gboolean     return_errors);
DVT_AVAILABLE_IN_ALL
gboolean     dvt_options_get_async_items        (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_async_items        (DvtOptions  *self,
                                                 gboolean     async_items);
DVT_AVAILABLE_IN_ALL
gboolean     dvt_options_get_use_caller_context (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_use_caller_context (DvtOptions  *self,
                                                 gboolean     use_caller_context);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_timeout            (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_timeout            (DvtOptions  *self,
                                                 double       timeout);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_deadline           (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_deadline           (DvtOptions  *self,
                                                 double       deadline);
DVT_AVAILABLE_IN_ALL
int          dvt_options_get_retries            (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_retries            (DvtOptions  *self,
                                                 int          retries);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_retry_backoff      (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_retry_backoff      (DvtOptions  *self,
                                                 double       retry_backoff);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_retry_max_delay    (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_retry_max_delay    (DvtOptions  *self,
                                                 double       retry_max_delay);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_retry_jitter       (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_retry_jitter       (DvtOptions  *self,
                                                 double       retry_jitter);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_retry_filter       (DvtOptions     *self,
                                                 DvtRetryFilter  filter,
                                                 gpointer        user_data,
                                                 GDestroyNotify  destroy);
DVT_AVAILABLE_IN_ALL
int          dvt_options_get_priority           (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_priority           (DvtOptions  *self,
                                                 int          priority);
DVT_AVAILABLE_IN_ALL
double       dvt_options_get_delay              (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_delay              (DvtOptions  *self,
                                                 double       delay);
DVT_AVAILABLE_IN_ALL
gint64       dvt_options_get_not_before         (DvtOptions  *self);
DVT_AVAILABLE_IN_ALL
void         dvt_options_set_not_before         (DvtOptions  *self,
                                                 gint64       not_before);

DVT_AVAILABLE_IN_ALL
void         dvt_options_add_gate               (DvtOptions     *self,
                                                 DvtGate        *gate);
DVT_AVAILABLE_IN_ALL
GPtrArray   *dvt_options_get_gates              (DvtOptions     *self);

G_END_DECLS
