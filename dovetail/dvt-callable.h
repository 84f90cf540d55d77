/* dvt-callable.h: a function with its runtime and options, called many times
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dvt-options.h"
#include "dvt-runtime.h"
#include "dvt-task.h"
#include "dvt-version-macros.h"

G_BEGIN_DECLS

/**
 * DvtCallableFunc:
 * @task: the task of this call, to complete
 * @args: (nullable): the arguments given to this call, or %NULL
 * @cancellable: (nullable): cancelled when this call is cancelled
 * @user_data: (closure): the data given to dvt_callable_new()
 * @error: return location for a #GError
 *
 * The function of a [class@Callable]. It completes @task as a
 * [callback@ThreadFunc] does (or, for a callable made with
 * [ctor@Callable.new_async], as a [callback@AsyncFunc] does: possibly
 * later, from the main context it runs on).
 */
typedef void (*DvtCallableFunc) (DvtTask       *task,
                                 GVariant      *args,
                                 GCancellable  *cancellable,
                                 gpointer       user_data,
                                 GError       **error);

#define DVT_TYPE_CALLABLE (dvt_callable_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtCallable, dvt_callable, DVT, CALLABLE, GObject)

DVT_AVAILABLE_IN_ALL
DvtCallable *dvt_callable_new            (DvtRuntime          *runtime,
                                          DvtCallableFunc      func,
                                          gpointer             user_data,
                                          GDestroyNotify       destroy,
                                          DvtOptions          *options) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtCallable *dvt_callable_new_async      (DvtRuntime          *runtime,
                                          DvtCallableFunc      func,
                                          gpointer             user_data,
                                          GDestroyNotify       destroy,
                                          DvtOptions          *options) G_GNUC_WARN_UNUSED_RESULT;

DVT_AVAILABLE_IN_ALL
DvtRuntime  *dvt_callable_get_runtime    (DvtCallable         *self);
DVT_AVAILABLE_IN_ALL
DvtOptions  *dvt_callable_dup_options    (DvtCallable         *self) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
gboolean     dvt_callable_get_is_async   (DvtCallable         *self);

DVT_AVAILABLE_IN_ALL
gboolean     dvt_callable_call_blocking  (DvtCallable         *self,
                                          GVariant            *args,
                                          GCancellable        *cancellable,
                                          GValue              *value,
                                          GError             **error);
DVT_AVAILABLE_IN_ALL
void         dvt_callable_call_async     (DvtCallable         *self,
                                          GVariant            *args,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
DVT_AVAILABLE_IN_ALL
gboolean     dvt_callable_call_finish    (DvtCallable         *self,
                                          GAsyncResult        *result,
                                          GValue              *value,
                                          GError             **error);
DVT_AVAILABLE_IN_ALL
DvtTask     *dvt_callable_submit         (DvtCallable         *self,
                                          GVariant            *args,
                                          GCancellable        *cancellable,
                                          GError             **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
