/* test-i18n.c: Dovetail's messages reach the caller translated
 *
 * tests/meson.build runs this program twice, with LANGUAGE=de and with
 * LANGUAGE=fr, and LC_ALL=C.UTF-8 (a locale every glibc system has; glibc
 * honours LANGUAGE for any locale but "C" itself). The library binds its
 * domain to the installed catalogues when its classes initialise; the
 * test checks that, then binds the domain to the catalogues msgfmt built
 * in the build tree (po/<lang>/LC_MESSAGES/), and expects the library's
 * own GError messages in the language asked for, word for word: only the
 * compiled translation can have produced them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "dvt-test-util.h"
#include <libintl.h>
#include <locale.h>
#include <string.h>

typedef struct
{
  const char *language;
  const char *closed;
  const char *timed_out;        /* 0.05 s: a fraction takes the plural in both */
  const char *timed_out_named;
  const char *busy_one_second;  /* the singular */
  const char *busy_two_seconds; /* the plural */
  const char *scope_without_runtime;
} Expected;

static const Expected expectations[] = {
  {
    "de",
    "Die Laufzeitumgebung wurde heruntergefahren und nimmt keine Arbeit mehr an",
    "Die Aufgabe hat nach 0.05 Sekunden ihr Zeitlimit überschritten",
    "Die Aufgabe „fetch-url“ hat nach 0.05 Sekunden ihr Zeitlimit überschritten",
    "Die Laufzeitumgebung war nach 1 Sekunde noch beschäftigt",
    "Die Laufzeitumgebung war nach 2 Sekunden noch beschäftigt",
    "Ein Ereignisbereich braucht eine Laufzeitumgebung",
  },
  {
    "fr",
    "L’environnement d’exécution a été arrêté et n’accepte plus de travail",
    /* French takes the singular below 2, fractions included. */
    "La tâche a expiré au bout de 0.05 seconde",
    "La tâche «\u00a0fetch-url\u00a0» a expiré au bout de 0.05 seconde",
    "L’environnement d’exécution était encore occupé au bout de 1 seconde",
    "L’environnement d’exécution était encore occupé au bout de 2 secondes",
    "Une portée d’événements a besoin d’un environnement d’exécution",
  },
};

static const Expected *expected;

/* Where the library bound its domain, read before the test rebinds it. */
static char *library_localedir;
static char *library_codeset;

static void
block_until_cancelled (DvtTask       *task,
                       GCancellable  *cancellable,
                       gpointer       user_data,
                       GError       **error)
{
  g_assert_nonnull (cancellable);
  while (!g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  g_cancellable_set_error_if_cancelled (cancellable, error);
}

static void
block_until_released (DvtTask       *task,
                      GCancellable  *cancellable,
                      gpointer       user_data,
                      GError       **error)
{
  GCancellable *release = user_data;

  while (!g_cancellable_is_cancelled (release))
    g_usleep (1000);
  dvt_task_return_boolean (task, TRUE);
}

static void
test_bound (void)
{
  g_assert_cmpstr (library_localedir, ==, TEST_LOCALEDIR);
  g_assert_cmpstr (library_codeset, ==, "UTF-8");
}

/* An event scope made before any runtime exists binds the domain too: its
 * messages can come first. Run in a child, whose classes are fresh. */
static void
test_bound_by_event_scope (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      GObject *scope;

      bindtextdomain (TEST_GETTEXT_PACKAGE, "/nonexistent");
      scope = g_initable_new (DVT_TYPE_EVENT_SCOPE, NULL, &error, NULL);
      g_assert_null (scope);
      g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
      g_assert_cmpstr (bindtextdomain (TEST_GETTEXT_PACKAGE, NULL), ==, TEST_LOCALEDIR);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

static void
test_closed (void)
{
  g_autoptr(DvtRuntime) runtime = dvt_runtime_new (1);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  dvt_runtime_shutdown (runtime, TRUE, FALSE);
  g_assert_false (dvt_runtime_to_thread_blocking (runtime, block_until_cancelled, NULL, NULL,
                                                  NULL, NULL, &value, &error));
  g_assert_error (error, DVT_ERROR, DVT_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==, expected->closed);
}

static void
check_timeout (const char *name,
               const char *message)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (1);
  g_autoptr(DvtOptions) options = dvt_options_new ();
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  dvt_options_set_timeout (options, 0.05);
  dvt_options_set_name (options, name);
  g_assert_false (dvt_runtime_to_thread_blocking (runtime, block_until_cancelled, NULL, NULL,
                                                  options, NULL, &value, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_timeout (void)
{
  check_timeout (NULL, expected->timed_out);
  check_timeout ("fetch-url", expected->timed_out_named);
}

/* The singular and the plural of one message, chosen by the count. */
static void
test_plural (void)
{
  g_autoptr(DvtTestRuntime) runtime = dvt_runtime_new (1);
  g_autoptr(GCancellable) release = g_cancellable_new ();
  g_autoptr(DvtTask) task = NULL;
  g_autoptr(GError) error = NULL;

  task = dvt_runtime_submit (runtime, block_until_released, release, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (dvt_runtime_wait_idle (runtime, 1, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, expected->busy_one_second);
  g_clear_error (&error);

  g_assert_false (dvt_runtime_wait_idle (runtime, 2, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpstr (error->message, ==, expected->busy_two_seconds);

  g_cancellable_cancel (release);
  g_assert_true (dvt_task_wait (task, 10 * slow, NULL));
}

static void
test_event_scope (void)
{
  g_autoptr(GError) error = NULL;
  GObject *scope = g_initable_new (DVT_TYPE_EVENT_SCOPE, NULL, &error, NULL);

  g_assert_null (scope);
  g_assert_error (error, DVT_ERROR, DVT_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, expected->scope_without_runtime);
}

int
main (int argc, char *argv[])
{
  const char *language = g_getenv ("LANGUAGE");
  int status;

  setlocale (LC_ALL, "");
  g_test_init (&argc, &argv, NULL);
  if (is_valgrind ())
    slow = 10.0;

  for (guint i = 0; i < G_N_ELEMENTS (expectations); i++)
    if (g_strcmp0 (language, expectations[i].language) == 0)
      expected = &expectations[i];

  if (expected == NULL || g_strcmp0 (setlocale (LC_MESSAGES, NULL), "C") == 0)
    {
      g_test_skip ("needs LANGUAGE=de or fr and a locale other than C (LC_ALL=C.UTF-8)");
      return g_test_run ();
    }

  /* The library binds its domain once, from its class initialisers (a
   * subprocess checks that with fresh classes). */
  if (!g_test_subprocess ())
    {
      g_type_class_unref (g_type_class_ref (DVT_TYPE_RUNTIME));
      library_localedir = g_strdup (bindtextdomain (TEST_GETTEXT_PACKAGE, NULL));
      library_codeset = g_strdup (bind_textdomain_codeset (TEST_GETTEXT_PACKAGE, NULL));

      /* Then the uninstalled catalogues, for the rest of the process. */
      bindtextdomain (TEST_GETTEXT_PACKAGE, TEST_BUILD_LOCALEDIR);
    }

  g_test_add_func ("/i18n/bound", test_bound);
  g_test_add_func ("/i18n/bound-by-event-scope", test_bound_by_event_scope);
  g_test_add_func ("/i18n/closed", test_closed);
  g_test_add_func ("/i18n/timeout", test_timeout);
  g_test_add_func ("/i18n/plural", test_plural);
  g_test_add_func ("/i18n/event-scope", test_event_scope);

  status = g_test_run ();
  g_free (library_localedir);
  g_free (library_codeset);

  return status;
}
