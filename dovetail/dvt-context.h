/* dvt-context.h: a request context that follows the work
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined (DVT_INSIDE) && !defined (DVT_COMPILATION)
# error "Only <dovetail.h> can be included directly."
#endif

#include <glib-object.h>

#include "dvt-version-macros.h"

G_BEGIN_DECLS

#define DVT_TYPE_CONTEXT (dvt_context_get_type ())

typedef struct _DvtContext DvtContext;

DVT_AVAILABLE_IN_ALL
GType         dvt_context_get_type     (void) G_GNUC_CONST;
DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_new          (void) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_ref          (DvtContext   *context);
DVT_AVAILABLE_IN_ALL
void          dvt_context_unref        (DvtContext   *context);
DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_with         (DvtContext   *context,
                                        const char   *key,
                                        const GValue *value) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_with_string  (DvtContext   *context,
                                        const char   *key,
                                        const char   *value) G_GNUC_WARN_UNUSED_RESULT;
DVT_AVAILABLE_IN_ALL
gboolean      dvt_context_lookup       (DvtContext   *context,
                                        const char   *key,
                                        GValue       *value);
DVT_AVAILABLE_IN_ALL
const char   *dvt_context_get_string   (DvtContext   *context,
                                        const char   *key);
DVT_AVAILABLE_IN_ALL
char        **dvt_context_get_keys     (DvtContext   *context);

DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_get_current  (void);
DVT_AVAILABLE_IN_ALL
void          dvt_context_push         (DvtContext   *context);
DVT_AVAILABLE_IN_ALL
void          dvt_context_pop          (DvtContext   *context);
DVT_AVAILABLE_IN_ALL
DvtContext   *dvt_context_capture      (void) G_GNUC_WARN_UNUSED_RESULT;

/**
 * DvtContextFunc:
 * @user_data: (closure): the data given to dvt_context_run()
 *
 * A function run with a context current, by dvt_context_run().
 */
typedef void (*DvtContextFunc) (gpointer user_data);

DVT_AVAILABLE_IN_ALL
void          dvt_context_run          (DvtContext     *context,
                                        DvtContextFunc  func,
                                        gpointer        user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DvtContext, dvt_context_unref)

G_END_DECLS
