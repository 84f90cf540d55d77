/* dvt-log-private.h: Dovetail's own log lines, with structured fields
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Every line Dovetail logs about a task carries, beside GLib's own fields
 * (MESSAGE, PRIORITY, GLIB_DOMAIN "Dovetail", CODE_FILE/LINE/FUNC):
 *
 *   DVT_RUNTIME    the runtime's name ("" when it has none)
 *   DVT_TASK_ID    the task's execution id, in decimal
 *   DVT_TASK_NAME  its target name ("" when it has none)
 *   DVT_EVENT      the event traced (queued, started, ..., finished), or ""
 *
 * so that journald (`journalctl DVT_TASK_ID=42`) or a GLogWriterFunc can
 * follow one task, one kind of work or one runtime. @runtime, @name and
 * @event may be NULL. */
#define dvt_log_task(level, runtime, task_id, name, event, ...)              \
  G_STMT_START {                                                             \
    char _dvt_id[24];                                                        \
                                                                             \
    g_snprintf (_dvt_id, sizeof _dvt_id, "%" G_GUINT64_FORMAT,              \
                (guint64) (task_id));                                        \
    g_log_structured (G_LOG_DOMAIN, (level),                                 \
                      "CODE_FILE", __FILE__,                                 \
                      "CODE_LINE", G_STRINGIFY (__LINE__),                   \
                      "CODE_FUNC", G_STRFUNC,                                \
                      "DVT_RUNTIME", (runtime) != NULL ? (runtime) : "",     \
                      "DVT_TASK_ID", _dvt_id,                                \
                      "DVT_TASK_NAME", (name) != NULL ? (name) : "",         \
                      "DVT_EVENT", (event) != NULL ? (event) : "",           \
                      "MESSAGE", __VA_ARGS__);                               \
  } G_STMT_END

/* A line about a runtime, with DVT_RUNTIME only. */
#define dvt_log_runtime(level, runtime, ...)                                 \
  g_log_structured (G_LOG_DOMAIN, (level),                                   \
                    "CODE_FILE", __FILE__,                                   \
                    "CODE_LINE", G_STRINGIFY (__LINE__),                     \
                    "CODE_FUNC", G_STRFUNC,                                  \
                    "DVT_RUNTIME", (runtime) != NULL ? (runtime) : "",       \
                    "MESSAGE", __VA_ARGS__)

G_END_DECLS
