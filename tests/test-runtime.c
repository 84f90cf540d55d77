#include <dovetail.h>

static void
work_answer (DvtTask *task, GCancellable *cancellable, gpointer user_data, GError **error)
{
  dvt_task_return_int (task, 42);
}

static void
test_to_thread_blocking_basic (void)
{
  g_autoptr(DvtRuntime) rt = dvt_runtime_new (2);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  g_assert_true (dvt_runtime_to_thread_blocking (rt, work_answer, NULL, NULL, NULL, &value, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_value_get_int64 (&value), ==, 42);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/runtime/to-thread-blocking/basic", test_to_thread_blocking_basic);
  return g_test_run ();
}
