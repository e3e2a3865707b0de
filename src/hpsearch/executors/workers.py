"""A search's worker processes (`n_jobs`): several trials at once on this machine, on one study.

Each worker is a Python process of its own (`workers.main`) running the same search
on the study's storage, with its share of the machine (`executors.resources`). The study counts
the trials, so crash-safety, resume and `n_trials` stay as with one process. The objective travels
by value (cloudpickle: a script's functions, closures and the Trainer's recipe), so a script needs
no `if __name__ == "__main__"` guard. The process that started them watches them: one progress
bar and one log (each worker's lines, prefixed), a dead worker replaced (the new one recovers its
trial), and Ctrl-C or one worker's error ending them all.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from tqdm.auto import tqdm  # its `write`: a line above the search's bar (`hpsearch.loop.progress`)
from tqdm.contrib.logging import logging_redirect_tqdm

from hpsearch.errors import ConfigError, SearchInterrupted, interrupted_message
from hpsearch.executors.base import Blueprint, Executor, Objective, Place, RunningContext
from hpsearch.executors.resources import WorkerShare
from hpsearch.loop import failures
from hpsearch.loop.progress import SearchProgress
from hpsearch.study import schema
from hpsearch.trial import TrialState

logger = logging.getLogger(__name__)
INTERRUPTED = 130  # a worker's exit status after Ctrl-C (its trial recorded as interrupted)
STOP_WAIT = 8.0  # seconds a worker gets to record its interrupted trial before it is killed
POLL = 0.5  # seconds between two reads of the store for the progress bar
EXIT_POLL = 0.05  # seconds between two looks at whether a worker has ended
_LOGGERS = ("transformers", "optuna", "hpsearch")  # their levels go to the workers
_WORKER = "import sys; from hpsearch.executors.workers import main; sys.exit(main(*sys.argv[1:]))"


class WorkerProcesses(Executor):
    """`n_jobs` worker processes on this machine, each running the search on the study's storage with its share
    of the machine (`shares`, `executors.resources`), watched from this process. The first worker recovers what a
    crash left: the process that resumes a crashed trial runs it."""

    def __init__(self, shares: list[WorkerShare]) -> None:
        self.shares = shares

    def run(self, here: Place, blueprint: Blueprint, objective: Objective, while_running: RunningContext) -> None:
        """Run the search in its worker processes until `n_trials` trials of the study have finished."""
        import cloudpickle

        levels = {name: logging.getLogger(name).level for name in _LOGGERS}  # as quiet as the user made this process
        try:
            payload = cloudpickle.dumps((blueprint, objective, while_running, levels))
        except Exception as e:
            raise ConfigError(
                f"`n_jobs` sends the objective and the search's arguments to worker processes, but they do not "
                f"pickle: {e!r}. Make them picklable (no open files, locks or connections), or use n_jobs=1."
            ) from e
        with tempfile.TemporaryDirectory(prefix="hpsearch-workers-") as folder:
            Path(folder, "search.pkl").write_bytes(payload)
            pool = _Pool(here, self.shares, Path(folder))
            first = here.trials.created()
            try:
                with logging_redirect_tqdm(loggers=[logging.root, logger]), _ctrl_c_noted(pool.ctrl_c):
                    pool.watch()
            except KeyboardInterrupt:
                running = pool.running_trials()
                pool.stop()
                here.trials.recover()  # the trials of workers that had to be killed
                raise SearchInterrupted(interrupted_message(running)) from None
            finally:
                pool.stop()
        _check_failures(here, first)


@contextlib.contextmanager
def _ctrl_c_noted(ctrl_c: threading.Event):
    """Ctrl-C noted for the watch loop to act on at its next look, not raised wherever this process is: a
    KeyboardInterrupt raised in a garbage collector's callback is printed and dropped, and the search ran on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: ctrl_c.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_failures(here: Place, first: int) -> None:
    """After the workers: raise if every trial they ran failed; if some did, warn with what they had in common."""
    ran = [r for r in here.trials.records() if r.number >= first and r.state is not TrialState.RUNNING]
    ran = [r for r in ran if not r.interrupted]
    failures.check_run([(r.params, r.error or "") for r in ran if r.state is TrialState.FAILED], len(ran))


class _Pool:
    """The running workers, their log lines, and the progress bar of the whole search."""

    def __init__(self, here: Place, shares: list[WorkerShare], folder: Path):
        self.shares, self.folder = shares, folder
        self.trials, self.n_trials = here.trials, here.settings.n_trials
        self.workers: dict[int, subprocess.Popen] = {}  # worker index -> its process
        self.tails: dict[int, collections.deque] = {}  # worker index -> its last lines (for an error)
        self.quiet = False  # after Ctrl-C: the workers' last words are not the user's business
        self.ctrl_c = threading.Event()
        self.deaths_in_a_row, self.finished_at_death = 0, -1
        self.progress = SearchProgress(self.trials)
        for share in shares:  # one recovers what a crash left (several at once could take one trial each)
            self.start(share, recover=share.index == 0)

    def start(self, share: WorkerShare, recover: bool) -> None:
        path = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]  # the script's modules
        environment = os.environ | share.environment(len(self.shares))
        environment.update(PYTHONUNBUFFERED="1", TQDM_DISABLE="1", PYTHONPATH=os.pathsep.join(dict.fromkeys(path)))
        result = self.folder / f"error-{share.index}.pkl"
        result.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(self.folder / "search.pkl"), str(result), str(int(recover))],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl-C reaches this process only, which stops the workers in order
        )
        self.workers[share.index] = process
        self.tails[share.index] = collections.deque(maxlen=30)
        threading.Thread(target=self._relay, args=(share.index, process), daemon=True).start()

    def _relay(self, index: int, process: subprocess.Popen) -> None:
        """A worker's output, line by line, into this process's log above the progress bar."""
        for line in process.stdout:
            self.tails[index].append(line)
            if not self.quiet and line.strip():
                tqdm.write(f"[worker {index}] {line.rstrip()}", file=sys.stderr)

    def watch(self) -> None:
        """Until every worker has ended: replace the dead, raise a worker's error, show progress."""
        shares = {share.index: share for share in self.shares}
        shown = 0.0
        while self.workers:
            if self.ctrl_c.is_set():
                raise KeyboardInterrupt
            for index, process in list(self.workers.items()):
                code = process.poll()
                if code is None:
                    continue
                del self.workers[index]
                if code == 0:
                    continue
                error = self._error(index, code)
                if error is not None:
                    raise error
                if self.trials.finished() < self.n_trials:
                    self._replace(shares[index], code)
            if time.monotonic() - shown >= POLL:
                self._show_progress()
                shown = time.monotonic()
            time.sleep(EXIT_POLL)
        self._show_progress()
        self.progress.close()

    def _error(self, index: int, code: int) -> BaseException | None:
        """The exception a worker ended with (it wrote it down), None for a worker that died."""
        import cloudpickle

        result = self.folder / f"error-{index}.pkl"
        if result.exists():
            return cloudpickle.loads(result.read_bytes())
        if code == INTERRUPTED:  # a SIGINT sent to this worker alone: the search's Ctrl-C
            raise KeyboardInterrupt
        return None

    def _replace(self, share: WorkerShare, code: int) -> None:
        """A worker that died (killed, out of memory): a new one in its place, which recovers its trial."""
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        finished = self.trials.finished()
        self.deaths_in_a_row = self.deaths_in_a_row + 1 if finished == self.finished_at_death else 1
        self.finished_at_death = finished
        if self.deaths_in_a_row > max(3, len(self.shares)):
            tail = "".join(self.tails[share.index]).strip()
            failures.workers_died(self.deaths_in_a_row, how, tail)
        logger.warning(f"Worker {share.index} died ({how}); a new worker takes its place and recovers its trial.")
        self.start(share, recover=True)

    def _show_progress(self) -> None:
        if not self.progress.bar.disable:
            self.progress.count()
            running = self.running_trials()
            self.progress.show(f"running {', '.join(map(str, running))}" if running else "")

    def running_trials(self) -> list[int]:
        """The numbers of the trials the workers are running now."""
        pids = {process.pid for process in self.workers.values()}
        import optuna

        running = self.trials.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return [t.number for t in running if (schema.fact(t, schema.OWNER) or {}).get("pid") in pids]

    def stop(self) -> None:
        """End every worker: Ctrl-C first (each records its trial as interrupted), then a kill."""
        self.quiet = True
        for process in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_WAIT
        for process in self.workers.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()
        self.progress.bar.close()  # no last count: the search stops


def main(payload: str, result: str, recover: str) -> int:
    """A worker: build its place of the search from the blueprint it was sent and run it until no slot is left; its
    error, if any, written to `result`."""
    import cloudpickle

    _end_with_parent()
    try:
        blueprint, objective, while_running, levels = cloudpickle.loads(Path(payload).read_bytes())
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        optuna = logging.getLogger("optuna")  # its study-created lines: said once, by the search's process
        optuna.setLevel(max(optuna.getEffectiveLevel(), logging.WARNING))
        here = blueprint.at_worker()
        if recover == "1":
            here.recover()
        with while_running() if while_running is not None else contextlib.nullcontext():
            here.run_here(objective)
    except (KeyboardInterrupt, SearchInterrupted):
        return INTERRUPTED
    except BaseException as e:
        e.add_note(f"In worker {os.environ.get('HPSEARCH_WORKER')}:\n{''.join(traceback.format_exception(e))}")
        try:
            data = cloudpickle.dumps(e)
        except Exception:  # an exception that does not pickle: its text
            data = cloudpickle.dumps(RuntimeError("".join(traceback.format_exception(e))))
        Path(result).write_bytes(data)
        return 1
    return 0


def _end_with_parent() -> None:
    """Exit when the process that started this worker is gone (killed: nobody would stop this one)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="hpsearch-parent-watch").start()
