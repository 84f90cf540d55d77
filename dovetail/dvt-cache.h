/* dvt-cache.h: single flight and memoisation of a function of a key
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

/**
 * DvtCacheFlags:
 * @DVT_CACHE_FLAGS_NONE: the cache's function is blocking and runs on a
 *   worker, as a [callback@ThreadFunc] given to [method@Runtime.submit]
 * @DVT_CACHE_FLAGS_ASYNC_WORK: the cache's function starts asynchronous
 *   work on a main context, as a [callback@AsyncFunc] given to
 *   [method@Runtime.schedule]: the runtime's loop thread, or the thread-default
 *   context of the caller that starts the run when the cache's options set
 *   [property@Options:use-caller-context]
 *
 * How a [class@Cache] runs its function.
 *
 * Since: 0.2
 */
typedef enum /*< flags >*/
{
  DVT_CACHE_FLAGS_NONE       = 0,
  DVT_CACHE_FLAGS_ASYNC_WORK = 1 << 0,
} DvtCacheFlags;

/**
 * DvtCacheFunc:
 * @task: the task of this run, to complete
 * @key: the key to compute a value for
 * @cancellable: (nullable): cancelled when the run is cancelled: when its
 *   last waiter has left, or by a shutdown that cancels pending work
 * @user_data: (closure): the data given to dvt_cache_new()
 * @error: return location for a #GError
 *
 * Computes the value of @key for a [class@Cache], as one task of the
 * cache's runtime shared by every caller waiting for that key.
 *
 * By default it is blocking and runs on a worker, as a
 * [callback@ThreadFunc]: it completes @task before it returns, with
 * dvt_task_return_value(), dvt_task_return_int(), dvt_task_return_boolean()
 * or an error. With %DVT_CACHE_FLAGS_ASYNC_WORK it starts asynchronous work
 * on a main context, as a [callback@AsyncFunc], and completes @task then,
 * from any thread, keeping a reference to it until then.
 *
 * The value is copied for each caller and kept by the cache, so it must
 * be a value that a #GValue copies (a number, a string, a #GVariant, a
 * boxed type, an object...); a pointer given with
 * dvt_task_return_pointer() cannot be shared and fails the run.
 *
 * Since: 0.2
 */
typedef void (*DvtCacheFunc) (DvtTask       *task,
                              GVariant      *key,
                              GCancellable  *cancellable,
                              gpointer       user_data,
                              GError       **error);

#define DVT_TYPE_CACHE (dvt_cache_get_type ())

DVT_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DvtCache, dvt_cache, DVT, CACHE, GObject)

DVT_AVAILABLE_IN_ALL
DvtCache           *dvt_cache_new                 (DvtRuntime           *runtime,
                                                   DvtCacheFunc          func,
                                                   gpointer              func_data,
                                                   GDestroyNotify        func_data_destroy) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtCache           *dvt_cache_new_full            (DvtRuntime           *runtime,
                                                   const GVariantType   *key_type,
                                                   DvtCacheFlags         flags,
                                                   DvtCacheFunc          func,
                                                   gpointer              func_data,
                                                   GDestroyNotify        func_data_destroy) G_GNUC_WARN_UNUSED_RESULT;

DVT_AVAILABLE_IN_ALL
DvtRuntime         *dvt_cache_get_runtime         (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
const GVariantType *dvt_cache_get_key_type        (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
DvtCacheFlags       dvt_cache_get_flags           (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
double              dvt_cache_get_ttl             (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_set_ttl             (DvtCache             *self,
                                                   double                ttl,
                                                   GError              **error);
DVT_AVAILABLE_IN_ALL
guint               dvt_cache_get_max_size        (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
void                dvt_cache_set_max_size        (DvtCache             *self,
                                                   guint                 max_size);
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_get_evict_on_error  (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
void                dvt_cache_set_evict_on_error  (DvtCache             *self,
                                                   gboolean              evict_on_error);
DVT_AVAILABLE_IN_ALL
DvtOptions         *dvt_cache_dup_options         (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
void                dvt_cache_set_options         (DvtCache             *self,
                                                   DvtOptions           *options);
DVT_AVAILABLE_IN_ALL
guint               dvt_cache_get_n_entries       (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
guint64             dvt_cache_get_hits            (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
guint64             dvt_cache_get_misses          (DvtCache             *self);
DVT_AVAILABLE_IN_ALL
guint64             dvt_cache_get_runs            (DvtCache             *self);

DVT_AVAILABLE_IN_ALL
DvtTask            *dvt_cache_get                 (DvtCache             *self,
                                                   GVariant             *key,
                                                   GCancellable         *cancellable,
                                                   GError              **error) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_get_blocking        (DvtCache             *self,
                                                   GVariant             *key,
                                                   double                timeout,
                                                   GCancellable         *cancellable,
                                                   GValue               *value,
                                                   GError              **error);
DVT_AVAILABLE_IN_ALL
void                dvt_cache_get_async           (DvtCache             *self,
                                                   GVariant             *key,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_get_finish          (DvtCache             *self,
                                                   GAsyncResult         *result,
                                                   GValue               *value,
                                                   GError              **error);
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_lookup              (DvtCache             *self,
                                                   GVariant             *key,
                                                   GValue               *value);
DVT_AVAILABLE_IN_ALL
gboolean            dvt_cache_invalidate          (DvtCache             *self,
                                                   GVariant             *key);
DVT_AVAILABLE_IN_ALL
void                dvt_cache_clear               (DvtCache             *self);

G_END_DECLS
