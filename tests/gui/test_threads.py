"""Qt objects are only ever destroyed in the GUI thread, even by Python's garbage collector."""
import gc
import threading

from .conftest import wait_idle


class _Cycle:
    """Unreachable as soon as made, freed only by a cycle collection; notes where that ran."""

    def __init__(self, freed_in):
        self.me, self.freed_in = self, freed_in

    def __del__(self):
        self.freed_in.append(threading.current_thread() is threading.main_thread())


def test_garbage_made_by_a_background_job_is_collected_in_the_gui_thread(qtbot, window):
    # A job that allocates as matplotlib does while drawing an export: with automatic collection
    # the task thread itself would collect, and with it any closed widget left in a cycle (a
    # QWidget destroyed outside the GUI thread deadlocked the test suite in CI).
    assert not gc.isenabled()
    freed_in = []

    def allocate():
        for _ in range(20000):
            _Cycle(freed_in)
            [[] for _ in range(5)]
        return True

    window.state.run_task(allocate, "allocating")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: len(freed_in) >= 15000, timeout=10000)     # the GUI thread's timer
    assert all(freed_in), f"{freed_in.count(False)} of {len(freed_in)} freed in a worker thread"


def test_closing_the_window_turns_automatic_collection_back_on(qtbot, window):
    assert not gc.isenabled()
    window.close()
    assert gc.isenabled()


def test_the_engine_is_warmed_up_on_the_task_thread_when_the_window_opens(qtbot, errors):
    """torch's first optimizer step imports ~800 modules and pauses the interpreter for up to
    half a second at a time: the app does it while its window opens, off the GUI thread, so that
    pressing Run does not freeze the window."""
    from spectramorph_engine.run import pipeline
    from spectramorph_gui.panels.main_window import MainWindow
    original = pipeline.warm_up
    threads = []

    def spy():
        threads.append(threading.current_thread() is threading.main_thread())
        return original()
    pipeline.warm_up = spy
    try:
        w = MainWindow(load_demo=False)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitUntil(lambda: w.state.workers.pending == 0, timeout=60000)
        assert threads == [False]
        w.close()
    finally:
        pipeline.warm_up = original
