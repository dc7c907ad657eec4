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
