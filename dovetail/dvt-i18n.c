/* dvt-i18n.c: the catalogue of Dovetail's messages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib/gi18n-lib.h>

#include "dvt-i18n-private.h"

/* Binds GETTEXT_PACKAGE to the installed translations, in UTF-8 whatever
 * the locale's codeset (GError messages are UTF-8). Called by the class
 * initialisers of the types whose calls report translated messages, so
 * that it has happened before the first message; only once, so that an
 * application (or a test) that binds the domain elsewhere afterwards keeps
 * its choice. */
void
dvt_i18n_init (void)
{
  static gsize bound;

  if (g_once_init_enter (&bound))
    {
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&bound, 1);
    }
}

/* The number that chooses the plural form of a message about @value
 * seconds (the n of g_dngettext), where @value may have a fraction: a whole
 * value is its own count. A fraction takes the plural in English and
 * German ("1.5 seconds", "1,5 Sekunden") and, below 2, the singular in
 * French ("1,5 seconde"): 0 gives exactly that under the rules of all
 * three (n != 1, n > 1); from 2 on, the whole part does. Beyond the
 * range of a 32-bit gulong, 10^9 stands for any larger value. */
gulong
dvt_i18n_plural_count (double value)
{
  double whole;

  if (!(value >= 0))
    return 0;
  if (value >= 1e9)
    return 1000000000;

  whole = (double) (gulong) value;
  if (value == whole)
    return (gulong) whole;

  return whole >= 2 ? (gulong) whole : 0;
}
