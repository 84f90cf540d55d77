/* dvt-types.h: forward declarations and work-function types
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _DvtRuntime DvtRuntime;
typedef struct _DvtTask    DvtTask;
typedef struct _DvtOptions DvtOptions;

/**
 * DvtThreadFunc:
 * @task: the task to complete
 * @cancellable: (nullable): cancelled when the task is cancelled, or %NULL
 *   when nothing can cancel this task
 * @user_data: (closure): data passed when the work was submitted
 * @error: return location for a #GError
 *
 * A blocking function that runs on one of the runtime's worker threads.
 *
 * It completes @task before it returns, with one of the
 * `dvt_task_return_*()` functions, or by setting @error. A function that
 * returns without doing either fails its task with
 * %DVT_ERROR_NOT_COMPLETED.
 *
 * This is also what a binding sees when it cannot call the function on a
 * worker thread (GJS refuses to run JavaScript off its own thread), so such
 * a task ends with a clear error instead of hanging.
 */
typedef void (*DvtThreadFunc) (DvtTask       *task,
                               GCancellable  *cancellable,
                               gpointer       user_data,
                               GError       **error);

/**
 * DvtCallFunc:
 * @user_data: (closure): data passed when the work was submitted
 * @error: return location for a #GError
 *
 * A blocking function that keeps its result to itself, for
 * [method@Runtime.invoke_blocking]: its task succeeds with no value when it
 * returns %TRUE, and fails with @error when it returns %FALSE.
 *
 * Returning %FALSE without setting @error fails the task with
 * %DVT_ERROR_NOT_COMPLETED: that is also what a binding that refuses to
 * call the function on a worker thread returns (GJS does), so such a call
 * ends with a clear error instead of succeeding without having run.
 *
 * Returns: %TRUE on success, %FALSE with @error set on failure
 */
typedef gboolean (*DvtCallFunc) (gpointer   user_data,
                                 GError   **error);

/**
 * DvtAsyncFunc:
 * @task: the task to complete
 * @cancellable: (nullable): cancelled when the task is cancelled, or %NULL
 *   when nothing can cancel this task
 * @user_data: (closure): data passed when the work was submitted
 * @error: return location for a #GError
 *
 * A function that starts asynchronous work on a main context: the
 * runtime's loop thread by default, or the caller's thread-default context
 * when #DvtOptions:use-caller-context is set.
 *
 * It may complete @task before it returns, or later, from any thread, once
 * the work it started is done. To complete it later it must keep a
 * reference to @task (g_object_ref()) until then, exactly as a #GTask is
 * kept for a GIO callback. Setting @error fails the task at once.
 *
 * When the runtime holds the only other references to @task (as in
 * dvt_runtime_run_blocking() and asynchronous map items), a function that
 * returns without completing @task and without keeping a reference to it
 * fails the task with %DVT_ERROR_NOT_COMPLETED.
 */
typedef void (*DvtAsyncFunc) (DvtTask       *task,
                              GCancellable  *cancellable,
                              gpointer       user_data,
                              GError       **error);

/**
 * DvtMapFunc:
 * @task: the task of this item; dvt_task_get_index() tells which item
 * @cancellable: (nullable): cancelled when the whole map is cancelled
 * @user_data: (closure): data passed to the map call
 * @error: return location for a #GError
 *
 * The function a map applies to each index of its range.
 *
 * By default it is called on a worker thread and behaves as a
 * #DvtThreadFunc: it completes @task before it returns. With
 * #DvtOptions:async-items set it is called on a main context and behaves
 * as a #DvtAsyncFunc: it may complete @task later.
 *
 * Whatever @task is completed with lands in the result slot of the item.
 */
typedef void (*DvtMapFunc) (DvtTask       *task,
                            GCancellable  *cancellable,
                            gpointer       user_data,
                            GError       **error);
/**
 * DvtRetryFilter:
 * @task: the task that failed
 * @error: its error
 * @user_data: the data given with the filter
 *
 * Decides whether a failed attempt of @task is tried again (see
 * [method@Options.set_retry_filter]).
 *
 * Returns: %TRUE to retry
 */
typedef gboolean (*DvtRetryFilter) (DvtTask      *task,
                                    const GError *error,
                                    gpointer      user_data);

G_END_DECLS
