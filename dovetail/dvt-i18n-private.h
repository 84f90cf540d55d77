/* dvt-i18n-private.h: the catalogue of Dovetail's messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

void   dvt_i18n_init          (void);
gulong dvt_i18n_plural_count  (double value);

G_END_DECLS
