"""TensorFlow's native log lines kept off the terminal of ``fma-genre``.

TensorFlow 2.21 logs through absl from C++ straight to file descriptor 2,
and absl ignores ``TF_CPP_MIN_LOG_LEVEL`` for what it prints before its
logging is initialised ("I0000 ... oneDNN custom operations are on", "E0000
... failed call to cuInit" on a machine without a GPU), so no environment
variable silences it. :func:`native_logs_filtered` points descriptor 2 at a
pipe whose reader drops those lines (informational, warnings, and the
errors of the GPU probe) and passes everything else on, fatal errors
included; Python's ``sys.stderr`` (messages, progress bars) is given a
descriptor of its own to the real stderr, so it bypasses the filter.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_PREFIX = r"\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-/]+:\d+\] "  # absl's: MMDD time thread file:line]
NOISE = re.compile(
    rf"[IW]{_PREFIX}"  # informational and warning lines
    rf"|E{_PREFIX}(?:failed call to cuInit|Unable to register cu\w+ factory)"  # the GPU probe's errors
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
    r"|\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption")  # a notebook kernel's notice


def is_noise(line: str) -> bool:
    """Whether a line on stderr is native log noise; fatal errors and other errors are not."""
    return NOISE.match(line.rstrip("\n")) is not None


@contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Run the body with native log noise dropped from file descriptor 2 (see the module's text).

    Also asks TensorFlow's own logger and Python's ``absl`` logger for errors only, and hides
    Keras' and TensorFlow's ``FutureWarning`` notices.
    """
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    _quiet_python_loggers()
    sys.stderr.flush()
    real, reader = _filter_descriptor_2()
    python_stderr = sys.stderr
    sys.stderr = open(os.dup(real), "w", buffering=1, encoding=python_stderr.encoding,
                      errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(real, 2)  # closes the pipe's last write end: the reader sees its end and stops
        reader.join(timeout=2)
        os.close(real)
        stack.close()


def drop_native_logs_for_good() -> None:
    """The same filter for the rest of the process, for a Jupyter kernel: descriptor 2 (which the kernel
    forwards to the notebook) goes through it; Python's ``sys.stderr`` is the kernel's own and stays.

    Call it before TensorFlow is imported (:func:`utils.apps.notebooks.open_run` does): the noise comes
    with the import. Calling it twice filters once.
    """
    if os.environ.get("FMA_GENRE_NATIVE_LOGS_FILTERED") == str(os.getpid()):
        return
    os.environ["FMA_GENRE_NATIVE_LOGS_FILTERED"] = str(os.getpid())
    _quiet_python_loggers()
    _filter_descriptor_2()


def _quiet_python_loggers() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("absl", "tensorflow"):  # tf.function retracing and the like are warnings of these loggers
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        if _errors_only not in logger.filters:  # a filter stays when TensorFlow's import resets the level
            logger.addFilter(_errors_only)
    # a NumPy deprecation notice from Keras' ONNX export (np.object), not a problem of the user's
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(keras|tensorflow|tf2onnx)(\.|$)")


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _filter_descriptor_2() -> tuple[int, threading.Thread]:
    """Point descriptor 2 at a pipe whose reader thread passes on all but the noise; returns a
    descriptor of what 2 was, and the reader."""
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with open(read_end, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(real, line)
    reader = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    reader.start()
    return real, reader
