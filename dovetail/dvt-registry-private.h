/* dvt-registry-private.h: what the runtime tells the registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dvt-runtime.h"

G_BEGIN_DECLS

/* One per runtime, made in its instance init (DvtRuntime.entry): it holds
 * the registry's properties of the runtime and, once constructed, its
 * place in the registry. */
typedef struct _DvtRegistryEntry DvtRegistryEntry;

DvtRegistryEntry *dvt_registry_entry_new              (void);
gboolean          dvt_registry_get_auto_register      (DvtRuntime *runtime);
void              dvt_registry_set_auto_register      (DvtRuntime *runtime,
                                                       gboolean    auto_register);
gboolean          dvt_registry_get_shutdown_on_exit   (DvtRuntime *runtime);
gboolean          dvt_registry_set_shutdown_on_exit   (DvtRuntime *runtime,
                                                       gboolean    shutdown_on_exit);
void              dvt_registry_add                    (DvtRuntime *runtime);
gboolean          dvt_registry_is_inherited           (DvtRuntime *runtime);
void              dvt_registry_note_shutdown          (DvtRuntime *runtime);
gboolean          dvt_registry_remove                 (DvtRuntime *runtime);

G_END_DECLS
